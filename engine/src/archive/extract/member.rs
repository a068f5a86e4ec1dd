//! The tar member reader: members are read in raw mode, and the GNU long name and link and
//! PAX records before a member are applied here, within limits, and only when they are
//! unambiguous.
use std::borrow::Cow;
use std::io::Read;

use super::error::{ExtractError, Stop};
use super::ExtractLimits;

/// A real archive member with the GNU long name/link and PAX records before it applied.
pub(super) struct Member<'a, R: Read> {
    pub(super) entry: tar::Entry<'a, R>,
    pub(super) typeflag: u8,
    pub(super) mode: u32,
    pub(super) path: Vec<u8>,
    pub(super) link: Option<Vec<u8>>,
    pub(super) pax_size: Option<u64>,
}

/// Reads the next member, consuming the extension headers that describe it. Each kind of
/// extension may appear once, and a name may come from a GNU long name or a PAX record but
/// not both, so no two tar readers can disagree about it.
pub(super) fn next_member<'a, R: Read>(
    members: &mut tar::Entries<'a, R>,
    limits: &ExtractLimits,
) -> Result<Option<Member<'a, R>>, Stop> {
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<PaxRecords> = None;
    // Room for `path` and `linkpath` records at their longest, plus `size`.
    let max_pax_bytes = 2 * limits.max_path_bytes as u64 + 256;
    loop {
        let Some(entry) = members.next() else {
            if long_name.is_some() || long_link.is_some() || pax.is_some() {
                return Err(ExtractError::Truncated {
                    path: None,
                    detail: "the stream ends after an extension header, before its entry"
                        .to_owned(),
                }
                .into());
            }
            return Ok(None);
        };
        let mut entry = entry.map_err(|error| Stop::Stream { error, path: None })?;
        let header = entry.header();
        let header_path = || Some(String::from_utf8_lossy(&header.path_bytes()).into_owned());
        if header.as_gnu().is_none() && header.as_ustar().is_none() {
            return Err(ExtractError::HeaderInvalid {
                path: header_path(),
                detail: "neither a GNU nor a ustar header".to_owned(),
            }
            .into());
        }
        let typeflag = header.as_old().linkflag[0];
        match typeflag {
            b'L' => {
                let name = read_long_name(&mut entry, limits, "GNU long name")?;
                set_once(&mut long_name, name, "GNU long name")?;
            }
            b'K' => {
                let link = read_long_name(&mut entry, limits, "GNU long link")?;
                set_once(&mut long_link, link, "GNU long link")?;
            }
            b'x' => {
                let data = read_extension(&mut entry, max_pax_bytes, "max_pax_bytes")?;
                set_once(&mut pax, PaxRecords::parse(&data)?, "PAX header")?;
            }
            _ => {
                let mode = header.mode().map_err(|err| ExtractError::HeaderInvalid {
                    path: header_path(),
                    detail: err.to_string(),
                })?;
                let pax = pax.unwrap_or_default();
                let path = match (long_name, pax.path) {
                    (Some(_), Some(_)) => {
                        return Err(ExtractError::ExtensionRefused {
                            path: header_path(),
                            detail: "both a GNU long name and a PAX path".to_owned(),
                        }
                        .into())
                    }
                    (Some(path), None) | (None, Some(path)) => path,
                    (None, None) => header.path_bytes().into_owned(),
                };
                let link = match (long_link, pax.linkpath) {
                    (Some(_), Some(_)) => {
                        return Err(ExtractError::ExtensionRefused {
                            path: header_path(),
                            detail: "both a GNU long link and a PAX linkpath".to_owned(),
                        }
                        .into())
                    }
                    (Some(link), None) | (None, Some(link)) => Some(link),
                    (None, None) => header.link_name_bytes().map(Cow::into_owned),
                };
                return Ok(Some(Member {
                    entry,
                    typeflag,
                    mode,
                    path,
                    link,
                    pax_size: pax.size,
                }));
            }
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), ExtractError> {
    if slot.is_some() {
        return Err(ExtractError::ExtensionRefused {
            path: None,
            detail: format!("{what} given twice for one entry"),
        });
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a GNU long name or link: the name and one terminating NUL.
fn read_long_name<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    limits: &ExtractLimits,
    what: &str,
) -> Result<Vec<u8>, Stop> {
    let mut data = read_extension(entry, limits.max_path_bytes as u64 + 1, "max_path_bytes")?;
    if data.pop() != Some(0) || data.contains(&0) {
        return Err(ExtractError::ExtensionRefused {
            path: None,
            detail: format!("{what} is not a single NUL-terminated name"),
        }
        .into());
    }
    Ok(data)
}

/// Reads an extension member's data after checking its declared size against `max`.
fn read_extension<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    max: u64,
    limit: &'static str,
) -> Result<Vec<u8>, Stop> {
    let size = entry.size();
    if size > max {
        return Err(ExtractError::LimitExceeded {
            path: None,
            limit,
            max,
            found: size,
        }
        .into());
    }
    let mut data = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut data)
        .map_err(|error| Stop::Stream { error, path: None })?;
    if data.len() as u64 != size {
        return Err(ExtractError::Truncated {
            path: None,
            detail: "the stream ends inside an extension header".to_owned(),
        }
        .into());
    }
    Ok(data)
}

