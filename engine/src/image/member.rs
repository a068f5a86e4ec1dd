//! The tar member reader for layers: members are read in raw mode, and the GNU long
//! name/link and PAX records before a member are applied here, within limits and only when
//! unambiguous, as the cache's strict extractor does. The PAX policy is the image's own:
//! layers made by image builders carry times, owners and xattrs, which are read and not
//! applied (ownership and times are never restored), except a file capability, which is a
//! privilege and refused like a setuid bit.
use std::borrow::Cow;
use std::io::{self, Read};

use super::error::{Refusal, Rule};
use super::limits::ImageLimits;

/// Longest PAX extension accepted: long names and links, and the xattrs builders record.
const MAX_PAX_BYTES: u64 = 64 << 10;

/// PAX keys that are read and deliberately not applied: times and ownership are never
/// restored, and the rest describe the writer's filesystem.
const IGNORED_PAX_KEYS: [&str; 14] = [
    "atime",
    "ctime",
    "mtime",
    "uid",
    "gid",
    "uname",
    "gname",
    "comment",
    "charset",
    "hdrcharset",
    "SCHILY.dev",
    "SCHILY.ino",
    "SCHILY.nlink",
    "LIBARCHIVE.creationtime",
];
const XATTR_PREFIXES: [&str; 2] = ["SCHILY.xattr.", "LIBARCHIVE.xattr."];
const CAPABILITY_XATTR: &str = "security.capability";

/// A real member with the extension records before it applied.
pub(super) struct Member<'a, R: Read> {
    pub(super) entry: tar::Entry<'a, R>,
    pub(super) typeflag: u8,
    pub(super) mode: u32,
    pub(super) path: Vec<u8>,
    pub(super) link: Option<Vec<u8>>,
    pub(super) size: u64,
}

/// How reading a member stopped: the layer broke a rule, or the stream failed (what that
/// means depends on which reader under the tar parser failed).
pub(super) enum MemberError {
    Refused(Refusal),
    Stream(io::Error),
}

