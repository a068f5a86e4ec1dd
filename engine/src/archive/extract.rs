//! Strict extraction of an output archive, verified entry by entry against its manifest.
//!
//! `tar::Archive::unpack` is not safe enough for archives from a cache (see
//! `docs/restore-threats.md`): it silently skips `..` entries and strips a leading `/`
//! instead of refusing the archive; it writes through path-based syscalls, so a symlink or a
//! concurrent change can redirect writes; it has no limit on entry count, sizes or name
//! lengths and reads GNU long names and PAX headers into memory whatever their size; it
//! accepts hardlinks, GNU sparse files, unknown entry types (as regular files) and duplicate
//! paths (the last one wins); it ignores data after the end of the archive; and it leaves a
//! partial tree behind on failure.
//!
//! Here, members are read one by one in raw mode (extension headers are handled here, with
//! limits, and must be unambiguous), every entry must be byte-for-byte the next manifest
//! entry, only files, directories and symlinks are written, each through an fd of its parent
//! in a private staging directory without following symlinks, and the tree is renamed into
//! place only after the whole stream, zstd frame included, checked out.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;

use super::manifest::{FileEntry, FileKind, Manifest, ManifestError};
use super::staging::Staging;
use crate::sys::archive as sys;

const IO_CHUNK: usize = 1 << 20;
/// Largest zstd window accepted (128 MiB), what level 22 can use; bounds decoder memory.
const WINDOW_LOG_MAX: u32 = 27;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bit of the zstd frame header descriptor saying the frame ends with a content checksum.
const ZSTD_CHECKSUM_FLAG: u8 = 0x04;
const TAR_BLOCK: u64 = 512;
/// Two zero blocks end a tar archive.
const TAR_END_MARKER: u64 = 2 * TAR_BLOCK;
/// Zero padding accepted after the last entry: one GNU tar record.
const MAX_END_PADDING: u64 = 20 * TAR_BLOCK;

/// Bounds on what an archive may make us write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Entries (files, directories and symlinks).
    pub max_entries: u64,
    /// Sum of file sizes.
    pub max_total_bytes: u64,
    /// Size of one file.
    pub max_file_bytes: u64,
    /// Length of a path or symlink target.
    pub max_path_bytes: usize,
    /// Length of one path component.
    pub max_component_bytes: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            max_total_bytes: 64 << 30,
            max_file_bytes: 16 << 30,
            max_path_bytes: 4096,
            max_component_bytes: 255,
        }
    }
}

