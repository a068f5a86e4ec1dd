//! Restoring an entry: every check passes before anything reaches a destination.
//!
//! Order (docs/cache-format.md §Restore):
//! 1. `signature`: the bundle (at most 64 MiB, opened without following symlinks) holds a
//!    DSSE envelope with exactly one signature, payload type exactly in-toto, made by a key
//!    trusted for the scope; only then is the payload parsed (`statement`), strictly.
//! 2. `key`: the signed format version, cache key and scope equal the requested ones.
//! 3. `archive` and 4. `entries`, in one pass: the archive is read from one private fd
//!    (opened without following symlinks, size checked first); its bytes are hashed
//!    (sha256 + blake3) as they are decompressed, each tar entry must equal the next
//!    manifest entry, and files are written into a private staging directory without
//!    following symlinks. The digests and size are compared with the signed ones once the
//!    stream ended, before anything is published; when the extraction failed first, the
//!    rest of the archive is still hashed so that tampered bytes are reported as such.
//! 5. publish: the staged tree is renamed into place (no replace), and the archive copy
//!    that was written alongside is renamed to the artifact path.
//!
//! Any failure that is the entry's fault moves it to quarantine; the caller builds fresh.
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::Digest;

pub use hermetic_contract::report::RestoreStep;

use super::entry::{escaping_symlink, ArchiveDigests, EntryError, EntryManifest, OpenedEntry};
use super::key::CacheKey;
use super::quarantine::{self, QuarantineRecord, Refusal, RemoteOrigin};
use super::store::{Scope, Store};
use super::{ARCHIVE_FILE, BUNDLE_FILE};
use crate::archive::extract::{
    extract_verified_checked, verify_stream, ExtractError, ExtractLimits,
};
use crate::archive::manifest::Manifest;
use crate::signing::{Bundle, BundleError, VerifyingKey};
use crate::sys::archive as sys;

const IO_CHUNK: usize = 1 << 20;
/// Largest signed manifest read. It lists every file (about 200 bytes each once base64
/// encoded), so provenance's 1 MiB would cap entries near 5,000 files; 64 MiB allows
/// about 300,000 and still bounds what is parsed before the signature is checked.
pub const MAX_ENTRY_BUNDLE_BYTES: usize = 64 << 20;

/// Where a verified entry goes. With neither, the entry is only verified.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestoreTargets<'a> {
    /// A copy of the archive, renamed into place (replacing a file there) after the checks.
    pub artifact: Option<&'a Path>,
    /// A new directory (it must not exist) that receives the output tree.
    pub extract: Option<&'a Path>,
}

/// A verified, restored entry.
#[derive(Debug)]
pub struct Restored {
    pub entry: EntryManifest,
    /// Key id of the trusted key that signed it.
    pub signer: String,
    pub entry_dir: PathBuf,
    /// Entries (files, directories, symlinks) and file bytes checked.
    pub files: u64,
    pub bytes: u64,
}

/// The outcome of looking an entry up.
#[derive(Debug)]
pub enum Lookup {
    /// No usable entry: none stored, or (with a reason) one this request may not use.
    Miss {
        reason: Option<String>,
    },
    Hit(Box<Restored>),
    /// The entry was refused; `quarantined` says where it went when it was its fault.
    Refused {
        error: RestoreError,
        quarantined: Option<PathBuf>,
    },
}

