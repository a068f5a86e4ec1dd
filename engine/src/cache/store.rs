//! The local cache store: a directory, one subdirectory per entry, per scope.
//!
//! ```text
//! <cache-dir>/VERSION                      hermetic.cache/v1
//! <cache-dir>/scopes/<scope>/<key>/{archive.tar.zst, entry.sigstore.json}
//! <cache-dir>/quarantine/<time>-<scope>-<key>/{..., reason.json}
//! <cache-dir>/events.ndjson                cache_quarantine events
//! <cache-dir>/tmp/                         entries being written
//! ```
//!
//! Every directory is created 0700: the cache is private to the user that runs builds.
//! Writes are atomic: an entry is assembled in `tmp/` and renamed into its scope, so a
//! reader sees a whole entry or none. The store itself trusts nothing it reads back; that
//! is [`super::restore`]'s job.
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::SystemTime;

use serde::Serialize;
use sha2::Digest;

use super::entry::{ArchiveDigests, EntryManifest};
use super::key::CacheKey;
use super::restore::MAX_ENTRY_BUNDLE_BYTES;
use super::{ARCHIVE_FILE, BUNDLE_FILE};
use crate::signing::Bundle;

/// Version of the store layout, kept in `<cache-dir>/VERSION`. Changelog:
/// - `hermetic.cache/v1`: first version.
pub const STORE_SCHEMA: &str = "hermetic.cache/v1";

/// The event appended when a damaged layout is set aside.
pub const LAYOUT_SET_ASIDE_EVENT: &str = "cache_layout_set_aside";

/// Scopes whose name starts with this are untrusted (forks, pull requests).
pub const UNTRUSTED_PREFIX: &str = "untrusted-";
/// The scope used when none is named.
pub const DEFAULT_SCOPE: &str = "local";
const MAX_SCOPE_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache scope {found:?} is invalid: use 1-64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit")]
    InvalidScope { found: String },
    #[error("cache directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cache directory {path} has layout {found:?}, newer than this hermetic's {STORE_SCHEMA:?}; it is left as it is")]
    NewerLayout { path: PathBuf, found: String },
    #[error("the signed manifest is {len} bytes, over the {max} a restore reads (too many files to cache)")]
    ManifestTooLarge { len: usize, max: usize },
    #[error("the archive at {path} changed after the build: expected {expected}, found {found}")]
    ArchiveChanged {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// A cache scope: a namespace of entries. See docs/cache-format.md §Scopes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_SCOPE_BYTES
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(StoreError::InvalidScope {
                found: name.chars().take(80).collect(),
            })
        }
    }

    /// Trusted scopes are read by trusted builds; untrusted ones (`untrusted-*`) hold what
    /// untrusted builds wrote.
    pub fn is_trusted(&self) -> bool {
        !self.0.starts_with(UNTRUSTED_PREFIX)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One stored entry, as `cache ls` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct EntryInfo {
    pub scope: String,
    pub key: String,
    pub path: PathBuf,
    /// Bytes on disk (archive and bundle).
    pub bytes: u64,
    /// Last stored or restored, seconds since the epoch (what `gc` evicts by).
    pub last_used: u64,
}

/// What `gc` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub kept: usize,
    pub kept_bytes: u64,
    pub evicted: Vec<EntryInfo>,
    pub evicted_bytes: u64,
    /// How many of the evicted entries were evicted for being untrusted.
    pub evicted_untrusted: usize,
}

/// An opened cache directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// Where a damaged layout was set aside when this store was opened.
    set_aside: Option<PathBuf>,
}

/// What `<cache-dir>/VERSION` says.
enum Layout {
    /// None yet: a new cache.
    Missing,
    Current,
    /// `hermetic.cache/vN` with N above ours: written by a newer hermetic.
    Newer(String),
    /// Anything else (a flipped byte, an older version, garbage): unreadable here.
    Damaged(String),
}

