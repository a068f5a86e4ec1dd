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
    fn a_build_without_a_cache_reports_it_disabled() {
        assert_eq!(CacheReport::default().status, CacheStatus::Disabled);
    }
}