/// What [`extract_verified`] restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries created: files, directories and symlinks, as in [`Manifest::files`].
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Why an archive was not restored. [`ExtractError::reason`] and [`ExtractError::record`]
/// give the machine-readable form.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("invalid destination `{dest}`: it needs a parent directory and a final name")]
    InvalidDestination { dest: PathBuf },
    #[error("destination `{dest}` already exists")]
    DestinationExists { dest: PathBuf },
    #[error("failed to open the destination's parent directory `{parent}`")]
    OpenDestinationParent {
        parent: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to check whether destination `{dest}` exists")]
    CheckDestination {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to create a staging directory in `{parent}`")]
    CreateStaging {
        parent: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to move the verified tree into place at `{dest}`")]
    Publish {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write `{path}` into the staging directory")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to read the archive")]
    ReadArchive {
        #[source]
        source: io::Error,
    },
    #[error("manifest is not valid")]
    ManifestInvalid(#[source] ManifestError),
    #[error("failed to decompress the archive: {detail}")]
    Decompress { detail: String },
    #[error("archive is truncated{}: {detail}", at(.path))]
    Truncated {
        path: Option<String>,
        detail: String,
    },
    #[error("archive has data after its end: {detail}")]
    TrailingData { detail: String },
    #[error("invalid tar header{}: {detail}", at(.path))]
    HeaderInvalid {
        path: Option<String>,
        detail: String,
    },
    #[error("refused tar extension header{}: {detail}", at(.path))]
    ExtensionRefused {
        path: Option<String>,
        detail: String,
    },
    #[error("entry `{path}` escapes the destination: {detail}")]
    PathEscape { path: String, detail: String },
    #[error("entry name `{path}` is not canonical: {detail}")]
    NonCanonicalPath { path: String, detail: &'static str },
    #[error("entry `{path}` has a refused type: {found}")]
    EntryTypeRefused { path: String, found: String },
    #[error("entry `{path}` has setuid, setgid or sticky bits (mode {mode:o})")]
    SetuidBit { path: String, mode: u32 },
    #[error("entry `{path}` appears more than once")]
    DuplicateEntry { path: String },
    #[error("{limit} exceeded{}: limit {max}, found {found}", at(.path))]
    LimitExceeded {
        path: Option<String>,
        limit: &'static str,
        max: u64,
        found: u64,
    },
    #[error("archive entry `{path}` is not in the manifest (expected `{expected}` next)")]
    UnexpectedEntry { path: String, expected: String },
    #[error("manifest entry `{path}` is missing from the archive{}", found_instead(.found))]
    MissingEntry { path: String, found: Option<String> },
    #[error("archive has entry `{path}` after the last manifest entry")]
    ExtraEntry { path: String },
    #[error("entry `{path}` differs from the manifest in its {field}: expected {expected}, found {found}")]
    EntryMismatch {
        path: String,
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error("content of `{path}` does not match the manifest: expected blake3 {expected}, found {found}")]
    ContentDigestMismatch {
        path: String,
        expected: String,
        found: String,
    },
    /// The caller's check of the archive bytes themselves (see [`extract_verified_checked`]).
    #[error("archive {what} does not match: expected {expected}, found {found}")]
    ArchiveDigestMismatch {
        what: &'static str,
        expected: String,
        found: String,
    },
}

fn at(path: &Option<String>) -> String {
    path.as_ref()
        .map(|path| format!(" at `{path}`"))
        .unwrap_or_default()
}

fn found_instead(found: &Option<String>) -> String {
    found
        .as_ref()
        .map(|found| format!(" (found `{found}` instead)"))
        .unwrap_or_default()
}

/// An [`ExtractError`] flattened for a quarantine record (`reason.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtractFailure {
    /// [`ExtractError::reason`].
    pub reason: &'static str,
    /// [`ExtractError::is_archive_fault`].
    pub archive_fault: bool,
    pub entry: Option<String>,
    pub expected: Option<String>,
    pub found: Option<String>,
    /// The error and its sources, joined with `: `.
    pub message: String,
}

impl ExtractError {
    /// Short stable identifier of the failure, e.g. `content_digest_mismatch`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidDestination { .. } => "invalid_destination",
            Self::DestinationExists { .. } => "destination_exists",
            Self::OpenDestinationParent { .. }
            | Self::CheckDestination { .. }
            | Self::CreateStaging { .. }
            | Self::Publish { .. }
            | Self::Write { .. } => "io",
            Self::ReadArchive { .. } => "read_archive",
            Self::ManifestInvalid(_) => "manifest_invalid",
            Self::Decompress { .. } => "decompress",
            Self::Truncated { .. } => "truncated",
            Self::TrailingData { .. } => "trailing_data",
            Self::HeaderInvalid { .. } => "header_invalid",
            Self::ExtensionRefused { .. } => "extension_refused",
            Self::PathEscape { .. } => "path_escape",
            Self::NonCanonicalPath { .. } => "non_canonical_path",
            Self::EntryTypeRefused { .. } => "entry_type_refused",
            Self::SetuidBit { .. } => "setuid_bit",
            Self::DuplicateEntry { .. } => "duplicate_entry",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::UnexpectedEntry { .. } => "unexpected_entry",
            Self::MissingEntry { .. } => "missing_entry",
            Self::ExtraEntry { .. } => "extra_entry",
            Self::EntryMismatch { .. } => "entry_mismatch",
            Self::ContentDigestMismatch { .. } => "content_digest_mismatch",
            Self::ArchiveDigestMismatch { .. } => "archive_digest_mismatch",
        }
    }

    /// Whether the archive or manifest is to blame (quarantine it) rather than the local
    /// destination, filesystem or archive reader (retrying may work).
    pub fn is_archive_fault(&self) -> bool {
        !matches!(
            self,
            Self::InvalidDestination { .. }
                | Self::DestinationExists { .. }
                | Self::OpenDestinationParent { .. }
                | Self::CheckDestination { .. }
                | Self::CreateStaging { .. }
                | Self::Publish { .. }
                | Self::Write { .. }
                | Self::ReadArchive { .. }
        )
    }

    /// The archive or manifest entry the failure is about, if any.
    pub fn entry_path(&self) -> Option<&str> {
        match self {
            Self::Write { path, .. }
            | Self::PathEscape { path, .. }
            | Self::NonCanonicalPath { path, .. }
            | Self::EntryTypeRefused { path, .. }
            | Self::SetuidBit { path, .. }
            | Self::DuplicateEntry { path }
            | Self::UnexpectedEntry { path, .. }
            | Self::MissingEntry { path, .. }
            | Self::ExtraEntry { path }
            | Self::EntryMismatch { path, .. }
            | Self::ContentDigestMismatch { path, .. } => Some(path),
            Self::Truncated { path, .. }
            | Self::HeaderInvalid { path, .. }
            | Self::ExtensionRefused { path, .. }
            | Self::LimitExceeded { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    /// What the manifest or the rules required, when the failure is a comparison.
    pub fn expected(&self) -> Option<String> {
        match self {
            Self::UnexpectedEntry { expected, .. }
            | Self::EntryMismatch { expected, .. }
            | Self::ContentDigestMismatch { expected, .. }
            | Self::ArchiveDigestMismatch { expected, .. } => Some(expected.clone()),
            Self::MissingEntry { path, .. } => Some(path.clone()),
            Self::LimitExceeded { max, .. } => Some(max.to_string()),
            Self::EntryTypeRefused { .. } => Some("file, dir or symlink".to_owned()),
            Self::SetuidBit { .. } => Some("no bits above 0777".to_owned()),
            _ => None,
        }
    }

    /// What the archive held instead, when the failure is a comparison.
    pub fn found(&self) -> Option<String> {
        match self {
            Self::UnexpectedEntry { path, .. } => Some(path.clone()),
            Self::MissingEntry { found, .. } => found.clone(),
            Self::EntryMismatch { found, .. }
            | Self::ContentDigestMismatch { found, .. }
            | Self::ArchiveDigestMismatch { found, .. }
            | Self::EntryTypeRefused { found, .. } => Some(found.clone()),
            Self::LimitExceeded { found, .. } => Some(found.to_string()),
            Self::SetuidBit { mode, .. } => Some(format!("{mode:o}")),
            _ => None,
        }
    }

    /// The failure as a serialisable record.
    pub fn record(&self) -> ExtractFailure {
        let message = crate::errors::error_chain(self);
        ExtractFailure {
            reason: self.reason(),
            archive_fault: self.is_archive_fault(),
            entry: self.entry_path().map(str::to_owned),
            expected: self.expected(),
            found: self.found(),
            message,
        }
    }
}

/// Restores a tar+zstd `archive` made by [`super::pack::pack_outputs`] into `dest`, which
/// must not exist yet (its parent must), after checking it against `manifest` entry by
/// entry within `limits`.
///
/// Either the whole verified tree appears at `dest`, atomically, or nothing does: on any
/// error the staging directory is removed and `dest` is left absent. The parent of `dest`
/// should not be writable by other users.
pub fn extract_verified<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractReport, ExtractError> {
    extract_verified_checked(archive, manifest, dest, limits, |_| Ok(()))
}

/// [`extract_verified`], with one more gate before the tree is published: `check` gets the
/// archive reader back once the whole stream (zstd frame and end of input included) checked
/// out, so a caller that hashes the compressed bytes as they are read (the cache) can
/// compare them with what was signed in the same single pass. An error from `check`
/// refuses the archive like any other.
pub fn extract_verified_checked<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    dest: &Path,
    limits: &ExtractLimits,
    check: impl FnOnce(R) -> Result<(), ExtractError>,
) -> Result<ExtractReport, ExtractError> {
    check_manifest(manifest, limits)?;
    let (Some(parent), Some(dest_name)) = (dest.parent(), dest.file_name()) else {
        return Err(ExtractError::InvalidDestination {
            dest: dest.to_owned(),
        });
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent_fd =
        sys::open_dir(parent).map_err(|source| ExtractError::OpenDestinationParent {
            parent: parent.to_owned(),
            source,
        })?;
    let exists = sys::exists_at(parent_fd.as_fd(), dest_name).map_err(|source| {
        ExtractError::CheckDestination {
            dest: dest.to_owned(),
            source,
        }
    })?;
    if exists {
        return Err(ExtractError::DestinationExists {
            dest: dest.to_owned(),
        });
    }
    let mut staging =
        Staging::create(parent_fd.as_fd()).map_err(|source| ExtractError::CreateStaging {
            parent: parent.to_owned(),
            source,
        })?;
    let restored =
        restore(archive, manifest, limits, Some(&mut staging)).and_then(|(report, archive)| {
            check(archive)?;
            staging.publish(dest_name).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    ExtractError::DestinationExists {
                        dest: dest.to_owned(),
                    }
                } else {
                    ExtractError::Publish {
                        dest: dest.to_owned(),
                        source,
                    }
                }
            })?;
            Ok(report)
        });
    if restored.is_err() {
        if let Err(err) = staging.remove() {
            tracing::error!(
                parent = %parent.display(),
                error = %err,
                "failed to remove the staging directory of a refused archive"
            );
        }
    }
    restored
}