fn layout_of(text: &str) -> Layout {
    let found = text.trim_end();
    if found == STORE_SCHEMA {
        return Layout::Current;
    }
    let ours = STORE_SCHEMA
        .strip_prefix("hermetic.cache/v")
        .and_then(|n| n.parse::<u32>().ok());
    let theirs = found
        .strip_prefix("hermetic.cache/v")
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u32>().ok());
    let shown: String = found.escape_debug().take(80).collect();
    match (ours, theirs) {
        (Some(ours), Some(theirs)) if theirs > ours => Layout::Newer(shown),
        _ => Layout::Damaged(shown),
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error(path))
}

impl Store {
    /// Opens the cache at `root`, creating it (0700) if needed, and checks its layout
    /// version. A layout this hermetic cannot read is set aside into `quarantine/` (with a
    /// `reason.json` and an event) and the cache starts anew, so that one damaged byte
    /// does not stop every build; a newer hermetic's layout is left untouched (nothing is
    /// written) and refused.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let mut store = Self {
            root: root.to_owned(),
            set_aside: None,
        };
        let version = root.join("VERSION");
        let layout = match fs::read_to_string(&version) {
            Ok(text) => layout_of(&text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Layout::Missing,
            Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                Layout::Damaged("(not UTF-8)".to_owned())
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: version,
                    source,
                })
            }
        };
        if let Layout::Newer(found) = layout {
            return Err(StoreError::NewerLayout {
                path: root.to_owned(),
                found,
            });
        }
        for dir in [
            root.to_owned(),
            store.scopes_dir(),
            store.quarantine_dir(),
            store.tmp_dir(),
        ] {
            create_private_dir(&dir)?;
        }
        match layout {
            Layout::Current => {
                store.clear_abandoned_temp();
                return Ok(store);
            }
            Layout::Damaged(found) => {
                let set_aside = store.set_aside_layout(&found)?;
                tracing::warn!(
                    "cache directory {} had layout {found:?}, which this hermetic cannot \
                     read: set aside in {} and started anew",
                    root.display(),
                    set_aside.display()
                );
                store.set_aside = Some(set_aside);
                create_private_dir(&store.scopes_dir())?;
            }
            Layout::Missing | Layout::Newer(_) => {}
        }
        // Written aside and renamed, so a concurrent opener never reads half of it.
        let temp = store.temp_dir("version")?;
        write_file(
            &temp.join("VERSION"),
            format!("{STORE_SCHEMA}\n").as_bytes(),
        )?;
        fs::rename(temp.join("VERSION"), &version).map_err(io_error(&version))?;
        remove_tree(&temp);
        Ok(store)
    }

    /// Where a damaged layout was set aside when this store was opened, if it was.
    pub fn set_aside(&self) -> Option<&Path> {
        self.set_aside.as_deref()
    }

    /// Moves `VERSION` and `scopes/` of a layout this hermetic cannot read into
    /// `quarantine/<time>-layout/`, with a `reason.json`, and appends a
    /// `cache_layout_set_aside` event. Entries are kept there as evidence, never read.
    fn set_aside_layout(&self, found: &str) -> Result<PathBuf, StoreError> {
        let now = SystemTime::now();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dest = self.quarantine_dir().join(format!("{nanos:020}-layout"));
        create_private_dir(&dest)?;
        for name in ["VERSION", "scopes"] {
            let from = self.root.join(name);
            match fs::rename(&from, dest.join(name)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    return Err(StoreError::Io {
                        path: from,
                        source: err,
                    })
                }
                _ => {}
            }
        }
        let time = crate::timestamp::rfc3339(now);
        let message = format!(
            "the cache layout {found:?} is not {STORE_SCHEMA:?}: its entries were set aside"
        );
        let record = serde_json::json!({
            "schema": super::quarantine::QUARANTINE_SCHEMA,
            "time": time,
            "reason": "layout_damaged",
            "file": "VERSION",
            "expected": STORE_SCHEMA,
            "found": found,
            "message": message,
        });
        let mut json = serde_json::to_vec_pretty(&record).expect("records serialise");
        json.push(b'\n');
        write_file(&dest.join(super::quarantine::REASON_FILE), &json)?;
        let event = serde_json::json!({
            "event": LAYOUT_SET_ASIDE_EVENT,
            "schema": super::quarantine::EVENT_SCHEMA,
            "time": time,
            "found": found,
            "path": dest,
        });
        super::quarantine::append_event(self, &event).map_err(|err| StoreError::Io {
            path: self.events_path(),
            source: io::Error::other(crate::errors::error_chain(&err)),
        })?;
        Ok(dest)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn scopes_dir(&self) -> PathBuf {
        self.root.join("scopes")
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The NDJSON event log.
    pub fn events_path(&self) -> PathBuf {
        self.root.join("events.ndjson")
    }

    /// Where the entry for `key` in `scope` lives (whether or not it exists).
    pub fn entry_dir(&self, scope: &Scope, key: &CacheKey) -> PathBuf {
        self.scopes_dir().join(scope.as_str()).join(key.as_str())
    }

    /// Removes what a killed hermetic left in `tmp/`: directories whose writer (the pid in
    /// their name, see [`Store::temp_dir`]) is no longer running. A writer that is still
    /// running keeps its directory; gc clears anything older than a day whatever its pid
    /// (pids are reused). Caches shared across pid namespaces (containers mounting one
    /// cache dir) see other namespaces' writers as dead: give each namespace its own cache
    /// dir, or a crashed writer's leftovers wait for gc's day instead.
    fn clear_abandoned_temp(&self) {
        let Ok(names) = read_dir_sorted(&self.tmp_dir()) else {
            return;
        };
        for name in names {
            let abandoned = temp_dir_writer(&name).is_some_and(|pid| {
                pid > 0
                    && pid != std::process::id() as i32
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                        == Err(nix::errno::Errno::ESRCH)
            });
            if abandoned {
                tracing::debug!(
                    name,
                    "removing what a killed writer left in the cache's tmp/"
                );
                remove_tree(&self.tmp_dir().join(&name));
            }
        }
    }

    /// A fresh private directory under `tmp/`, named `WHAT-PID-SEQUENCE-NANOS`
    /// ([`temp_dir_writer`] reads the pid back).
    pub(super) fn temp_dir(&self, what: &str) -> Result<PathBuf, StoreError> {
        // The daemon stores from several threads at once: the sequence keeps names apart.
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self.tmp_dir().join(format!(
            "{what}-{}-{}-{nanos}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(io_error(&path))?;
        Ok(path)
    }

    /// Stores `archive` (whose digests must still be the ones `entry` signed: it is
    /// re-hashed as it is copied, so a file changed since the build is refused) with its
    /// signed `bundle` as the entry for `entry.cache_key` in `scope`: [`Store::stage`] then
    /// [`Staged::commit`].
    pub fn put(
        &self,
        scope: &Scope,
        entry: &EntryManifest,
        archive: &Path,
        bundle: &Bundle,
        replace: bool,
    ) -> Result<PathBuf, StoreError> {
        self.stage(archive, &entry.archive)?
            .commit(scope, entry, bundle, replace)
    }

    /// Copies `archive` into a private directory under `tmp/`, requiring the bytes copied
    /// to have the `digests` the build reported, so the copy (the slow half of storing)
    /// can run while the entry is being signed.
    pub fn stage(&self, archive: &Path, digests: &ArchiveDigests) -> Result<Staged, StoreError> {
        let staged = Staged {
            store: self.clone(),
            temp: self.temp_dir("put")?,
            digests: digests.clone(),
        };
        copy_verified(archive, &staged.temp.join(ARCHIVE_FILE), digests)?;
        crate::test_hooks::crash_point("store.staged");
        Ok(staged)
    }

    /// Takes `temp`, a directory made by [`Store::temp_dir`] that holds an archive with
    /// `digests` (fetched from a registry and checked as it was written), as a staged
    /// archive to commit.
    pub(super) fn adopt_staged(&self, temp: PathBuf, digests: ArchiveDigests) -> Staged {
        Staged {
            store: self.clone(),
            temp,
            digests,
        }
    }

    /// Marks an entry as used now, for `gc`'s least-recently-used order.
    pub fn touch(&self, entry_dir: &Path) {
        let touched = File::open(entry_dir).and_then(|dir| dir.set_modified(SystemTime::now()));
        if let Err(err) = touched {
            tracing::debug!(path = %entry_dir.display(), error = %err, "could not mark a cache entry as used");
        }
    }

    /// Every entry of every scope, least recently used first.
    pub fn list(&self) -> Result<Vec<EntryInfo>, StoreError> {
        let mut entries = Vec::new();
        let scopes = self.scopes_dir();
        for scope in read_dir_sorted(&scopes)? {
            let scope_dir = scopes.join(&scope);
            if !scope_dir.is_dir() {
                continue;
            }
            for key in read_dir_sorted(&scope_dir)? {
                let path = scope_dir.join(&key);
                let meta = fs::symlink_metadata(&path).map_err(io_error(&path))?;
                if !meta.is_dir() {
                    continue;
                }
                let bytes = [ARCHIVE_FILE, BUNDLE_FILE]
                    .iter()
                    .filter_map(|name| fs::symlink_metadata(path.join(name)).ok())
                    .map(|meta| meta.len())
                    .sum();
                // Ordered by the full mtime: entries used within the same second are
                // still told apart.
                let used = meta
                    .modified()
                    .ok()
                    .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .unwrap_or_default();
                entries.push((
                    used,
                    EntryInfo {
                        scope: scope.clone(),
                        key,
                        path,
                        bytes,
                        last_used: used.as_secs(),
                    },
                ));
            }
        }
        entries.sort_by(|(a_used, a), (b_used, b)| (a_used, &a.path).cmp(&(b_used, &b.path)));
        Ok(entries.into_iter().map(|(_, entry)| entry).collect())
    }

    /// Evicts the entries `untrusted` picks (the store trusts nothing it reads back, so
    /// the caller checks signatures: [`super::restore::signed_by`]), then least recently
    /// used ones until the entries take at most `max_bytes`, and clears leftovers of
    /// interrupted writes. Quarantine is not touched (it is evidence).
    pub fn gc(
        &self,
        max_bytes: u64,
        mut untrusted: impl FnMut(&EntryInfo) -> bool,
    ) -> Result<GcReport, StoreError> {
        let entries = self.list()?;
        let mut report = GcReport::default();
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if untrusted(&entry) {
                self.evict(entry, &mut report)?;
                report.evicted_untrusted += 1;
            } else {
                kept.push(entry);
            }
        }
        let mut total: u64 = kept.iter().map(|entry| entry.bytes).sum();
        for entry in kept {
            if total > max_bytes {
                total -= entry.bytes;
                self.evict(entry, &mut report)?;
            } else {
                report.kept += 1;
                report.kept_bytes += entry.bytes;
            }
        }
        for name in read_dir_sorted(&self.tmp_dir())? {
            let path = self.tmp_dir().join(name);
            let stale = fs::symlink_metadata(&path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|time| time.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 24 * 3600);
            if stale {
                remove_tree(&path);
            }
        }
        Ok(report)
    }

    /// Moves an entry out of its scope (atomically: readers see it or nothing), then
    /// deletes it.
    fn evict(&self, entry: EntryInfo, report: &mut GcReport) -> Result<(), StoreError> {
        let doomed = self.temp_dir("gc")?;
        fs::rename(&entry.path, doomed.join("entry")).map_err(io_error(&entry.path))?;
        crate::test_hooks::crash_point("gc.evicting");
        remove_tree(&doomed);
        report.evicted_bytes += entry.bytes;
        report.evicted.push(entry);
        Ok(())
    }
}

/// An archive copied into the store and verified ([`Store::stage`]), not yet an entry;
/// dropped without [`Staged::commit`], it is removed.
#[derive(Debug)]
pub struct Staged {
    store: Store,
    temp: PathBuf,
    digests: ArchiveDigests,
}

impl Staged {
    /// Adds the signed `bundle` of `entry`, which must describe the staged archive, and
    /// renames the whole into `scope` as the entry for `entry.cache_key`. An entry already
    /// there is replaced only when `replace` (a reproducible result over a single-run
    /// one); otherwise the first writer wins, which is harmless since both describe the
    /// same key.
    pub fn commit(
        self,
        scope: &Scope,
        entry: &EntryManifest,
        bundle: &Bundle,
        replace: bool,
    ) -> Result<PathBuf, StoreError> {
        self.commit_bundle_json(scope, entry, bundle.to_json().as_bytes(), replace)
    }

    /// [`Staged::commit`] with the bundle as the bytes to keep: a bundle fetched from a
    /// registry is kept as it was signed and served, byte for byte.
    pub(super) fn commit_bundle_json(
        self,
        scope: &Scope,
        entry: &EntryManifest,
        json: &[u8],
        replace: bool,
    ) -> Result<PathBuf, StoreError> {
        if entry.archive != self.digests {
            return Err(StoreError::ArchiveChanged {
                path: self.temp.join(ARCHIVE_FILE),
                expected: describe(&entry.archive),
                found: describe(&self.digests),
            });
        }
        if json.len() > MAX_ENTRY_BUNDLE_BYTES {
            return Err(StoreError::ManifestTooLarge {
                len: json.len(),
                max: MAX_ENTRY_BUNDLE_BYTES,
            });
        }
        let store = &self.store;
        write_file(&self.temp.join(BUNDLE_FILE), json)?;
        crate::test_hooks::crash_point("store.committing");
        let scope_dir = store.scopes_dir().join(scope.as_str());
        create_private_dir(&scope_dir)?;
        let dest = scope_dir.join(entry.cache_key.as_str());
        if replace && dest.exists() {
            let old = store.temp_dir("replaced")?;
            fs::rename(&dest, old.join("entry")).map_err(io_error(&dest))?;
            remove_tree(&old);
        }
        match fs::rename(&self.temp, &dest) {
            Ok(()) => {}
            // Another build stored the same key meanwhile (a non-empty directory).
            Err(err) if err.raw_os_error() == Some(libc::ENOTEMPTY) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(StoreError::Io { path: dest, source }),
        }
        crate::test_hooks::crash_point("store.committed");
        sync_dir(&scope_dir)?;
        Ok(dest)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.temp.exists() {
            remove_tree(&self.temp);
        }
    }
}

fn describe(digests: &ArchiveDigests) -> String {
    format!(
        "size {} sha256:{} blake3:{}",
        digests.size, digests.sha256, digests.blake3
    )
}

/// The pid of the process that made the temp dir `name` ([`Store::temp_dir`]'s format;
/// `what` may hold dashes, so the pid is read from the end).
fn temp_dir_writer(name: &str) -> Option<i32> {
    name.rsplit('-').nth(2)?.parse().ok()
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(names),
        Err(source) => {
            return Err(StoreError::Io {
                path: dir.to_owned(),
                source,
            })
        }
    };
    for entry in read {
        let entry = entry.map_err(io_error(dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Removes a tree of our own under the cache dir; `remove_dir_all` does not follow
/// symlinks. A failure leaves garbage in `tmp/` for the next `gc`, nothing worse.
fn remove_tree(path: &Path) {
    if let Err(err) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %err, "could not remove a cache temp directory");
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(path))
}

/// Bytes per copied chunk, a multiple of [`DIRECT_ALIGN`]: large direct writes keep the
/// device busy.
const COPY_CHUNK: usize = 4 << 20;
/// Chunks in flight between the reading and the writing thread.
const COPY_DEPTH: usize = 4;
/// Alignment of direct writes: a multiple of every device's logical block size.
const DIRECT_ALIGN: usize = 4096;

/// Copies `from` to the new file `to` and requires the bytes copied to be the ones the
/// build hashed (`expected`): the archive sits at a path others could write to between the
/// build and now, so its digests are recomputed from the very bytes that are stored.
///
/// One thread reads and hashes while this one writes. The copy is written with `O_DIRECT`
/// where the filesystem allows it: it is not read again soon, and going through the page
/// cache would cost a second cached copy of the archive and the CPU to fill it.
fn copy_verified(from: &Path, to: &Path, expected: &ArchiveDigests) -> Result<(), StoreError> {
    let source = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)
        .map_err(io_error(from))?;
    let (mut dest, direct) = crate::sys::archive::create_file_direct(to).map_err(io_error(to))?;
    let (full_tx, full_rx) = mpsc::sync_channel::<(AlignedChunk, usize)>(COPY_DEPTH);
    let (free_tx, free_rx) = mpsc::sync_channel::<AlignedChunk>(COPY_DEPTH);
    for _ in 0..COPY_DEPTH {
        free_tx
            .send(AlignedChunk::new())
            .expect("the receiver is here");
    }
    let (read, written) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_and_hash(source, from, &free_rx, &full_tx));
        let mut writer = DirectWriter {
            file: &mut dest,
            direct,
        };
        let mut written = Ok(());
        for (mut chunk, len) in full_rx {
            if let Err(err) = writer.write(&chunk.bytes()[..len]) {
                written = Err(err);
                break;
            }
            // The reader stops taking chunks once it has read everything.
            let _ = free_tx.send(chunk);
        }
        // Ends the reader's wait for a free chunk when writing failed.
        drop(free_tx);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, written)
    });
    let found = read?;
    written.map_err(io_error(to))?;
    dest.sync_all().map_err(io_error(to))?;
    if found != *expected {
        return Err(StoreError::ArchiveChanged {
            path: from.to_owned(),
            expected: describe(expected),
            found: describe(&found),
        });
    }
    Ok(())
}