/// Why an entry was refused. Each names the restore step, the file, and what was expected
/// against what was found.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("step entry: {path} is not a directory (a symlink or another file was put there)")]
    EntryNotDirectory { path: PathBuf },
    #[error("step entry: failed to open {path}")]
    OpenEntry {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("step signature: {path} is missing, not a regular file, or unreadable")]
    ReadBundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("step signature: {path} is not an acceptable bundle")]
    Bundle {
        path: PathBuf,
        #[source]
        source: BundleError,
    },
    #[error("step {}: {path}", entry_step(.source))]
    Entry {
        path: PathBuf,
        #[source]
        source: EntryError,
    },
    #[error("step key: the signed cache key is {found}, not the requested {expected} (an entry replayed under another key)")]
    KeyMismatch { expected: String, found: String },
    #[error("step key: the entry was signed for scope {found:?}, not {expected:?} (an entry moved between scopes)")]
    ScopeMismatch { expected: String, found: String },
    #[error("step archive: failed to open {path}")]
    OpenArchive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("step archive: {path} is not a regular file")]
    ArchiveNotRegular { path: PathBuf },
    #[error("step archive: {path} is {found} bytes, the signed size is {expected}")]
    ArchiveSize {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("step {}: {path}", extract_step(.source))]
    Archive {
        path: PathBuf,
        #[source]
        source: ExtractError,
    },
    #[error("step entries: symlink `{path}` points outside the restored tree (to `{target}`)")]
    SymlinkEscapes { path: String, target: String },
    #[error("failed to write the restored archive to {path}")]
    Artifact {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(super) fn entry_step(err: &EntryError) -> RestoreStep {
    match err {
        EntryError::Signature(_) => RestoreStep::Signature,
        EntryError::Version { .. } => RestoreStep::Key,
        _ => RestoreStep::Statement,
    }
}

fn extract_step(err: &ExtractError) -> RestoreStep {
    match err {
        ExtractError::ArchiveDigestMismatch { .. }
        | ExtractError::Decompress { .. }
        | ExtractError::ReadArchive { .. } => RestoreStep::Archive,
        _ => RestoreStep::Entries,
    }
}

fn is_not_found(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
}

impl RestoreError {
    /// The restore step that refused the entry.
    pub fn step(&self) -> RestoreStep {
        match self {
            Self::EntryNotDirectory { .. } | Self::OpenEntry { .. } => RestoreStep::Entry,
            Self::ReadBundle { .. } | Self::Bundle { .. } => RestoreStep::Signature,
            Self::Entry { source, .. } => entry_step(source),
            Self::KeyMismatch { .. } | Self::ScopeMismatch { .. } => RestoreStep::Key,
            Self::OpenArchive { .. }
            | Self::ArchiveNotRegular { .. }
            | Self::ArchiveSize { .. } => RestoreStep::Archive,
            Self::Archive { source, .. } => extract_step(source),
            Self::SymlinkEscapes { .. } => RestoreStep::Entries,
            Self::Artifact { .. } => RestoreStep::Publish,
        }
    }

    /// A stable, machine-readable name for the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::EntryNotDirectory { .. } => "entry_not_directory",
            Self::OpenEntry { .. } | Self::Artifact { .. } => "io",
            Self::ReadBundle { source, .. } if is_not_found(source) => "bundle_missing",
            Self::ReadBundle { source, .. } if sys::is_resolution_refused(source) => {
                "bundle_not_regular"
            }
            Self::ReadBundle { .. } => "io",
            Self::Bundle { source, .. } => source.reason(),
            Self::Entry { source, .. } => source.reason(),
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::ScopeMismatch { .. } => "scope_mismatch",
            Self::OpenArchive { source, .. } if is_not_found(source) => "archive_missing",
            Self::OpenArchive { source, .. } if sys::is_resolution_refused(source) => {
                "archive_not_regular"
            }
            Self::OpenArchive { .. } => "io",
            Self::ArchiveNotRegular { .. } => "archive_not_regular",
            Self::ArchiveSize { .. } => "archive_size",
            Self::Archive { source, .. } => source.reason(),
            Self::SymlinkEscapes { .. } => "symlink_escapes",
        }
    }

    /// Whether the entry is to blame (quarantine it), rather than this machine (a local
    /// I/O error: the entry is left alone and the build simply runs).
    pub fn is_entry_fault(&self) -> bool {
        match self {
            Self::Archive { source, .. } => source.is_archive_fault(),
            _ => self.reason() != "io",
        }
    }

    /// The entry file or archive member the failure is about.
    pub fn file(&self) -> Option<String> {
        let name = |path: &Path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        };
        match self {
            Self::Archive { source, .. } => source
                .entry_path()
                .map(|member| format!("{ARCHIVE_FILE}:{member}"))
                .or_else(|| Some(ARCHIVE_FILE.to_owned())),
            Self::ReadBundle { path, .. }
            | Self::Bundle { path, .. }
            | Self::Entry { path, .. }
            | Self::OpenArchive { path, .. }
            | Self::ArchiveNotRegular { path }
            | Self::ArchiveSize { path, .. }
            | Self::Artifact { path, .. } => name(path),
            Self::KeyMismatch { .. } | Self::ScopeMismatch { .. } => Some(BUNDLE_FILE.to_owned()),
            Self::SymlinkEscapes { path, .. } => Some(format!("{ARCHIVE_FILE}:{path}")),
            Self::EntryNotDirectory { .. } | Self::OpenEntry { .. } => None,
        }
    }

    pub fn expected(&self) -> Option<String> {
        match self {
            Self::KeyMismatch { expected, .. } | Self::ScopeMismatch { expected, .. } => {
                Some(expected.clone())
            }
            Self::ArchiveSize { expected, .. } => Some(expected.to_string()),
            Self::Archive { source, .. } => source.expected(),
            _ => None,
        }
    }

    pub fn found(&self) -> Option<String> {
        match self {
            Self::KeyMismatch { found, .. } | Self::ScopeMismatch { found, .. } => {
                Some(found.clone())
            }
            Self::ArchiveSize { found, .. } => Some(found.to_string()),
            Self::Archive { source, .. } => source.found(),
            Self::SymlinkEscapes { target, .. } => Some(target.clone()),
            _ => None,
        }
    }

    /// The error and its sources, joined with `: `.
    pub fn message(&self) -> String {
        crate::errors::error_chain(self)
    }

    fn record(
        &self,
        scope: &Scope,
        key: &CacheKey,
        origin: Option<&RemoteOrigin>,
    ) -> QuarantineRecord {
        QuarantineRecord::new(
            scope.as_str(),
            key.as_str(),
            Refusal {
                step: self.step(),
                reason: self.reason(),
                file: self.file(),
                expected: self.expected(),
                found: self.found(),
                message: self.message(),
            },
            origin,
        )
    }
}

