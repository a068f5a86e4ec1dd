//! Quarantine: a refused entry is moved, not deleted, so it is never served or retried
//! and stays available for forensics.
//!
//! `<cache-dir>/quarantine/<unix-nanos>-<scope>-<key>/` receives the entry's files (for an
//! entry refused from a registry, whatever of it was fetched) and a `reason.json`
//! ([`QuarantineRecord`]); one `cache_quarantine` line is appended to
//! `<cache-dir>/events.ndjson` ([`append_event`], which the remote cache's conflicts use
//! too), and the process-wide counter [`quarantined_total`] (exported by the daemon's
//! metrics) goes up.
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use hermetic_contract::report::RestoreStep;
use serde::{Deserialize, Serialize};

use super::store::Store;
use crate::timestamp::rfc3339;

/// Version of `reason.json`. Changelog:
/// - `hermetic.cache-quarantine/v1`: first version.
pub const QUARANTINE_SCHEMA: &str = "hermetic.cache-quarantine/v1";
/// Version of the event log lines. Changelog:
/// - `hermetic.event/v1`: first version (`cache_quarantine`).
/// - `hermetic.event/v1`, additions: `source` and `reference` on the quarantine of an
///   entry from a registry; the `cache_conflict` event (`cache::remote`).
pub const EVENT_SCHEMA: &str = "hermetic.event/v1";
/// The `event` field of a quarantine event.
pub const QUARANTINE_EVENT: &str = "cache_quarantine";
/// Name of the record inside a quarantined entry.
pub const REASON_FILE: &str = "reason.json";
/// The `source` of a record or event about an entry that came from a registry.
pub const REMOTE_SOURCE: &str = "remote";

static QUARANTINED: AtomicU64 = AtomicU64::new(0);

/// Entries this process has quarantined.
pub fn quarantined_total() -> u64 {
    QUARANTINED.load(Ordering::Relaxed)
}

/// `reason.json`: why an entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineRecord {
    pub schema: String,
    /// RFC 3339 UTC.
    pub time: String,
    pub scope: String,
    pub key: String,
    /// The restore step that refused the entry (see docs/cache-format.md §Restore).
    pub step: RestoreStep,
    /// Stable machine-readable reason, e.g. `archive_digest_mismatch`.
    pub reason: String,
    /// The file of the entry, or the archive member, the failure is about.
    pub file: Option<String>,
    pub expected: Option<String>,
    pub found: Option<String>,
    /// The whole error chain, for people.
    pub message: String,
    /// [`REMOTE_SOURCE`] for an entry from a registry; absent for a local one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The registry reference, `HOST/REPO/SCOPE:<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The OCI entry manifest's digest (`sha256:…`), when it was fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The archive's digest (`sha256:…`): the signed one, else the one the entry manifest
    /// names (when no signature was accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

/// Where a refused entry came from, when that was a registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteOrigin {
    /// `HOST/REPO/SCOPE:<key>`.
    pub reference: String,
    /// The OCI entry manifest's digest (`sha256:…`), once fetched.
    pub manifest: Option<String>,
    /// The archive's digest (`sha256:…`): the signed one, else the one the entry manifest
    /// names.
    pub archive: Option<String>,
}

impl QuarantineRecord {
    /// The record of an entry refused for `error`: the local fields, and the registry's
    /// when `origin` says it came from one.
    pub(super) fn new(
        scope: &str,
        key: &str,
        refusal: Refusal,
        origin: Option<&RemoteOrigin>,
    ) -> Self {
        QuarantineRecord {
            schema: QUARANTINE_SCHEMA.to_owned(),
            time: rfc3339(SystemTime::now()),
            scope: scope.to_owned(),
            key: key.to_owned(),
            step: refusal.step,
            reason: refusal.reason.to_owned(),
            file: refusal.file,
            expected: refusal.expected,
            found: refusal.found,
            message: refusal.message,
            source: origin.map(|_| REMOTE_SOURCE.to_owned()),
            reference: origin.map(|origin| origin.reference.clone()),
            manifest: origin.and_then(|origin| origin.manifest.clone()),
            archive: origin.and_then(|origin| origin.archive.clone()),
        }
    }
}

/// What refused an entry, as a record tells it.
pub(super) struct Refusal {
    pub step: RestoreStep,
    pub reason: &'static str,
    pub file: Option<String>,
    pub expected: Option<String>,
    pub found: Option<String>,
    pub message: String,
}