/// Reads and checks `archive` against `manifest` exactly as [`extract_verified`] does, but
/// writes nothing: for a caller that needs the verdict and not the tree. Returns the
/// archive reader, which has been read to its end.
pub fn verify_stream<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    limits: &ExtractLimits,
) -> Result<(ExtractReport, R), ExtractError> {
    check_manifest(manifest, limits)?;
    restore(archive, manifest, limits, None)
}

/// Checks, before anything is written, that the manifest is valid and within `limits`; the
/// archive must then match it, so this bounds what the archive can make us write.
fn check_manifest(manifest: &Manifest, limits: &ExtractLimits) -> Result<(), ExtractError> {
    manifest.validate().map_err(ExtractError::ManifestInvalid)?;
    let entries = manifest.files.len() as u64;
    if entries > limits.max_entries {
        return Err(ExtractError::LimitExceeded {
            path: None,
            limit: "max_entries",
            max: limits.max_entries,
            found: entries,
        });
    }
    let mut total: u64 = 0;
    for entry in &manifest.files {
        check_name_limits(&entry.path, limits)?;
        if let Some(target) = &entry.target {
            check_length(
                &entry.path,
                target.len(),
                "max_path_bytes",
                limits.max_path_bytes,
            )?;
        }
        if entry.size > limits.max_file_bytes {
            return Err(ExtractError::LimitExceeded {
                path: Some(entry.path.clone()),
                limit: "max_file_bytes",
                max: limits.max_file_bytes,
                found: entry.size,
            });
        }
        total = total.saturating_add(entry.size);
        if total > limits.max_total_bytes {
            return Err(ExtractError::LimitExceeded {
                path: Some(entry.path.clone()),
                limit: "max_total_bytes",
                max: limits.max_total_bytes,
                found: total,
            });
        }
    }
    Ok(())
}