/// Looks up `key` in `scope` and, when an entry is there, verifies it with the `trusted`
/// keys only and restores it to `targets`. A single-run entry is used only when
/// `accept_single_run`. A refused entry is quarantined when it is its fault.
pub fn restore(
    store: &Store,
    scope: &Scope,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    accept_single_run: bool,
    targets: RestoreTargets<'_>,
) -> Lookup {
    restore_entry(store, scope, key, trusted, accept_single_run, targets, None)
}

/// [`restore`], for an entry that came from a registry: a refusal's quarantine record
/// names `origin` too.
pub(super) fn restore_entry(
    store: &Store,
    scope: &Scope,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    accept_single_run: bool,
    targets: RestoreTargets<'_>,
    origin: Option<&RemoteOrigin>,
) -> Lookup {
    let entry_dir = store.entry_dir(scope, key);
    match fs::symlink_metadata(&entry_dir) {
        Err(err) if is_not_found(&err) => return Lookup::Miss { reason: None },
        _ => {}
    }
    let error = match verify_and_restore(store, scope, key, trusted, accept_single_run, targets) {
        Ok(Some(restored)) => {
            store.touch(&entry_dir);
            return Lookup::Hit(Box::new(restored));
        }
        Ok(None) => {
            return Lookup::Miss {
                reason: Some(
                    "the stored entry comes from a single run; this build asks for a \
                     reproducible (dual-run) one"
                        .to_owned(),
                ),
            }
        }
        Err(error) => error,
    };
    if !error.is_entry_fault() {
        return Lookup::Refused {
            error,
            quarantined: None,
        };
    }
    match quarantine::quarantine(store, &entry_dir, &error.record(scope, key, origin)) {
        Ok(path) => Lookup::Refused {
            error,
            quarantined: Some(path),
        },
        Err(quarantine_error) => {
            tracing::error!(
                entry = %entry_dir.display(),
                error = %quarantine_error,
                "failed to quarantine a refused cache entry"
            );
            Lookup::Refused {
                error,
                quarantined: None,
            }
        }
    }
}

