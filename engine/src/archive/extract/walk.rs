//! The restore walk: each archive member, as the member reader hands it over, must be the
//! next manifest entry (name, type, mode, size, target, content); only files, directories
//! and symlinks are written, into the staging directory, never through a symlink.
use std::cmp::Ordering;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use super::decompress::{classify, DecodedAhead, DecodedStream};
use super::error::{ExtractError, Stop};
use super::member::{next_member, Member};
use super::{check_length, ExtractLimits, ExtractReport, IO_CHUNK, TAR_BLOCK};
use crate::archive::manifest::{FileEntry, FileKind, Manifest};
use crate::archive::staging::Staging;
use crate::sys::archive as sys;

/// Matches the archive against the manifest, writing into `staging` when there is one.
///
/// The archive is read and decompressed on a thread of its own, a few chunks ahead of the
/// matching and writing done here: the two halves cost about the same, so the restore
/// takes about half as long on two CPUs.
pub(super) fn restore<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    limits: &ExtractLimits,
    staging: Option<&mut Staging<'_>>,
) -> Result<(ExtractReport, R), ExtractError> {
    let decoded = DecodedStream::open(archive)?;
    std::thread::scope(|scope| {
        let mut tar = tar::Archive::new(DecodedAhead::start(scope, decoded));
        let walked = Restorer {
            manifest,
            limits,
            staging,
            buffer: vec![0; IO_CHUNK],
        }
        .run(&mut tar);
        let stream = tar.into_inner();
        match walked {
            Ok((report, entries_end)) => Ok((report, stream.finish(entries_end)?)),
            Err(Stop::Refused(err)) => Err(err),
            Err(Stop::Stream { error, path }) => Err(classify(error, stream.at_end, path)),
            Err(Stop::EndedEarly {
                missing,
                entries_end,
            }) => {
                stream.finish(entries_end)?;
                Err(ExtractError::MissingEntry {
                    path: missing,
                    found: None,
                })
            }
        }
    })
}

struct Restorer<'m, 's, 'p> {
    manifest: &'m Manifest,
    limits: &'m ExtractLimits,
    /// None when only verifying.
    staging: Option<&'s mut Staging<'p>>,
    buffer: Vec<u8>,
}