/// The copy's reading half: fills free chunks from `source`, hashes them and passes them
/// on, until the end of the file or until the writer stops taking them.
fn read_and_hash(
    mut source: File,
    from: &Path,
    free: &mpsc::Receiver<AlignedChunk>,
    full: &mpsc::SyncSender<(AlignedChunk, usize)>,
) -> Result<ArchiveDigests, StoreError> {
    let mut sha = sha2::Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut size = 0u64;
    while let Ok(mut chunk) = free.recv() {
        let bytes = chunk.bytes();
        let mut len = 0;
        while len < bytes.len() {
            match source.read(&mut bytes[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io_error(from)(err)),
            }
        }
        sha.update(&bytes[..len]);
        b3.update(&bytes[..len]);
        size += len as u64;
        let last = len < bytes.len();
        if len > 0 && full.send((chunk, len)).is_err() {
            // The writer failed; it reports why.
            break;
        }
        if last {
            break;
        }
    }
    Ok(ArchiveDigests {
        sha256: hex::encode(sha.finalize()),
        blake3: b3.finalize().to_hex().to_string(),
        size,
    })
}

/// A [`COPY_CHUNK`]-byte buffer aligned for direct writes, carved out of a slightly larger
/// allocation (which does not move when the chunk does).
struct AlignedChunk {
    storage: Vec<u8>,
    start: usize,
}