fn verify_and_restore(
    store: &Store,
    scope: &Scope,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    accept_single_run: bool,
    targets: RestoreTargets<'_>,
) -> Result<Option<Restored>, RestoreError> {
    let entry_dir = store.entry_dir(scope, key);
    let archive_path = entry_dir.join(ARCHIVE_FILE);
    // 1. signature
    let (entry_fd, entry, signer) = open_signed(store, &entry_dir, trusted)?;

    // 2. key (the format version was checked while opening)
    if entry.cache_key != *key && !key_check_skipped() {
        return Err(RestoreError::KeyMismatch {
            expected: key.to_string(),
            found: entry.cache_key.to_string(),
        });
    }
    if entry.scope != scope.as_str() {
        return Err(RestoreError::ScopeMismatch {
            expected: scope.as_str().to_owned(),
            found: entry.scope.clone(),
        });
    }
    if entry.single_run && !accept_single_run {
        return Ok(None);
    }

    // 3. and 4. archive and entries, one pass; 5. publish
    let archive = sys::open_file_beneath(entry_fd.as_fd(), ARCHIVE_FILE).map_err(|source| {
        RestoreError::OpenArchive {
            path: archive_path.clone(),
            source,
        }
    })?;
    let (files, bytes) = check_archive(archive, &archive_path, &entry, targets)?;
    Ok(Some(Restored {
        entry,
        signer: signer.key_id(),
        entry_dir,
        files,
        bytes,
    }))
}

/// Whether a test switched the key check off (`cache::fault`); never in other builds.
#[cfg(feature = "fault-hooks")]
fn key_check_skipped() -> bool {
    super::fault::key_check_skipped()
}

#[cfg(not(feature = "fault-hooks"))]
fn key_check_skipped() -> bool {
    false
}

/// Step 1 alone, for listings (`cache ls`, `cache quarantine ls`, `cache gc
/// --drop-untrusted`): checks the signed manifest in `entry_dir`, a directory below the
/// store's root reached without following symlinks, against `trusted`, and returns it with
/// the signer's key id. Reads no archive and quarantines nothing: it says who vouches for
/// an entry, not that a restore would accept it.
pub fn signed_by(
    store: &Store,
    entry_dir: &Path,
    trusted: &[VerifyingKey],
) -> Result<(EntryManifest, String), RestoreError> {
    let (_, entry, signer) = open_signed(store, entry_dir, trusted)?;
    Ok((entry, signer.key_id()))
}

/// Opens `entry_dir`, a directory below the store's root, and checks its signed manifest
/// against `trusted`. The cache root is our own configuration; below it nothing is
/// trusted, so the directory and the bundle are reached without following any symlink.
fn open_signed(
    store: &Store,
    entry_dir: &Path,
    trusted: &[VerifyingKey],
) -> Result<(OwnedFd, EntryManifest, VerifyingKey), RestoreError> {
    let relative = entry_dir
        .strip_prefix(store.root())
        .map_err(|_| RestoreError::OpenEntry {
            path: entry_dir.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not below the cache directory"),
        })?;
    let root = sys::open_dir(store.root()).map_err(|source| RestoreError::OpenEntry {
        path: store.root().to_owned(),
        source,
    })?;
    let entry_fd = sys::open_dir_beneath(root.as_fd(), relative).map_err(|source| {
        if sys::is_resolution_refused(&source) {
            RestoreError::EntryNotDirectory {
                path: entry_dir.to_owned(),
            }
        } else {
            RestoreError::OpenEntry {
                path: entry_dir.to_owned(),
                source,
            }
        }
    })?;
    let bundle_path = entry_dir.join(BUNDLE_FILE);
    let bundle_file = sys::open_file_beneath(entry_fd.as_fd(), BUNDLE_FILE).map_err(|source| {
        RestoreError::ReadBundle {
            path: bundle_path.clone(),
            source,
        }
    })?;
    let (entry, signer) = open_entry(bundle_file, &bundle_path, trusted)?;
    Ok((entry_fd, entry, signer))
}