impl Restorer<'_, '_, '_> {
    /// Matches and writes every manifest entry, then requires the tar stream to end. Returns
    /// the report and the stream offset where the last entry's data (padded) ends.
    fn run<R: Read>(&mut self, tar: &mut tar::Archive<R>) -> Result<(ExtractReport, u64), Stop> {
        let mut members = tar
            .entries()
            .map_err(|error| Stop::Stream { error, path: None })?
            .raw(true);
        let mut report = ExtractReport { files: 0, bytes: 0 };
        let mut entries_end = 0;
        let manifest = self.manifest;
        for (index, expected) in manifest.files.iter().enumerate() {
            let Some(mut member) = next_member(&mut members, self.limits)? else {
                return Err(Stop::EndedEarly {
                    missing: expected.path.clone(),
                    entries_end,
                });
            };
            let path = check_path(&member.path, self.limits)?.to_owned();
            let kind = member_kind(member.typeflag, &path)?;
            let earlier = &manifest.files[..index];
            if earlier
                .binary_search_by(|entry| entry.path.as_str().cmp(&path))
                .is_ok()
            {
                return Err(ExtractError::DuplicateEntry { path }.into());
            }
            let size = self.check_header(&member, &path, report.bytes)?;
            match path.as_str().cmp(&expected.path) {
                Ordering::Less => {
                    return Err(ExtractError::UnexpectedEntry {
                        path,
                        expected: expected.path.clone(),
                    }
                    .into())
                }
                // Both lists are sorted, so the expected entry can no longer come.
                Ordering::Greater => {
                    return Err(ExtractError::MissingEntry {
                        path: expected.path.clone(),
                        found: Some(path),
                    }
                    .into())
                }
                Ordering::Equal => {}
            }
            compare(expected, kind, member.mode, size, member.link.as_deref())?;
            match (kind, self.staging.as_deref_mut()) {
                (FileKind::Dir, Some(staging)) => staging
                    .create_dir(&path)
                    .map_err(|err| write_failure(&path, err))?,
                (FileKind::Symlink, Some(staging)) => {
                    let target = expected.target.as_deref().unwrap_or_default();
                    staging
                        .create_symlink(&path, target)
                        .map_err(|err| write_failure(&path, err))?;
                }
                (FileKind::Dir | FileKind::Symlink, None) => {}
                (FileKind::File, _) => {
                    self.write_file(&mut member.entry, expected)?;
                    report.bytes += size;
                }
            }
            report.files += 1;
            if self.staging.is_some() && report.files == 1 {
                crate::test_hooks::crash_point("restore.extracting");
            }
            entries_end = member.entry.raw_file_position() + size.div_ceil(TAR_BLOCK) * TAR_BLOCK;
        }
        if let Some(extra) = next_member(&mut members, self.limits)? {
            return Err(ExtractError::ExtraEntry {
                path: String::from_utf8_lossy(&extra.path).into_owned(),
            }
            .into());
        }
        Ok((report, entries_end))
    }

    /// Refuses special mode bits, inconsistent sizes and sizes over the limits; returns the
    /// entry size.
    fn check_header<R: Read>(
        &self,
        member: &Member<'_, R>,
        path: &str,
        bytes_so_far: u64,
    ) -> Result<u64, ExtractError> {
        if member.mode & 0o7000 != 0 {
            return Err(ExtractError::SetuidBit {
                path: path.to_owned(),
                mode: member.mode,
            });
        }
        let size =
            member
                .entry
                .header()
                .entry_size()
                .map_err(|err| ExtractError::HeaderInvalid {
                    path: Some(path.to_owned()),
                    detail: err.to_string(),
                })?;
        if let Some(pax_size) = member.pax_size.filter(|&pax_size| pax_size != size) {
            return Err(ExtractError::ExtensionRefused {
                path: Some(path.to_owned()),
                detail: format!("PAX size {pax_size} disagrees with header size {size}"),
            });
        }
        if size > self.limits.max_file_bytes {
            return Err(ExtractError::LimitExceeded {
                path: Some(path.to_owned()),
                limit: "max_file_bytes",
                max: self.limits.max_file_bytes,
                found: size,
            });
        }
        let total = bytes_so_far.saturating_add(size);
        if total > self.limits.max_total_bytes {
            return Err(ExtractError::LimitExceeded {
                path: Some(path.to_owned()),
                limit: "max_total_bytes",
                max: self.limits.max_total_bytes,
                found: total,
            });
        }
        Ok(size)
    }

    /// Copies the member's data into a new staging file (when writing), hashing it on the
    /// way, and gives the file its final mode only once the digest matches.
    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        expected: &FileEntry,
    ) -> Result<(), Stop> {
        let path = &expected.path;
        let mut file = match self.staging.as_deref_mut() {
            Some(staging) => Some(
                staging
                    .create_file(path)
                    .map_err(|err| write_failure(path, err))?,
            ),
            None => None,
        };
        let mut hasher = blake3::Hasher::new();
        let mut remaining = expected.size;
        while remaining > 0 {
            let want =
                usize::try_from(remaining).map_or(self.buffer.len(), |r| r.min(self.buffer.len()));
            let n = match entry.read(&mut self.buffer[..want]) {
                Ok(0) => {
                    return Err(ExtractError::Truncated {
                        path: Some(path.clone()),
                        detail: "the stream ends inside the file's content".to_owned(),
                    }
                    .into())
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(Stop::Stream {
                        error,
                        path: Some(path.clone()),
                    })
                }
            };
            hasher.update(&self.buffer[..n]);
            if let Some(file) = file.as_mut() {
                file.write_all(&self.buffer[..n])
                    .map_err(|source| ExtractError::Write {
                        path: path.clone(),
                        source,
                    })?;
            }
            remaining -= n as u64;
        }
        let found = hasher.finalize().to_hex().to_string();
        if expected.blake3.as_deref() != Some(found.as_str()) {
            return Err(ExtractError::ContentDigestMismatch {
                path: path.clone(),
                expected: expected.blake3.clone().unwrap_or_default(),
                found,
            }
            .into());
        }
        if let Some(file) = file {
            sys::set_mode(file.as_fd(), expected.mode).map_err(|source| ExtractError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn write_failure(path: &str, err: io::Error) -> ExtractError {
    let path = path.to_owned();
    if sys::is_resolution_refused(&err) {
        ExtractError::PathEscape {
            path,
            detail: format!(
                "its parent is a symlink or not a directory, or it leaves the staging directory ({err})"
            ),
        }
    } else if err.kind() == io::ErrorKind::AlreadyExists {
        ExtractError::DuplicateEntry { path }
    } else {
        ExtractError::Write { path, source: err }
    }
}

/// Requires the entry's type, mode, size and symlink target to be the manifest's.
fn compare(
    entry: &FileEntry,
    kind: FileKind,
    mode: u32,
    size: u64,
    link: Option<&[u8]>,
) -> Result<(), ExtractError> {
    let mismatch = |field, expected: String, found: String| ExtractError::EntryMismatch {
        path: entry.path.clone(),
        field,
        expected,
        found,
    };
    if kind != entry.kind {
        return Err(mismatch(
            "type",
            kind_name(entry.kind).into(),
            kind_name(kind).into(),
        ));
    }
    if mode != entry.mode {
        return Err(mismatch(
            "mode",
            format!("{:o}", entry.mode),
            format!("{mode:o}"),
        ));
    }
    if size != entry.size {
        return Err(mismatch("size", entry.size.to_string(), size.to_string()));
    }
    let expected_link = entry.target.as_deref().map(str::as_bytes);
    if link != expected_link {
        let show = |link: Option<&[u8]>| match link {
            Some(link) => format!("`{}`", String::from_utf8_lossy(link)),
            None => "none".to_owned(),
        };
        return Err(mismatch("symlink target", show(expected_link), show(link)));
    }
    Ok(())
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
    }
}

fn member_kind(typeflag: u8, path: &str) -> Result<FileKind, ExtractError> {
    let found = match typeflag {
        b'0' => return Ok(FileKind::File),
        b'5' => return Ok(FileKind::Dir),
        b'2' => return Ok(FileKind::Symlink),
        b'1' => "hardlink".to_owned(),
        b'3' => "character device".to_owned(),
        b'4' => "block device".to_owned(),
        b'6' => "fifo".to_owned(),
        b'7' => "contiguous file".to_owned(),
        b'S' => "GNU sparse file".to_owned(),
        b'g' => "PAX global header".to_owned(),
        b'\0' => "pre-POSIX regular file".to_owned(),
        other => format!("typeflag {:?}", char::from(other)),
    };
    Err(ExtractError::EntryTypeRefused {
        path: path.to_owned(),
        found,
    })
}

/// Requires a canonical relative name within the limits: the manifest compares byte for
/// byte, so anything that needs normalising is refused rather than normalised.
fn check_path<'a>(bytes: &'a [u8], limits: &ExtractLimits) -> Result<&'a str, ExtractError> {
    let lossy = || String::from_utf8_lossy(bytes).into_owned();
    if bytes.len() > limits.max_path_bytes {
        return Err(ExtractError::LimitExceeded {
            path: Some(lossy()),
            limit: "max_path_bytes",
            max: limits.max_path_bytes as u64,
            found: bytes.len() as u64,
        });
    }
    let non_canonical = |detail| ExtractError::NonCanonicalPath {
        path: lossy(),
        detail,
    };
    let path = std::str::from_utf8(bytes).map_err(|_| non_canonical("not valid UTF-8"))?;
    let escape = |detail: &str| ExtractError::PathEscape {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    if path.starts_with('/') {
        return Err(escape("absolute path"));
    }
    if path.split('/').any(|component| component == "..") {
        return Err(escape("`..` component"));
    }
    if path.is_empty() {
        return Err(non_canonical("empty name"));
    }
    if path.contains('\0') {
        return Err(non_canonical("NUL byte"));
    }
    for component in path.split('/') {
        match component {
            "" => return Err(non_canonical("empty component (`//` or a trailing `/`)")),
            "." => return Err(non_canonical("`.` component")),
            _ => check_length(
                path,
                component.len(),
                "max_component_bytes",
                limits.max_component_bytes,
            )?,
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::extract::test_archives::{
        assert_refused, base_manifest, base_tar, file_entry, header, RawTar, Sandbox,
    };
    use crate::archive::manifest::{FileEntry, Manifest};

    #[test]
    fn tampered_content_is_a_digest_mismatch() {
        let archive = RawTar::new()
            .dir("out")
            .file("out/a", 0o644, b"hellO")
            .file("out/b", 0o755, b"world")
            .archive();
        let err = assert_refused(&archive, &base_manifest(), "content_digest_mismatch");
        assert_eq!(err.entry_path(), Some("out/a"));
        assert_eq!(
            err.expected(),
            Some(blake3::hash(b"hello").to_hex().to_string())
        );
        assert_eq!(
            err.found(),
            Some(blake3::hash(b"hellO").to_hex().to_string())
        );
        let record = serde_json::to_value(err.record()).unwrap();
        assert_eq!(record["reason"], "content_digest_mismatch");
        assert_eq!(record["entry"], "out/a");
        assert_eq!(record["archive_fault"], true);
    }

    #[test]
    fn dot_dot_paths_are_refused() {
        for name in ["../evil", "../../evil", "out/../../evil"] {
            let archive = RawTar::new().dir("out").file(name, 0o644, b"x").archive();
            let err = assert_refused(&archive, &base_manifest(), "path_escape");
            assert_eq!(err.entry_path(), Some(name));
        }
    }

    #[test]
    fn absolute_paths_are_refused() {
        let sandbox = Sandbox::new();
        let target = format!("{}/abs", sandbox.outside().display());
        let archive = RawTar::new()
            .dir("out")
            .file(&target, 0o644, b"x")
            .archive();
        let err = sandbox.refused(&archive, &base_manifest(), &ExtractLimits::default());
        assert_eq!(err.reason(), "path_escape", "{err}");
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let sandbox = Sandbox::new();
        let outside = sandbox.outside().display().to_string();
        let archive = RawTar::new()
            .dir("out")
            .symlink("out/l", &outside)
            .file("out/l/evil", 0o644, b"x")
            .archive();
        let honest = Manifest::new(vec![
            FileEntry::dir("out"),
            FileEntry::symlink("out/l", &outside),
        ]);
        let err = sandbox.refused(&archive, &honest, &ExtractLimits::default());
        assert_eq!(err.reason(), "extra_entry", "{err}");

        let forged = Manifest::new(vec![
            FileEntry::dir("out"),
            FileEntry::symlink("out/l", &outside),
            file_entry("out/l/evil", 0o644, b"x"),
        ]);
        let err = sandbox.refused(&archive, &forged, &ExtractLimits::default());
        assert_eq!(err.reason(), "manifest_invalid", "{err}");

        let as_dir = Manifest::new(vec![
            FileEntry::dir("out"),
            FileEntry::dir("out/l"),
            file_entry("out/l/evil", 0o644, b"x"),
        ]);
        let err = sandbox.refused(&archive, &as_dir, &ExtractLimits::default());
        assert_eq!(err.reason(), "entry_mismatch", "{err}");
    }

    #[test]
    fn symlink_then_same_name_dir_is_a_duplicate() {
        let sandbox = Sandbox::new();
        let outside = sandbox.outside().display().to_string();
        let manifest = Manifest::new(vec![
            FileEntry::dir("out"),
            FileEntry::symlink("out/l", &outside),
            file_entry("out/m", 0o644, b"x"),
        ]);
        let archive = RawTar::new()
            .dir("out")
            .symlink("out/l", &outside)
            .dir("out/l")
            .file("out/m", 0o644, b"x")
            .archive();
        let err = sandbox.refused(&archive, &manifest, &ExtractLimits::default());
        assert_eq!(err.reason(), "duplicate_entry", "{err}");
    }

    #[test]
    fn duplicate_entries_are_refused() {
        let archive = RawTar::new()
            .dir("out")
            .file("out/a", 0o644, b"hello")
            .file("out/a", 0o644, b"hello")
            .file("out/b", 0o755, b"world")
            .archive();
        let err = assert_refused(&archive, &base_manifest(), "duplicate_entry");
        assert_eq!(err.entry_path(), Some("out/a"));
    }

    #[test]
    fn hardlinks_devices_fifos_and_other_types_are_refused() {
        let mut hardlink = header(b'1', "out/a", 0o644, 0);
        hardlink.as_old_mut().linkname[..11].copy_from_slice(b"/etc/passwd");
        let mut char_device = header(b'3', "out/a", 0o644, 0);
        char_device.set_device_major(1).unwrap();
        char_device.set_device_minor(3).unwrap();
        let cases = [
            (hardlink, "hardlink"),
            (char_device, "character device"),
            (header(b'4', "out/a", 0o644, 0), "block device"),
            (header(b'6', "out/a", 0o644, 0), "fifo"),
            (header(b'7', "out/a", 0o644, 0), "contiguous file"),
            (header(b'g', "out/a", 0o644, 0), "PAX global header"),
            (header(b'Z', "out/a", 0o644, 0), "typeflag 'Z'"),
        ];
        for (member, found) in cases {
            let archive = RawTar::new().dir("out").member(member, &[]).archive();
            let err = assert_refused(&archive, &base_manifest(), "entry_type_refused");
            assert_eq!(err.found().as_deref(), Some(found));
            assert_eq!(err.entry_path(), Some("out/a"));
        }
    }

    #[test]
    fn gnu_sparse_entries_are_refused() {
        let mut sparse = header(b'S', "out/a", 0o644, 5);
        let gnu = sparse.as_gnu_mut().unwrap();
        gnu.sparse[0].offset = *b"00000000000\0";
        gnu.sparse[0].numbytes = *b"00000000005\0";
        gnu.realsize = *b"00000100000\0";
        let archive = RawTar::new().dir("out").member(sparse, b"hello").archive();
        let err = assert_refused(&archive, &base_manifest(), "entry_type_refused");
        assert_eq!(err.found().as_deref(), Some("GNU sparse file"));
    }

    #[test]
    fn setuid_setgid_and_sticky_bits_are_refused() {
        for (member, path) in [
            (header(b'0', "out/a", 0o4644, 5), "out/a"),
            (header(b'0', "out/a", 0o2644, 5), "out/a"),
            (header(b'5', "out", 0o1755, 0), "out"),
        ] {
            let tar = if path == "out" {
                RawTar::new().member(member, &[])
            } else {
                RawTar::new().dir("out").member(member, b"hello")
            };
            let err = assert_refused(&tar.archive(), &base_manifest(), "setuid_bit");
            assert_eq!(err.entry_path(), Some(path));
        }
    }

    #[test]
    fn modes_types_sizes_and_targets_must_match_the_manifest() {
        let wrong_mode = RawTar::new()
            .dir("out")
            .file("out/a", 0o755, b"hello")
            .archive();
        let err = assert_refused(&wrong_mode, &base_manifest(), "entry_mismatch");
        assert_eq!(
            (err.expected(), err.found()),
            (Some("644".into()), Some("755".into()))
        );

        let wrong_type = RawTar::new().dir("out").dir("out/a").archive();
        assert_refused(&wrong_type, &base_manifest(), "entry_mismatch");

        let wrong_size = RawTar::new()
            .dir("out")
            .file("out/a", 0o644, b"hello!")
            .archive();
        assert_refused(&wrong_size, &base_manifest(), "entry_mismatch");

        let manifest = Manifest::new(vec![
            FileEntry::dir("out"),
            FileEntry::symlink("out/l", "target"),
        ]);
        let wrong_target = RawTar::new().dir("out").symlink("out/l", "/etc").archive();
        let err = assert_refused(&wrong_target, &manifest, "entry_mismatch");
        assert_eq!(err.found().as_deref(), Some("`/etc`"));

        let mut file_with_link = header(b'0', "out/a", 0o644, 5);
        file_with_link.as_old_mut().linkname[..4].copy_from_slice(b"/etc");
        let archive = RawTar::new()
            .dir("out")
            .member(file_with_link, b"hello")
            .archive();
        assert_refused(&archive, &base_manifest(), "entry_mismatch");
    }

    #[test]
    fn non_canonical_names_are_refused() {
        for name in ["out//a", "./out/a", "out/./a", "out/a/"] {
            let archive = RawTar::new()
                .dir("out")
                .file(name, 0o644, b"hello")
                .archive();
            assert_refused(&archive, &base_manifest(), "non_canonical_path");
        }
        let mut non_utf8 = header(b'0', "out/a", 0o644, 5);
        non_utf8.as_old_mut().name[4] = 0xff;
        let archive = RawTar::new()
            .dir("out")
            .member(non_utf8, b"hello")
            .archive();
        assert_refused(&archive, &base_manifest(), "non_canonical_path");
    }

    #[test]
    fn extra_entries_are_refused() {
        let archive = base_tar().file("out/c", 0o644, b"extra").archive();
        let err = assert_refused(&archive, &base_manifest(), "extra_entry");
        assert_eq!(err.entry_path(), Some("out/c"));
    }

    #[test]
    fn missing_entries_are_refused() {
        let at_end = RawTar::new()
            .dir("out")
            .file("out/a", 0o644, b"hello")
            .archive();
        let err = assert_refused(&at_end, &base_manifest(), "missing_entry");
        assert_eq!(err.entry_path(), Some("out/b"));

        let in_middle = RawTar::new()
            .dir("out")
            .file("out/b", 0o755, b"world")
            .archive();
        let err = assert_refused(&in_middle, &base_manifest(), "missing_entry");
        assert_eq!(
            (err.entry_path(), err.found()),
            (Some("out/a"), Some("out/b".into()))
        );
    }
}