fn check_name_limits(path: &str, limits: &ExtractLimits) -> Result<(), ExtractError> {
    check_length(path, path.len(), "max_path_bytes", limits.max_path_bytes)?;
    for component in path.split('/') {
        check_length(
            path,
            component.len(),
            "max_component_bytes",
            limits.max_component_bytes,
        )?;
    }
    Ok(())
}

fn check_length(
    path: &str,
    len: usize,
    limit: &'static str,
    max: usize,
) -> Result<(), ExtractError> {
    if len > max {
        return Err(ExtractError::LimitExceeded {
            path: Some(path.to_owned()),
            limit,
            max: max as u64,
            found: len as u64,
        });
    }
    Ok(())
}

/// How reading the members stopped, when it did not refuse the archive outright.
enum Stop {
    Refused(ExtractError),
    /// A read from the tar stream failed; what it means depends on the stream's state.
    Stream {
        error: io::Error,
        path: Option<String>,
    },
    /// The tar stream ended (cleanly or not) before manifest entry `missing`.
    EndedEarly {
        missing: String,
        entries_end: u64,
    },
}

impl From<ExtractError> for Stop {
    fn from(err: ExtractError) -> Self {
        Self::Refused(err)
    }
}

/// Matches the archive against the manifest, writing into `staging` when there is one.
///
/// The archive is read and decompressed on a thread of its own, a few chunks ahead of the
/// matching and writing done here: the two halves cost about the same, so the restore
/// takes about half as long on two CPUs.
fn restore<R: Read + Send>(
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

/// A real archive member with the GNU long name/link and PAX records before it applied.
struct Member<'a, R: Read> {
    entry: tar::Entry<'a, R>,
    typeflag: u8,
    mode: u32,
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

/// Reads the next member, consuming the extension headers that describe it. Each kind of
/// extension may appear once, and a name may come from a GNU long name or a PAX record but
/// not both, so no two tar readers can disagree about it.
fn next_member<'a, R: Read>(
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

/// Error from the caller's archive reader, kept apart from decoding errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SourceError(io::Error);

/// Error from the zstd decoder (which passes [`SourceError`]s through), kept apart from tar
/// parsing errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DecodeError(io::Error);

/// The caller's reader, with its errors marked as [`SourceError`].
struct SourceReader<R>(R);

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|err| io::Error::new(err.kind(), SourceError(err)))
    }
}

type ZstdInput<R> = BufReader<io::Chain<io::Cursor<[u8; 5]>, SourceReader<R>>>;

/// The decompressed tar stream.
struct DecodedStream<R: Read> {
    decoder: zstd::stream::read::Decoder<'static, ZstdInput<R>>,
}