/// Verifies an entry given as two files (`hermetic verify --manifest`): the signed
/// manifest with the `trusted` keys, then the archive against it, writing nothing. There
/// is no requested key or scope to compare with; the caller shows what was signed.
pub fn verify_detached(
    bundle_path: &Path,
    archive_path: &Path,
    trusted: &[VerifyingKey],
) -> Result<Restored, RestoreError> {
    let bundle = File::open(bundle_path).map_err(|source| RestoreError::ReadBundle {
        path: bundle_path.to_owned(),
        source,
    })?;
    let (entry, signer) = open_entry(bundle, bundle_path, trusted)?;
    let archive = File::open(archive_path).map_err(|source| RestoreError::OpenArchive {
        path: archive_path.to_owned(),
        source,
    })?;
    let (files, bytes) = check_archive(archive, archive_path, &entry, RestoreTargets::default())?;
    Ok(Restored {
        entry,
        signer: signer.key_id(),
        entry_dir: bundle_path.parent().unwrap_or(Path::new(".")).to_owned(),
        files,
        bytes,
    })
}

/// Step 1: reads at most [`MAX_ENTRY_BUNDLE_BYTES`] (+1, so a larger file is refused as such),
/// checks the signature with the trusted keys, and only then parses the payload.
fn open_entry(
    bundle_file: File,
    bundle_path: &Path,
    trusted: &[VerifyingKey],
) -> Result<(EntryManifest, VerifyingKey), RestoreError> {
    let read_bundle = |source| RestoreError::ReadBundle {
        path: bundle_path.to_owned(),
        source,
    };
    if !bundle_file.metadata().map_err(read_bundle)?.is_file() {
        return Err(read_bundle(io::Error::from_raw_os_error(libc::ELOOP)));
    }
    let mut bytes = Vec::new();
    bundle_file
        .take(MAX_ENTRY_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_bundle)?;
    let opened = open_bundle(&bytes, bundle_path, trusted)?;
    Ok((opened.entry, opened.signer))
}

/// Step 1 on a bundle's bytes (a file's, or a registry's): at most
/// [`MAX_ENTRY_BUNDLE_BYTES`], the signature checked with the trusted keys, and only then
/// the payload parsed. `path` names where the bytes came from, for errors.
pub(super) fn open_bundle(
    bytes: &[u8],
    path: &Path,
    trusted: &[VerifyingKey],
) -> Result<OpenedEntry, RestoreError> {
    let bundle = Bundle::from_json_limited(bytes, MAX_ENTRY_BUNDLE_BYTES).map_err(|source| {
        RestoreError::Bundle {
            path: path.to_owned(),
            source,
        }
    })?;
    EntryManifest::open(&bundle, trusted).map_err(|source| RestoreError::Entry {
        path: path.to_owned(),
        source,
    })
}