impl From<Refusal> for MemberError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// Reads the next member, consuming the extension headers that describe it. Each kind of
/// extension may appear once, and a name may come from a GNU long name or a PAX record but
/// not both, so no two tar readers can disagree about it.
pub(super) fn next_member<'a, R: Read>(
    members: &mut tar::Entries<'a, R>,
    limits: &ImageLimits,
) -> Result<Option<Member<'a, R>>, MemberError> {
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<PaxRecords> = None;
    loop {
        let Some(entry) = members.next() else {
            if long_name.is_some() || long_link.is_some() || pax.is_some() {
                return Err(Refusal::new(
                    Rule::Truncated,
                    None,
                    "the stream ends after an extension header, before its member",
                )
                .into());
            }
            return Ok(None);
        };
        let mut entry = entry.map_err(MemberError::Stream)?;
        let header = entry.header();
        let header_path = || Some(String::from_utf8_lossy(&header.path_bytes()).into_owned());
        if header.as_gnu().is_none() && header.as_ustar().is_none() {
            return Err(Refusal::new(
                Rule::Header,
                header_path(),
                "neither a GNU nor a ustar header",
            )
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
                let data = read_extension(&mut entry, MAX_PAX_BYTES)?;
                set_once(&mut pax, PaxRecords::parse(&data)?, "PAX header")?;
            }
            _ => {
                let mode = header
                    .mode()
                    .map_err(|err| Refusal::new(Rule::Header, header_path(), err.to_string()))?;
                let size = header
                    .entry_size()
                    .map_err(|err| Refusal::new(Rule::Header, header_path(), err.to_string()))?;
                let pax = pax.unwrap_or_default();
                if pax.capability {
                    return Err(Refusal::new(
                        Rule::FileCapability,
                        header_path(),
                        "a security.capability xattr grants privileges, like a setuid bit",
                    )
                    .into());
                }
                if let Some(pax_size) = pax.size.filter(|&pax_size| pax_size != size) {
                    return Err(Refusal::new(
                        Rule::PaxRecord,
                        header_path(),
                        format!("PAX size {pax_size} disagrees with the header's {size}"),
                    )
                    .into());
                }
                let path = match (long_name, pax.path) {
                    (Some(_), Some(_)) => {
                        return Err(Refusal::new(
                            Rule::PaxRecord,
                            header_path(),
                            "both a GNU long name and a PAX path",
                        )
                        .into())
                    }
                    (Some(path), None) | (None, Some(path)) => path,
                    (None, None) => header.path_bytes().into_owned(),
                };
                let link = match (long_link, pax.linkpath) {
                    (Some(_), Some(_)) => {
                        return Err(Refusal::new(
                            Rule::PaxRecord,
                            header_path(),
                            "both a GNU long link and a PAX linkpath",
                        )
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
                    size,
                }));
            }
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), Refusal> {
    if slot.is_some() {
        return Err(Refusal::new(
            Rule::PaxRecord,
            None,
            format!("{what} given twice for one member"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a GNU long name or link: the name and one terminating NUL.
fn read_long_name<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    limits: &ImageLimits,
    what: &str,
) -> Result<Vec<u8>, MemberError> {
    let mut data = read_extension(entry, limits.max_path_bytes as u64 + 1)?;
    if data.pop() != Some(0) || data.contains(&0) {
        return Err(Refusal::new(
            Rule::PaxRecord,
            None,
            format!("{what} is not a single NUL-terminated name"),
        )
        .into());
    }
    Ok(data)
}

/// Reads an extension member's data after checking its declared size against `max`.
fn read_extension<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    max: u64,
) -> Result<Vec<u8>, MemberError> {
    let size = entry.size();
    if size > max {
        return Err(Refusal::new(
            Rule::Limit,
            None,
            format!("an extension header of {size} bytes (at most {max})"),
        )
        .into());
    }
    let mut data = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut data).map_err(MemberError::Stream)?;
    if data.len() as u64 != size {
        return Err(Refusal::new(
            Rule::Truncated,
            None,
            "the stream ends inside an extension header",
        )
        .into());
    }
    Ok(data)
}

/// The PAX records of one member: those applied (names, size), and whether a file
/// capability was among the ignored ones.
#[derive(Default)]
struct PaxRecords {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    capability: bool,
}

impl PaxRecords {
    /// Parses `"<len> <key>=<value>\n"` records strictly by their lengths (values may hold
    /// newlines); every byte must belong to a record and no key may repeat.
    fn parse(mut data: &[u8]) -> Result<Self, Refusal> {
        let malformed = |detail: String| Refusal::new(Rule::PaxRecord, None, detail);
        let mut records = Self::default();
        let mut seen = std::collections::BTreeSet::new();
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
            let key = std::str::from_utf8(key)
                .map_err(|_| malformed("PAX key is not UTF-8".to_owned()))?;
            if !seen.insert(key.to_owned()) {
                return Err(malformed(format!("PAX key `{key}` given twice")));
            }
            match key {
                "path" => records.path = Some(value.to_vec()),
                "linkpath" => records.linkpath = Some(value.to_vec()),
                "size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|digits| digits.parse().ok())
                        .ok_or_else(|| malformed("PAX size is not a number".to_owned()))?;
                    records.size = Some(size);
                }
                _ if IGNORED_PAX_KEYS.contains(&key) => {}
                _ => match XATTR_PREFIXES
                    .iter()
                    .find_map(|prefix| key.strip_prefix(prefix))
                {
                    Some(CAPABILITY_XATTR) => records.capability = true,
                    Some(_) => {}
                    None if key.starts_with("GNU.sparse.") => {
                        return Err(Refusal::new(
                            Rule::EntryType,
                            None,
                            "a GNU sparse file (PAX GNU.sparse records)",
                        ))
                    }
                    None => return Err(malformed(format!("PAX key `{key}` is not allowed"))),
                },
            }
            data = &data[len..];
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = [key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        [format!("{len} ").as_bytes(), &body].concat()
    }

    #[test]
    fn pax_records_apply_names_ignore_metadata_and_refuse_the_rest() {
        let data = [
            record("path", b"a/long/name"),
            record("mtime", b"1700000000.5"),
            record("uid", b"1000"),
            record("SCHILY.xattr.user.note", b"x"),
            record("size", b"12"),
        ]
        .concat();
        let records = PaxRecords::parse(&data).unwrap();
        assert_eq!(records.path.as_deref(), Some(&b"a/long/name"[..]));
        assert_eq!(records.size, Some(12));
        assert!(!records.capability);

        let capability = record("SCHILY.xattr.security.capability", b"\x01\0\0\x02");
        assert!(PaxRecords::parse(&capability).unwrap().capability);

        for (bad, rule) in [
            (record("GNU.sparse.map", b"0,1"), Rule::EntryType),
            (record("SCHILY.acl.access", b"x"), Rule::PaxRecord),
            (
                [record("path", b"a"), record("path", b"b")].concat(),
                Rule::PaxRecord,
            ),
            (b"5 a=b\n".to_vec(), Rule::PaxRecord),
        ] {
            assert_eq!(PaxRecords::parse(&bad).err().map(|r| r.rule), Some(rule));
        }
    }
}