impl<R: Read> DecodedStream<R> {
    /// Starts decoding after checking that the archive is a zstd frame with a content
    /// checksum, so corruption the decoder can detect is always detected.
    fn open(mut archive: R) -> Result<Self, ExtractError> {
        let mut frame_start = [0u8; 5];
        archive.read_exact(&mut frame_start).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                ExtractError::Truncated {
                    path: None,
                    detail: "the archive is shorter than a zstd frame header".to_owned(),
                }
            } else {
                ExtractError::ReadArchive { source }
            }
        })?;
        let decompress = |detail: String| ExtractError::Decompress { detail };
        if frame_start[..4] != ZSTD_MAGIC {
            return Err(decompress(
                "the archive does not start with a zstd frame".to_owned(),
            ));
        }
        if frame_start[4] & ZSTD_CHECKSUM_FLAG == 0 {
            return Err(decompress(
                "the zstd frame has no content checksum".to_owned(),
            ));
        }
        let input = BufReader::with_capacity(
            IO_CHUNK,
            io::Cursor::new(frame_start).chain(SourceReader(archive)),
        );
        let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
            .map_err(|err| decompress(err.to_string()))?;
        decoder
            .window_log_max(WINDOW_LOG_MAX)
            .map_err(|err| decompress(err.to_string()))?;
        Ok(Self {
            decoder: decoder.single_frame(),
        })
    }

    /// Once the frame was decoded to its end: requires no byte after it and returns the
    /// caller's reader, read to its end.
    fn finish(self) -> Result<R, ExtractError> {
        let mut input = self.decoder.finish();
        match input.fill_buf() {
            Ok([]) => Ok(input.into_inner().into_inner().1 .0),
            Ok(_) => Err(ExtractError::TrailingData {
                detail: "bytes follow the zstd frame".to_owned(),
            }),
            Err(err) => Err(classify(
                io::Error::new(err.kind(), DecodeError(err)),
                false,
                None,
            )),
        }
    }
}

impl<R: Read> Read for DecodedStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder
            .read(buf)
            .map_err(|err| io::Error::new(err.kind(), DecodeError(err)))
    }
}

/// Decompressed chunks in flight between the decoding thread and the tar reader: enough
/// to ride out a slow file write, little enough that a bomb is never inflated far ahead of
/// the checks.
const AHEAD_CHUNKS: usize = 4;

/// What the decoding thread sends: a chunk (with the length filled), or how the stream
/// stopped (`Ok(())` at the end of the frame).
enum Decoded {
    Chunk(Vec<u8>, usize),
    Stopped(io::Result<()>),
}

/// The decompressed tar stream as the tar reader sees it, decoded by a thread of the
/// caller's scope; counts what was read and whether it ended.
struct DecodedAhead<'scope, R: Read> {
    chunks: mpsc::Receiver<Decoded>,
    /// Read chunks go back to the decoding thread, so it allocates no more than a few.
    spent: mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    start: usize,
    end: usize,
    position: u64,
    at_end: bool,
    decoder: std::thread::ScopedJoinHandle<'scope, DecodedStream<R>>,
}

impl<'scope, R: Read + Send + 'scope> DecodedAhead<'scope, R> {
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        stream: DecodedStream<R>,
    ) -> Self {
        let (chunk_tx, chunks) = mpsc::sync_channel(AHEAD_CHUNKS);
        let (spent, spent_rx) = mpsc::sync_channel(AHEAD_CHUNKS + 1);
        let decoder = scope.spawn(move || decode(stream, &chunk_tx, &spent_rx));
        Self {
            chunks,
            spent,
            current: Vec::new(),
            start: 0,
            end: 0,
            position: 0,
            at_end: false,
            decoder,
        }
    }

    /// Requires what follows the last entry to be the end-of-archive marker and zero
    /// padding only, the zstd frame to end there with a valid checksum, and no byte after it.
    /// Returns the caller's reader, read to its end.
    fn finish(mut self, entries_end: u64) -> Result<R, ExtractError> {
        let mut block = [0u8; TAR_BLOCK as usize];
        loop {
            let n = match self.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(classify(err, self.at_end, None)),
            };
            if block[..n].iter().any(|&b| b != 0) {
                return Err(ExtractError::TrailingData {
                    detail: "non-zero bytes after the last entry".to_owned(),
                });
            }
            if self.position.saturating_sub(entries_end) > MAX_END_PADDING {
                return Err(ExtractError::TrailingData {
                    detail: format!(
                        "more than {MAX_END_PADDING} bytes of padding after the last entry"
                    ),
                });
            }
        }
        let padding = self.position.saturating_sub(entries_end);
        if padding < TAR_END_MARKER {
            return Err(ExtractError::Truncated {
                path: None,
                detail: "the end-of-archive marker is missing".to_owned(),
            });
        }
        if !padding.is_multiple_of(TAR_BLOCK) {
            return Err(ExtractError::TrailingData {
                detail: "the padding is not a whole number of tar blocks".to_owned(),
            });
        }
        // The thread returned after sending the end of the frame.
        self.decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .finish()
    }
}

