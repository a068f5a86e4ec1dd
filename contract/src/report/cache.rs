//! What the signed cache did for a build (docs/cache-format.md).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::names::named_values;

/// What the cache did for a build.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CacheReport {
    pub status: CacheStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whether this build's result was stored as a new entry.
    pub stored: bool,
    /// Why the entry was refused, the lookup missed, or the result was not stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The restore step that refused the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<RestoreStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<PathBuf>,
    /// The entry restored or stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<PathBuf>,
    /// Key id of the key that signed the restored or stored entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// What the remote cache did; present when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteCacheReport>,
}

/// What the remote cache (an OCI registry) did for a build (docs/cache-format.md
/// §Remote cache, Report).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct RemoteCacheReport {
    /// `HOST/REPO/SCOPE`.
    pub repository: String,
    pub status: RemoteCacheStatus,
    /// Why the lookup missed, the entry was refused, the registry was unavailable or
    /// denied the request, or the push failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The entry manifest's digest (`sha256:…`), restored or pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Key id of the key that signed the restored entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// What pushing this build's result did; absent when nothing was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<RemotePush>,
    /// The registry holds another entry for this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<RemoteConflict>,
}

/// Two entries for one key: ours (this build's) and theirs (the registry's).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct RemoteConflict {
    pub ours: ConflictingEntry,
    pub theirs: ConflictingEntry,
}

/// One side of a conflict. Digests are `sha256:…`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ConflictingEntry {
    /// The entry manifest's digest.
    pub manifest: String,
    /// The archive's digest (unknown when their entry manifest names none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Key id of the signer: for theirs, the key trusted for the scope whose signature
    /// verifies, else the key named by their signature's (unauthenticated) hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Theirs only: whether a key trusted for the scope signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
}

named_values! {
    /// What the remote lookup found.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum RemoteCacheStatus {
        /// A verified entry was restored from the registry (and kept in the local store).
        Hit = "hit",
        /// No usable entry in the registry.
        Miss = "miss",
        /// The registry's entry was refused and its fetched parts quarantined locally.
        Quarantined = "quarantined",
        /// The registry could not be reached, timed out, or answered 5xx or 429.
        Unavailable = "unavailable",
        /// The registry refused the credentials or the request (4xx).
        Denied = "denied",
        /// Not asked: the local store had the entry.
        Skipped = "skipped",
    }
}

named_values! {
    /// What pushing a build's result to the registry did.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum RemotePush {
        /// The entry and its signature were written.
        Pushed = "pushed",
        /// The same entry (same entry manifest digest) was already there.
        Present = "present",
        /// Another entry holds the key's tag; it was not overwritten.
        Conflict = "conflict",
        /// The push did not complete (the reason says why); the build's exit code is
        /// unchanged.
        Failed = "failed",
    }
}

named_values! {
    /// Whether the build's result came from the cache.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum CacheStatus {
        /// Restored; nothing ran.
        Hit = "hit",
        /// No usable entry.
        Miss = "miss",
        /// An entry was refused and quarantined; the build ran fresh.
        Quarantined = "quarantined",
        /// The build used no cache.
        #[default]
        Disabled = "disabled",
    }
}

named_values! {
    /// The steps of a restore, in order (docs/cache-format.md §Restore); each refuses the
    /// entry for its own reasons.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum RestoreStep {
        /// The entry's directory itself.
        Entry = "entry",
        /// The bundle and its signature, by a key trusted for the scope.
        Signature = "signature",
        /// The signed statement, parsed strictly.
        Statement = "statement",
        /// The signed format version, cache key and scope against the requested ones.
        Key = "key",
        /// The archive's size and digests.
        Archive = "archive",
        /// Each archive entry against the signed manifest.
        Entries = "entries",
        /// Moving the verified outputs into place.
        Publish = "publish",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::written_names;

    #[test]
    fn every_named_value_is_written_as_documented_and_reads_back() {
        assert_eq!(
            written_names(CacheStatus::ALL, CacheStatus::as_str),
            ["hit", "miss", "quarantined", "disabled"]
        );
        assert_eq!(
            written_names(RestoreStep::ALL, RestoreStep::as_str),
            [
                "entry",
                "signature",
                "statement",
                "key",
                "archive",
                "entries",
                "publish"
            ]
        );
    }

    #[test]
    fn remote_values_are_written_as_documented_and_read_back() {
        assert_eq!(
            written_names(RemoteCacheStatus::ALL, RemoteCacheStatus::as_str),
            [
                "hit",
                "miss",
                "quarantined",
                "unavailable",
                "denied",
                "skipped"
            ]
        );
        assert_eq!(
            written_names(RemotePush::ALL, RemotePush::as_str),
            ["pushed", "present", "conflict", "failed"]
        );
    }

    fn conflicted_remote() -> RemoteCacheReport {
        RemoteCacheReport {
            repository: "127.0.0.1:5000/ci/cache/main".into(),
            status: RemoteCacheStatus::Miss,
            reason: Some("no entry".into()),
            manifest: Some("sha256:aa".into()),
            signer: None,
            push: Some(RemotePush::Conflict),
            conflict: Some(RemoteConflict {
                ours: ConflictingEntry {
                    manifest: "sha256:aa".into(),
                    archive: Some("sha256:bb".into()),
                    signer: Some("ours".into()),
                    trusted: None,
                },
                theirs: ConflictingEntry {
                    manifest: "sha256:cc".into(),
                    archive: Some("sha256:dd".into()),
                    signer: Some("theirs".into()),
                    trusted: Some(false),
                },
            }),
        }
    }

    #[test]
    fn a_remote_report_is_written_with_the_documented_names_and_reads_back() {
        let report = CacheReport {
            status: CacheStatus::Miss,
            key: Some("key".into()),
            stored: true,
            remote: Some(conflicted_remote()),
            ..CacheReport::default()
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["remote"],
            serde_json::json!({
                "repository": "127.0.0.1:5000/ci/cache/main",
                "status": "miss",
                "reason": "no entry",
                "manifest": "sha256:aa",
                "push": "conflict",
                "conflict": {
                    "ours": {"manifest": "sha256:aa", "archive": "sha256:bb", "signer": "ours"},
                    "theirs": {"manifest": "sha256:cc", "archive": "sha256:dd",
                               "signer": "theirs", "trusted": false},
                },
            })
        );
        assert_eq!(serde_json::from_value::<CacheReport>(json).unwrap(), report);

        let hit = RemoteCacheReport {
            repository: "r/s".into(),
            status: RemoteCacheStatus::Hit,
            reason: None,
            manifest: Some("sha256:aa".into()),
            signer: Some("k".into()),
            push: None,
            conflict: None,
        };
        let json = serde_json::to_string(&hit).unwrap();
        assert_eq!(
            json,
            r#"{"repository":"r/s","status":"hit","manifest":"sha256:aa","signer":"k"}"#
        );
        assert_eq!(
            serde_json::from_str::<RemoteCacheReport>(&json).unwrap(),
            hit
        );
    }

    #[test]
    fn a_report_without_a_remote_has_no_remote_field() {
        let json = serde_json::to_string(&CacheReport::default()).unwrap();
        assert_eq!(json, r#"{"status":"disabled","stored":false}"#);
        let read: CacheReport = serde_json::from_str(&json).unwrap();
        assert_eq!(read.remote, None);
    }

    #[test]
    fn a_build_without_a_cache_reports_it_disabled() {
        assert_eq!(CacheReport::default().status, CacheStatus::Disabled);
    }
}