impl AlignedChunk {
    fn new() -> Self {
        let storage = vec![0; COPY_CHUNK + DIRECT_ALIGN];
        let start = storage.as_ptr().align_offset(DIRECT_ALIGN);
        Self { storage, start }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + COPY_CHUNK]
    }
}

/// Writes whole chunks directly while it can; a tail shorter than [`DIRECT_ALIGN`] (only
/// the last chunk has one) or a refused direct write goes through the page cache.
struct DirectWriter<'f> {
    file: &'f mut File,
    direct: bool,
}

impl DirectWriter<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while self.direct && data.len() >= DIRECT_ALIGN {
            let aligned = data.len() - data.len() % DIRECT_ALIGN;
            match self.file.write(&data[..aligned]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // Refused (a device with larger blocks, say): nothing of it was written.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => break,
                Err(err) => return Err(err),
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.direct {
            crate::sys::archive::clear_direct(self.file)?;
            self.direct = false;
        }
        self.file.write_all(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_dir_names_its_writer_whatever_its_purpose_says() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let dir = store.temp_dir("restore-with-dashes").unwrap();
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_dir_writer(name), Some(std::process::id() as i32));
        assert_eq!(temp_dir_writer("no-pid-here"), None);
    }

    #[test]
    fn scope_names_are_plain() {
        for good in ["local", "main", "untrusted-pr-12", "a", "0.x_y-z"] {
            assert!(Scope::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "Main",
            "-x",
            ".x",
            &"a".repeat(65),
            "a b",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert!(Scope::parse("main").unwrap().is_trusted());
        assert!(!Scope::parse("untrusted-pr-1").unwrap().is_trusted());
    }

    /// Lengths around the chunk and alignment boundaries, on the temp dir's filesystem and
    /// on tmpfs (where direct writes may be refused).
    #[test]
    fn copies_are_byte_identical_whatever_the_length() {
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        for tmp in &dirs {
            for len in [
                0,
                1,
                DIRECT_ALIGN,
                DIRECT_ALIGN + 1,
                COPY_CHUNK,
                2 * COPY_CHUNK + DIRECT_ALIGN + 3,
            ] {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4093) as u8).collect();
                let from = tmp.path().join(format!("from-{len}"));
                let to = tmp.path().join(format!("to-{len}"));
                fs::write(&from, &bytes).unwrap();
                let digests = ArchiveDigests::of(&bytes);
                copy_verified(&from, &to, &digests).unwrap();
                assert!(fs::read(&to).unwrap() == bytes, "{len} bytes");
            }
        }
    }