/// One line of `events.ndjson`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineEvent {
    pub event: String,
    pub schema: String,
    pub time: String,
    pub scope: String,
    pub key: String,
    pub step: RestoreStep,
    pub reason: String,
    /// The quarantine directory.
    pub path: PathBuf,
    /// [`REMOTE_SOURCE`] for an entry from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The registry reference, `HOST/REPO/SCOPE:<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("failed to move {from} into quarantine")]
    Move {
        from: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
}

/// Moves the entry at `entry_dir` into quarantine with `record`, logs the event and counts
/// it. Returns the quarantine directory.
pub fn quarantine(
    store: &Store,
    entry_dir: &Path,
    record: &QuarantineRecord,
) -> Result<PathBuf, QuarantineError> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dest = store
        .quarantine_dir()
        .join(format!("{nanos:020}-{}-{}", record.scope, record.key));
    fs::rename(entry_dir, &dest).map_err(|source| QuarantineError::Move {
        from: entry_dir.to_owned(),
        source,
    })?;
    QUARANTINED.fetch_add(1, Ordering::Relaxed);
    crate::test_hooks::crash_point("quarantine.moved");
    let reason_path = dest.join(REASON_FILE);
    let mut json = serde_json::to_vec_pretty(record).expect("records serialise");
    json.push(b'\n');
    write_new(&reason_path, &json)?;
    let event = QuarantineEvent {
        event: QUARANTINE_EVENT.to_owned(),
        schema: EVENT_SCHEMA.to_owned(),
        time: record.time.clone(),
        scope: record.scope.clone(),
        key: record.key.clone(),
        step: record.step,
        reason: record.reason.clone(),
        path: dest.clone(),
        source: record.source.clone(),
        reference: record.reference.clone(),
    };
    append_event(store, &event)?;
    Ok(dest)
}

/// Appends one event (`hermetic.event/v1`) to the store's `events.ndjson`.
pub fn append_event(store: &Store, event: &impl Serialize) -> Result<(), QuarantineError> {
    let mut line = serde_json::to_vec(event).expect("events serialise");
    line.push(b'\n');
    let events = store.events_path();
    // One write of a whole line with O_APPEND: concurrent writers never interleave lines.
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&events)
        .and_then(|mut file| file.write_all(&line))
        .map_err(|source| QuarantineError::Write {
            path: events,
            source,
        })
}

/// Every quarantined entry with its record (`None` when `reason.json` is unreadable),
/// oldest first.
pub fn list(store: &Store) -> Result<Vec<(PathBuf, Option<QuarantineRecord>)>, QuarantineError> {
    let dir = store.quarantine_dir();
    let mut names: Vec<_> = fs::read_dir(&dir)
        .and_then(|read| read.collect::<Result<Vec<_>, _>>())
        .map_err(|source| QuarantineError::Move {
            from: dir.clone(),
            source,
        })?
        .into_iter()
        .map(|entry| entry.path())
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|path| {
            let record = fs::read(path.join(REASON_FILE))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            (path, record)
        })
        .collect())
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), QuarantineError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|source| QuarantineError::Write {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> Refusal {
        Refusal {
            step: RestoreStep::Archive,
            reason: "archive_digest_mismatch",
            file: Some("archive.tar.zst".to_owned()),
            expected: Some("aa".to_owned()),
            found: Some("bb".to_owned()),
            message: "step archive: …".to_owned(),
        }
    }

    #[test]
    fn a_local_record_has_no_remote_fields() {
        let record = QuarantineRecord::new("main", "key", refusal(), None);
        let json = serde_json::to_value(&record).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(|k| &**k).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "expected", "file", "found", "key", "message", "reason", "schema", "scope", "step",
                "time"
            ]
        );
        assert_eq!(
            serde_json::from_value::<QuarantineRecord>(json).unwrap(),
            record
        );
    }

    #[test]
    fn a_remote_record_names_its_source_reference_and_digests() {
        let origin = RemoteOrigin {
            reference: "registry.example/ci/cache/main:key".to_owned(),
            manifest: Some("sha256:11".to_owned()),
            archive: Some("sha256:22".to_owned()),
        };
        let record = QuarantineRecord::new("main", "key", refusal(), Some(&origin));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["source"], REMOTE_SOURCE);
        assert_eq!(json["reference"], "registry.example/ci/cache/main:key");
        assert_eq!(json["manifest"], "sha256:11");
        assert_eq!(json["archive"], "sha256:22");
        assert_eq!(
            serde_json::from_value::<QuarantineRecord>(json).unwrap(),
            record
        );
    }
}