/// Steps 3 to 5 on an open archive: size first, then one pass that hashes the bytes while
/// they are decompressed and matched entry by entry, then publication. Returns the entries
/// and file bytes checked.
fn check_archive(
    archive: File,
    archive_path: &Path,
    entry: &EntryManifest,
    targets: RestoreTargets<'_>,
) -> Result<(u64, u64), RestoreError> {
    if let Some((path, target)) = escaping_symlink(&entry.manifest) {
        return Err(RestoreError::SymlinkEscapes {
            path: path.to_owned(),
            target: target.to_owned(),
        });
    }
    let archive_path = archive_path.to_owned();
    let open_archive = |source| RestoreError::OpenArchive {
        path: archive_path.clone(),
        source,
    };
    let meta = archive.metadata().map_err(open_archive)?;
    if !meta.is_file() {
        return Err(RestoreError::ArchiveNotRegular { path: archive_path });
    }
    if meta.len() != entry.archive.size {
        return Err(RestoreError::ArchiveSize {
            path: archive_path,
            expected: entry.archive.size,
            found: meta.len(),
        });
    }
    let mut copy = match targets.artifact {
        Some(path) => Some(PartialCopy::create(path)?),
        None => None,
    };
    let mut reader = HashingReader::new(archive, entry.archive.size, copy.as_mut());
    let limits = limits_of(&entry.manifest);
    let checked = match targets.extract {
        Some(dest) => extract_verified_checked(&mut reader, &entry.manifest, dest, &limits, |r| {
            r.check(&entry.archive)
        }),
        None => verify_stream(&mut reader, &entry.manifest, &limits)
            .and_then(|(report, r)| r.check(&entry.archive).map(|()| report)),
    };
    let report = match checked {
        Ok(report) => report,
        Err(error) => {
            // Tampered bytes usually trip the decoder or a file digest first; finish hashing
            // so they are reported as what they are: not the archive that was signed.
            let error = if error.is_archive_fault() {
                reader.drain();
                reader.check(&entry.archive).err().unwrap_or(error)
            } else {
                error
            };
            return Err(RestoreError::Archive {
                path: archive_path,
                source: error,
            });
        }
    };

    // 5. publish (the tree was published by the extractor once every check passed)
    if let Some(copy) = copy {
        copy.commit()?;
    }
    Ok((report.files, report.bytes))
}

/// Limits from the signed manifest (never above the defaults): the archive may not make
/// us write more entries or bytes than were signed, so a decompression bomb is refused at
/// its first oversized header instead of being inflated.
fn limits_of(manifest: &Manifest) -> ExtractLimits {
    let defaults = ExtractLimits::default();
    let sizes = manifest.files.iter().map(|file| file.size);
    ExtractLimits {
        max_entries: (manifest.files.len() as u64).min(defaults.max_entries),
        max_total_bytes: sizes.clone().sum::<u64>().min(defaults.max_total_bytes),
        max_file_bytes: sizes.max().unwrap_or(0).min(defaults.max_file_bytes),
        ..defaults
    }
}

/// Reads the archive, hashing every byte read, copying it to the artifact when asked, and
/// never reading more than one byte past the signed size.
struct HashingReader<'c> {
    file: File,
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    read: u64,
    limit: u64,
    copy: Option<&'c mut PartialCopy>,
}

impl<'c> HashingReader<'c> {
    fn new(file: File, size: u64, copy: Option<&'c mut PartialCopy>) -> Self {
        Self {
            file,
            sha256: sha2::Sha256::new(),
            blake3: blake3::Hasher::new(),
            read: 0,
            limit: size.saturating_add(1),
            copy,
        }
    }