impl<R: Read> Read for DecodedAhead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.start == self.end {
            if self.at_end {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Decoded::Chunk(chunk, len)) => {
                    let spent = std::mem::replace(&mut self.current, chunk);
                    if !spent.is_empty() {
                        // The thread may have stopped already; then the chunk is freed.
                        let _ = self.spent.try_send(spent);
                    }
                    (self.start, self.end) = (0, len);
                }
                Ok(Decoded::Stopped(Ok(()))) => self.at_end = true,
                Ok(Decoded::Stopped(Err(err))) => return Err(err),
                Err(mpsc::RecvError) => {
                    return Err(io::Error::other("the decoding thread stopped early"))
                }
            }
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.current[self.start..self.start + n]);
        self.start += n;
        self.position += n as u64;
        Ok(n)
    }
}

/// The decoding thread: fills chunks from `stream` and sends them until the frame ends, a
/// read fails, or the reader hung up; returns the stream for [`DecodedStream::finish`].
fn decode<R: Read>(
    mut stream: DecodedStream<R>,
    chunks: &mpsc::SyncSender<Decoded>,
    spent: &mpsc::Receiver<Vec<u8>>,
) -> DecodedStream<R> {
    loop {
        let mut chunk = spent.try_recv().unwrap_or_else(|_| vec![0; IO_CHUNK]);
        let mut len = 0;
        let stopped = loop {
            match stream.read(&mut chunk[len..]) {
                Ok(0) => break Some(Ok(())),
                Ok(n) => {
                    len += n;
                    if len == chunk.len() {
                        break None;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => break Some(Err(err)),
            }
        };
        if len > 0 && chunks.send(Decoded::Chunk(chunk, len)).is_err() {
            return stream;
        }
        if let Some(stopped) = stopped {
            let _ = chunks.send(Decoded::Stopped(stopped));
            return stream;
        }
    }
}

/// Takes the marker error `M` out of `error` if that is what it carries.
fn take_marker<M: std::error::Error + Send + Sync + 'static>(
    error: io::Error,
) -> Result<M, io::Error> {
    if !error.get_ref().is_some_and(|inner| inner.is::<M>()) {
        return Err(error);
    }
    let kind = error.kind();
    let inner = error
        .into_inner()
        .expect("get_ref returned the inner error");
    inner
        .downcast::<M>()
        .map(|marker| *marker)
        .map_err(|other| io::Error::new(kind, other))
}

/// Names a failed read of the tar stream after where it came from: the caller's reader, the
/// zstd decoder, or the tar parser (which fails on a short stream too).
fn classify(error: io::Error, stream_ended: bool, path: Option<String>) -> ExtractError {
    match take_marker::<DecodeError>(error) {
        Ok(DecodeError(inner)) => match take_marker::<SourceError>(inner) {
            Ok(SourceError(source)) => ExtractError::ReadArchive { source },
            Err(inner) if inner.kind() == io::ErrorKind::UnexpectedEof => ExtractError::Truncated {
                path,
                detail: format!("the compressed stream ends inside the zstd frame ({inner})"),
            },
            Err(inner) => ExtractError::Decompress {
                detail: inner.to_string(),
            },
        },
        Err(error) if stream_ended => ExtractError::Truncated {
            path,
            detail: error.to_string(),
        },
        Err(error) => ExtractError::HeaderInvalid {
            path,
            detail: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::archive::manifest::MANIFEST_SCHEMA;

    /// Builds tar streams member by member, including ones the `tar` crate refuses to write.
    struct RawTar(Vec<u8>);

    fn header(typeflag: u8, name: &str, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkflag[0] = typeflag;
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let body_len = key.len() + value.len() + 3;
        let mut len = body_len + 1;
        while body_len + len.to_string().len() != len {
            len = body_len + len.to_string().len();
        }
        let mut record = format!("{len} {key}=").into_bytes();
        record.extend_from_slice(value);
        record.push(b'\n');
        record
    }

    impl RawTar {
        fn new() -> Self {
            Self(Vec::new())
        }

        fn member(mut self, mut header: tar::Header, data: &[u8]) -> Self {
            header.set_cksum();
            self.0.extend_from_slice(header.as_bytes());
            self.0.extend_from_slice(data);
            let padding = data.len().next_multiple_of(512) - data.len();
            self.0.resize(self.0.len() + padding, 0);
            self
        }

        fn dir(self, name: &str) -> Self {
            self.member(header(b'5', name, 0o755, 0), &[])
        }

        fn file(self, name: &str, mode: u32, data: &[u8]) -> Self {
            self.member(header(b'0', name, mode, data.len() as u64), data)
        }

        fn symlink(self, name: &str, target: &str) -> Self {
            let mut header = header(b'2', name, 0o777, 0);
            header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            self.member(header, &[])
        }

        fn long(self, typeflag: u8, value: &[u8]) -> Self {
            let mut data = value.to_vec();
            data.push(0);
            self.member(
                header(typeflag, "././@LongLink", 0o644, data.len() as u64),
                &data,
            )
        }

        fn pax(self, records: &[(&str, &[u8])]) -> Self {
            let data: Vec<u8> = records
                .iter()
                .flat_map(|(key, value)| pax_record(key, value))
                .collect();
            self.member(
                header(b'x', "PaxHeaders/entry", 0o644, data.len() as u64),
                &data,
            )
        }

        /// The tar bytes with the end-of-archive marker.
        fn end(mut self) -> Vec<u8> {
            self.0.resize(self.0.len() + 1024, 0);
            self.0
        }

        fn archive(self) -> Vec<u8> {
            compress(&self.end())
        }
    }

    fn compress(tar: &[u8]) -> Vec<u8> {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.write_all(tar).unwrap();
        encoder.finish().unwrap()
    }

    fn file_entry(path: &str, mode: u32, content: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: FileKind::File,
            mode,
            size: content.len() as u64,
            blake3: Some(blake3::hash(content).to_hex().to_string()),
            target: None,
        }
    }

    fn base_manifest() -> Manifest {
        Manifest::new(vec![
            FileEntry::dir("out"),
            file_entry("out/a", 0o644, b"hello"),
            file_entry("out/b", 0o755, b"world"),
        ])
    }

    fn base_tar() -> RawTar {
        RawTar::new()
            .dir("out")
            .file("out/a", 0o644, b"hello")
            .file("out/b", 0o755, b"world")
    }

    /// `tmp/cache` is the destination's parent, `tmp/outside` a directory escapes would hit.
    struct Sandbox {
        tmp: tempfile::TempDir,
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    impl Sandbox {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            fs::create_dir(tmp.path().join("cache")).unwrap();
            fs::create_dir(tmp.path().join("outside")).unwrap();
            Self { tmp }
        }

        fn cache(&self) -> PathBuf {
            self.tmp.path().join("cache")
        }

        fn dest(&self) -> PathBuf {
            self.cache().join("dest")
        }

        fn outside(&self) -> PathBuf {
            self.tmp.path().join("outside")
        }

        fn extract(
            &self,
            archive: &[u8],
            manifest: &Manifest,
            limits: &ExtractLimits,
        ) -> Result<ExtractReport, ExtractError> {
            extract_verified(archive, manifest, &self.dest(), limits)
        }

        /// Extracts expecting a refusal, and checks that nothing is left anywhere: no
        /// destination, no staging directory, nothing next to them or in `outside`.
        fn refused(
            &self,
            archive: &[u8],
            manifest: &Manifest,
            limits: &ExtractLimits,
        ) -> ExtractError {
            let err = self.extract(archive, manifest, limits).unwrap_err();
            assert!(
                fs::symlink_metadata(self.dest()).is_err(),
                "dest exists after: {err}"
            );
            assert_eq!(
                names(&self.cache()),
                Vec::<String>::new(),
                "left behind after: {err}"
            );
            assert_eq!(
                names(self.tmp.path()),
                ["cache", "outside"],
                "written outside: {err}"
            );
            assert_eq!(
                names(&self.outside()),
                Vec::<String>::new(),
                "written outside: {err}"
            );
            err
        }
    }

    fn assert_refused(archive: &[u8], manifest: &Manifest, reason: &str) -> ExtractError {
        assert_refused_with(archive, manifest, &ExtractLimits::default(), reason)
    }

    fn assert_refused_with(
        archive: &[u8],
        manifest: &Manifest,
        limits: &ExtractLimits,
        reason: &str,
    ) -> ExtractError {
        let err = Sandbox::new().refused(archive, manifest, limits);
        assert_eq!(err.reason(), reason, "{err}");
        assert!(err.is_archive_fault(), "{err}");
        err
    }

    #[test]
    fn honest_archive_is_restored() {
        let sandbox = Sandbox::new();
        let report = sandbox
            .extract(
                &base_tar().archive(),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap();
        assert_eq!(
            report,
            ExtractReport {
                files: 3,
                bytes: 10
            }
        );
        assert_eq!(fs::read(sandbox.dest().join("out/a")).unwrap(), b"hello");
        assert_eq!(names(&sandbox.cache()), ["dest"]);
    }

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
    fn zstd_bombs_hit_the_limits() {
        let zeros = vec![0u8; 64 << 20];
        let limits = ExtractLimits {
            max_file_bytes: 1 << 20,
            ..ExtractLimits::default()
        };
        let bomb = RawTar::new()
            .dir("out")
            .file("out/a", 0o644, &zeros)
            .file("out/b", 0o755, b"world")
            .archive();
        assert!(bomb.len() < 64 << 10, "the bomb should compress well");
        let err = assert_refused_with(&bomb, &base_manifest(), &limits, "limit_exceeded");
        assert_eq!(err.entry_path(), Some("out/a"));

        let declared = Manifest::new(vec![
            FileEntry::dir("out"),
            file_entry("out/a", 0o644, &zeros),
        ]);
        assert_refused_with(&bomb, &declared, &limits, "limit_exceeded");

        let total = ExtractLimits {
            max_total_bytes: 8,
            ..ExtractLimits::default()
        };
        assert_refused_with(
            &base_tar().archive(),
            &base_manifest(),
            &total,
            "limit_exceeded",
        );
        let entries = ExtractLimits {
            max_entries: 2,
            ..ExtractLimits::default()
        };
        assert_refused_with(
            &base_tar().archive(),
            &base_manifest(),
            &entries,
            "limit_exceeded",
        );
    }

    #[test]
    fn truncated_streams_are_refused() {
        let archive = base_tar().archive();
        for cut in [3, archive.len() / 2, archive.len() - 4, archive.len() - 1] {
            assert_refused(&archive[..cut], &base_manifest(), "truncated");
        }
        let mut no_end_marker = base_tar().0;
        no_end_marker.resize(no_end_marker.len() + 512, 0);
        assert_refused(&compress(&no_end_marker), &base_manifest(), "truncated");
        let mut cut_inside_file = base_tar().0;
        cut_inside_file.truncate(512 * 4 + 2);
        assert_refused(&compress(&cut_inside_file), &base_manifest(), "truncated");
    }

    #[test]
    fn trailing_data_is_refused() {
        let mut garbage = base_tar().archive();
        garbage.extend_from_slice(b"garbage");
        assert_refused(&garbage, &base_manifest(), "trailing_data");

        let mut second_frame = base_tar().archive();
        second_frame.extend_from_slice(&RawTar::new().dir("evil").archive());
        assert_refused(&second_frame, &base_manifest(), "trailing_data");

        let mut after_end = base_tar().end();
        after_end.extend_from_slice(b"smuggled");
        assert_refused(&compress(&after_end), &base_manifest(), "trailing_data");

        let mut long_padding = base_tar().end();
        long_padding.resize(long_padding.len() + 64 * 512, 0);
        assert_refused(&compress(&long_padding), &base_manifest(), "trailing_data");

        let mut gnu_tar_record = base_tar().end();
        gnu_tar_record.resize(gnu_tar_record.len().next_multiple_of(10240), 0);
        Sandbox::new()
            .extract(
                &compress(&gnu_tar_record),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap();
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

    #[test]
    fn zstd_frames_must_be_valid_and_checksummed() {
        assert_refused(&base_tar().end(), &base_manifest(), "decompress");
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(false).unwrap();
        encoder.write_all(&base_tar().end()).unwrap();
        let unchecked = encoder.finish().unwrap();
        assert_refused(&unchecked, &base_manifest(), "decompress");
        let mut bad_checksum = base_tar().archive();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 0xff;
        assert_refused(&bad_checksum, &base_manifest(), "decompress");
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

    #[test]
    fn existing_destination_is_left_alone() {
        let sandbox = Sandbox::new();
        fs::create_dir(sandbox.dest()).unwrap();
        fs::write(sandbox.dest().join("keep"), b"x").unwrap();
        let err = sandbox
            .extract(
                &base_tar().archive(),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap_err();
        assert_eq!(err.reason(), "destination_exists");
        assert!(!err.is_archive_fault());
        assert_eq!(names(&sandbox.dest()), ["keep"]);
        assert_eq!(names(&sandbox.cache()), ["dest"]);

        let dangling = Sandbox::new();
        std::os::unix::fs::symlink(dangling.outside().join("nothing"), dangling.dest()).unwrap();
        let err = dangling
            .extract(
                &base_tar().archive(),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap_err();
        assert_eq!(err.reason(), "destination_exists");
        assert_eq!(names(&dangling.outside()), Vec::<String>::new());
    }

    #[test]
    fn reader_failures_are_not_blamed_on_the_archive() {
        struct FailingAfter(Vec<u8>);
        impl Read for FailingAfter {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let archive = base_tar().archive();
        let sandbox = Sandbox::new();
        let err = extract_verified(
            FailingAfter(archive[..archive.len() / 2].to_vec()),
            &base_manifest(),
            &sandbox.dest(),
            &ExtractLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "read_archive", "{err}");
        assert!(!err.is_archive_fault());
        assert!(err.record().message.contains("disk on fire"), "{err}");
        assert_eq!(names(&sandbox.cache()), Vec::<String>::new());
    }

    #[test]
    fn manifest_of_another_schema_is_refused() {
        let mut manifest = base_manifest();
        manifest.schema = format!("{MANIFEST_SCHEMA}-next");
        assert_refused(&base_tar().archive(), &manifest, "manifest_invalid");
    }
}