    #[test]
    fn a_damaged_or_older_layout_is_set_aside_and_the_cache_starts_anew() {
        for damaged in ["hermetic.cachf/v1\n", "hermetic.cache/v0\n", "\u{0}\u{7f}"] {
            let tmp = tempfile::tempdir().unwrap();
            Store::open(tmp.path()).unwrap();
            let entry = tmp.path().join("scopes/local/0123");
            fs::create_dir_all(&entry).unwrap();
            fs::write(entry.join("archive.tar.zst"), b"kept as evidence").unwrap();
            fs::write(tmp.path().join("VERSION"), damaged).unwrap();

            let store = Store::open(tmp.path()).unwrap();
            let set_aside = store
                .set_aside()
                .expect("the layout was set aside")
                .to_owned();
            assert!(set_aside.starts_with(store.quarantine_dir()));
            assert_eq!(
                fs::read_to_string(set_aside.join("VERSION")).unwrap(),
                damaged
            );
            assert_eq!(
                fs::read(set_aside.join("scopes/local/0123/archive.tar.zst")).unwrap(),
                b"kept as evidence"
            );
            let record: serde_json::Value =
                serde_json::from_slice(&fs::read(set_aside.join("reason.json")).unwrap()).unwrap();
            assert_eq!(record["reason"], "layout_damaged");
            let events = fs::read_to_string(store.events_path()).unwrap();
            assert!(
                events.contains("\"event\":\"cache_layout_set_aside\""),
                "{events}"
            );
            assert_eq!(
                fs::read_to_string(tmp.path().join("VERSION")).unwrap(),
                format!("{STORE_SCHEMA}\n")
            );
            assert_eq!(fs::read_dir(tmp.path().join("scopes")).unwrap().count(), 0);
            let reopened = Store::open(tmp.path()).unwrap();
            assert!(
                reopened.set_aside().is_none(),
                "a good layout is only opened"
            );
        }
    }

    #[test]
    fn a_newer_layout_is_refused_and_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("VERSION"), "hermetic.cache/v9\n").unwrap();
        let before: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(matches!(
            Store::open(tmp.path()),
            Err(StoreError::NewerLayout { .. })
        ));
        let after: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(before, after, "nothing was written");
        assert_eq!(
            fs::read_to_string(tmp.path().join("VERSION")).unwrap(),
            "hermetic.cache/v9\n"
        );
    }
}