    /// Hashes what the extractor did not read.
    fn drain(&mut self) {
        self.copy = None;
        let mut buffer = vec![0u8; IO_CHUNK];
        loop {
            match self.read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Compares what was read with the signed size and digests.
    fn check(&self, expected: &ArchiveDigests) -> Result<(), ExtractError> {
        let mismatch = |what, expected: &str, found: String| ExtractError::ArchiveDigestMismatch {
            what,
            expected: expected.to_owned(),
            found,
        };
        if self.read != expected.size {
            return Err(mismatch(
                "size",
                &expected.size.to_string(),
                self.read.to_string(),
            ));
        }
        let sha256 = hex::encode(self.sha256.clone().finalize());
        if sha256 != expected.sha256 {
            return Err(mismatch("sha256", &expected.sha256, sha256));
        }
        let blake3 = self.blake3.finalize().to_hex().to_string();
        if blake3 != expected.blake3 {
            return Err(mismatch("blake3", &expected.blake3, blake3));
        }
        Ok(())
    }
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.limit - self.read).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        self.sha256.update(&buf[..n]);
        self.blake3.update(&buf[..n]);
        self.read += n as u64;
        if let Some(copy) = self.copy.as_mut() {
            copy.file.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// The archive copy being written next to the artifact path; removed unless committed.
struct PartialCopy {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartialCopy {
    fn create(dest: &Path) -> Result<Self, RestoreError> {
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.cache-partial-{}", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .map_err(|source| RestoreError::Artifact {
                path: temp.clone(),
                source,
            })?;
        Ok(Self {
            file,
            temp,
            dest: dest.to_owned(),
            committed: false,
        })
    }

    fn commit(mut self) -> Result<(), RestoreError> {
        let artifact = |source| RestoreError::Artifact {
            path: self.dest.clone(),
            source,
        };
        self.file.sync_all().map_err(artifact)?;
        fs::rename(&self.temp, &self.dest).map_err(artifact)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialCopy {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::outpath::OutputPath;
    use crate::archive::pack::{pack_outputs, PackOptions};
    use crate::cache::entry::{Builder, ENTRY_SCHEMA};
    use crate::cache::key::tests::sample_inputs;

    /// An archive of `out/f` holding `content`, and the entry that signs it.
    fn packed(dir: &Path, content: &str) -> (Vec<u8>, EntryManifest) {
        let root = dir.join(format!("build-{content}"));
        fs::create_dir_all(root.join("out")).unwrap();
        fs::write(root.join("out/f"), content).unwrap();
        let mut archive = Vec::new();
        let packed = pack_outputs(
            &root,
            &[OutputPath::parse("out").unwrap()],
            &PackOptions {
                mtime: 0,
                zstd_level: 3,
            },
            &mut archive,
        )
        .unwrap();
        let inputs = sample_inputs("make");
        let entry = EntryManifest {
            schema: ENTRY_SCHEMA.to_owned(),
            cache_key: inputs.key(),
            key_inputs: inputs,
            scope: "local".to_owned(),
            verdict: "reproducible".to_owned(),
            single_run: false,
            builder: Builder {
                id: "test".to_owned(),
                hermetic_version: "test".to_owned(),
            },
            archive: ArchiveDigests {
                sha256: packed.sha256,
                blake3: packed.blake3,
                size: packed.size,
            },
            manifest: packed.manifest,
            created_at: "2026-11-27T00:00:00Z".to_owned(),
        };
        (archive, entry)
    }

    /// Row 19: the archive is verified and extracted from the one fd opened for it, so
    /// swapping the file at its path after the open changes nothing that is restored;
    /// swapping it before the open is a digest mismatch.
    #[test]
    fn the_archive_is_read_from_one_fd() {
        let tmp = tempfile::tempdir().unwrap();
        let (honest, entry) = packed(tmp.path(), "honest");
        let (evil, evil_entry) = packed(tmp.path(), "evil!!");
        assert_eq!(
            honest.len(),
            evil.len(),
            "same size: only the digests differ"
        );
        let path = tmp.path().join(ARCHIVE_FILE);
        fs::write(&path, &honest).unwrap();

        let opened = File::open(&path).unwrap();
        let swap = tmp.path().join("swap");
        fs::write(&swap, &evil).unwrap();
        fs::rename(&swap, &path).unwrap();
        let dest = tmp.path().join("dest");
        let targets = RestoreTargets {
            artifact: None,
            extract: Some(&dest),
        };
        check_archive(opened, &path, &entry, targets).unwrap();
        assert_eq!(fs::read_to_string(dest.join("out/f")).unwrap(), "honest");

        let reopened = File::open(&path).unwrap();
        let dest = tmp.path().join("dest2");
        let targets = RestoreTargets {
            artifact: None,
            extract: Some(&dest),
        };
        let error = check_archive(reopened, &path, &entry, targets).unwrap_err();
        assert_eq!(
            error.reason(),
            "archive_digest_mismatch",
            "{}",
            error.message()
        );
        assert!(!dest.exists());
        assert_ne!(evil_entry.archive.sha256, entry.archive.sha256);
    }

    /// The store re-hashes the archive as it copies it: one changed since the build is not
    /// stored, and nothing is left behind.
    #[test]
    fn an_archive_changed_after_the_build_is_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let (honest, entry) = packed(tmp.path(), "honest");
        let store = Store::open(&tmp.path().join("cache")).unwrap();
        let scope = Scope::parse("local").unwrap();
        let archive = tmp.path().join("built.tar.zst");
        let bundle = entry.sign(&crate::signing::SigningKey::generate());
        let mut changed = honest.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        fs::write(&archive, &changed).unwrap();
        let error = store
            .put(&scope, &entry, &archive, &bundle, false)
            .unwrap_err();
        assert!(
            matches!(error, crate::cache::StoreError::ArchiveChanged { .. }),
            "{error}"
        );
        assert!(!store.entry_dir(&scope, &entry.cache_key).exists());
        assert_eq!(
            fs::read_dir(tmp.path().join("cache/tmp")).unwrap().count(),
            0
        );

        fs::write(&archive, &honest).unwrap();
        let stored = store.put(&scope, &entry, &archive, &bundle, false).unwrap();
        assert_eq!(fs::read(stored.join(ARCHIVE_FILE)).unwrap(), honest);
    }

    /// A staged copy is committed only under an entry that describes it, and leaves
    /// nothing behind when it is not committed.
    #[test]
    fn a_staged_archive_commits_only_its_own_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let (honest, entry) = packed(tmp.path(), "honest");
        let (_, other) = packed(tmp.path(), "other!");
        let store = Store::open(&tmp.path().join("cache")).unwrap();
        let scope = Scope::parse("local").unwrap();
        let archive = tmp.path().join("built.tar.zst");
        fs::write(&archive, &honest).unwrap();
        let key = crate::signing::SigningKey::generate();
        let temps = || fs::read_dir(tmp.path().join("cache/tmp")).unwrap().count();

        let staged = store.stage(&archive, &entry.archive).unwrap();
        let error = staged
            .commit(&scope, &other, &other.sign(&key), false)
            .unwrap_err();
        assert!(
            matches!(error, crate::cache::StoreError::ArchiveChanged { .. }),
            "{error}"
        );
        assert!(!store.entry_dir(&scope, &other.cache_key).exists());
        assert_eq!(temps(), 0);
        drop(store.stage(&archive, &entry.archive).unwrap());
        assert_eq!(temps(), 0);

        let stored = store
            .stage(&archive, &entry.archive)
            .unwrap()
            .commit(&scope, &entry, &entry.sign(&key), false)
            .unwrap();
        assert_eq!(fs::read(stored.join(ARCHIVE_FILE)).unwrap(), honest);
        assert_eq!(temps(), 0);
    }

    /// Verifying without targets reads everything and writes nothing.
    #[test]
    fn verify_only_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (honest, entry) = packed(tmp.path(), "honest");
        let path = tmp.path().join(ARCHIVE_FILE);
        fs::write(&path, &honest).unwrap();
        let before = fs::read_dir(tmp.path()).unwrap().count();
        let (files, bytes) = check_archive(
            File::open(&path).unwrap(),
            &path,
            &entry,
            RestoreTargets::default(),
        )
        .unwrap();
        assert_eq!((files, bytes), (2, 6));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), before);
    }
}