/// The PAX records allowed: those that carry long names and large sizes. Anything else
/// (xattrs, ownership, times, sparse maps, ...) would be metadata we refuse to restore.
#[derive(Default)]
struct PaxRecords {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

impl PaxRecords {
    /// Parses `"<len> <key>=<value>\n"` records strictly by their lengths (values may hold
    /// newlines); every byte must belong to a record and no key may repeat.
    fn parse(mut data: &[u8]) -> Result<Self, ExtractError> {
        let malformed = |detail: String| ExtractError::ExtensionRefused { path: None, detail };
        let mut records = Self::default();
        while !data.is_empty() {
            let space = data
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| malformed("PAX record without a length".to_owned()))?;
            let len: usize = std::str::from_utf8(&data[..space])
                .ok()
                .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(|| malformed("PAX record length is not a number".to_owned()))?;
            if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
                return Err(malformed(
                    "PAX record length does not match its content".to_owned(),
                ));
            }
            let record = &data[space + 1..len - 1];
            let equals = record
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| malformed("PAX record without `=`".to_owned()))?;
            let (key, value) = (&record[..equals], &record[equals + 1..]);
            match key {
                b"path" => set_once(&mut records.path, value.to_vec(), "PAX path")?,
                b"linkpath" => set_once(&mut records.linkpath, value.to_vec(), "PAX linkpath")?,
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|digits| digits.parse().ok())
                        .ok_or_else(|| malformed("PAX size is not a number".to_owned()))?;
                    set_once(&mut records.size, size, "PAX size")?;
                }
                other => {
                    return Err(malformed(format!(
                        "PAX key `{}` is not allowed",
                        String::from_utf8_lossy(other)
                    )))
                }
            }
            data = &data[len..];
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::extract::test_archives::{
        assert_refused, assert_refused_with, base_manifest, base_tar, compress, file_entry, header,
        pax_record, RawTar, Sandbox,
    };
    use crate::archive::manifest::{FileEntry, Manifest};

    #[test]
    fn huge_names_are_refused_before_they_are_read() {
        let huge = "x".repeat(10_000);
        let archive = RawTar::new()
            .dir("out")
            .long(b'L', format!("out/{huge}").as_bytes())
            .file("out/a", 0o644, b"hello")
            .archive();
        let err = assert_refused(&archive, &base_manifest(), "limit_exceeded");
        assert!(err.to_string().contains("max_path_bytes"), "{err}");

        let long_link = RawTar::new()
            .dir("out")
            .long(b'K', huge.as_bytes())
            .symlink("out/a", "x")
            .archive();
        assert_refused(&long_link, &base_manifest(), "limit_exceeded");

        let long_component = format!("out/{}", "y".repeat(200));
        let manifest = Manifest::new(vec![
            FileEntry::dir("out"),
            file_entry(&long_component, 0o644, b""),
        ]);
        let archive = RawTar::new()
            .dir("out")
            .long(b'L', long_component.as_bytes())
            .file("ignored", 0o644, b"")
            .archive();
        let limits = ExtractLimits {
            max_component_bytes: 100,
            ..ExtractLimits::default()
        };
        assert_refused_with(&archive, &manifest, &limits, "limit_exceeded");
        let limits = ExtractLimits {
            max_path_bytes: 64,
            ..ExtractLimits::default()
        };
        assert_refused_with(&archive, &manifest, &limits, "limit_exceeded");
        Sandbox::new()
            .extract(&archive, &manifest, &ExtractLimits::default())
            .unwrap();
    }

    #[test]
    fn pax_records_are_strict() {
        let consistent = RawTar::new()
            .dir("out")
            .pax(&[("path", b"out/a"), ("size", b"5")])
            .file("out/placeholder", 0o644, b"hello")
            .file("out/b", 0o755, b"world")
            .archive();
        Sandbox::new()
            .extract(&consistent, &base_manifest(), &ExtractLimits::default())
            .unwrap();

        let escape = RawTar::new()
            .dir("out")
            .pax(&[("path", b"../escape")])
            .file("out/a", 0o644, b"hello")
            .archive();
        assert_refused(&escape, &base_manifest(), "path_escape");

        let renamed = RawTar::new()
            .dir("out")
            .pax(&[("path", b"out/0")])
            .file("out/a", 0o644, b"hello")
            .archive();
        let err = assert_refused(&renamed, &base_manifest(), "unexpected_entry");
        assert_eq!(
            (err.expected(), err.found()),
            (Some("out/a".into()), Some("out/0".into()))
        );

        let xattr = RawTar::new()
            .dir("out")
            .pax(&[("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02")])
            .file("out/a", 0o644, b"hello")
            .archive();
        assert_refused(&xattr, &base_manifest(), "extension_refused");

        let smuggled_size = RawTar::new()
            .dir("out")
            .pax(&[("size", b"0")])
            .file("out/a", 0o644, b"hello")
            .archive();
        assert_refused(&smuggled_size, &base_manifest(), "extension_refused");

        let ambiguous = RawTar::new()
            .dir("out")
            .long(b'L', b"out/a")
            .pax(&[("path", b"out/a")])
            .file("out/x", 0o644, b"hello")
            .archive();
        assert_refused(&ambiguous, &base_manifest(), "extension_refused");

        let repeated = RawTar::new()
            .dir("out")
            .pax(&[("path", b"out/a"), ("path", b"out/a")])
            .file("out/a", 0o644, b"hello")
            .archive();
        assert_refused(&repeated, &base_manifest(), "extension_refused");

        let mut bad_length = pax_record("path", b"out/a");
        bad_length[0] += 1;
        let malformed = RawTar::new()
            .dir("out")
            .member(
                header(b'x', "PaxHeaders/a", 0o644, bad_length.len() as u64),
                &bad_length,
            )
            .file("out/a", 0o644, b"hello")
            .archive();
        assert_refused(&malformed, &base_manifest(), "extension_refused");
    }

    #[test]
    fn dangling_extension_header_is_truncation() {
        let mut tar = RawTar::new().dir("out").file("out/a", 0o644, b"hello");
        tar = tar.long(b'L', b"out/b");
        assert_refused(&tar.archive(), &base_manifest(), "truncated");
    }

    #[test]
    fn headers_must_be_gnu_or_ustar() {
        let mut old_style = header(b'0', "out/a", 0o644, 5);
        let gnu = old_style.as_gnu_mut().unwrap();
        gnu.magic = [0; 6];
        gnu.version = [0; 2];
        let archive = RawTar::new()
            .dir("out")
            .member(old_style, b"hello")
            .archive();
        assert_refused(&archive, &base_manifest(), "header_invalid");

        let mut bad_checksum = base_tar().end();
        bad_checksum[512 + 100] ^= 1;
        assert_refused(&compress(&bad_checksum), &base_manifest(), "header_invalid");
    }
}
