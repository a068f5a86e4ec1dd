//! `hermetic.build/v1`: what `hermetic build` reports, in process or as a daemon job.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cache::CacheReport;
use super::layers::AppliedLayers;
use super::repro::{Difference, SuspectedCause, Varied};
use crate::manifest::FileEntry;
use crate::names::named_values;

/// Version of the build report. Changelog:
/// - hermetic.build/v1: first version (single and dual runs).
/// - v1, addition: `source_left_out`, the source's sockets and fifos the build did not get
///   (absent when there were none).
/// - v1, addition: `image` (`ref`, `digest`), the image the build ran in (absent when it
///   ran in the profile's own root).
pub const BUILD_REPORT_SCHEMA: &str = "hermetic.build/v1";

/// A build's report. Published (`hermetic build --json`, the daemon's job record) through a
/// `serde_json::Value`, as v1 always was: keys sorted at every level (`to_published_json`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct BuildReport {
    /// Always [`BUILD_REPORT_SCHEMA`] for reports this version writes.
    pub schema: String,
    pub verdict: BuildVerdict,
    pub exit_code: i32,
    pub mode: BuildMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub profile: ProfileReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pins: Option<PinReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<AppliedLayers>,
    pub runs: Vec<RunReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub varied: Option<Vec<Varied>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Vec<Difference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspected_causes: Option<Vec<SuspectedCause>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain_report: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogReport>,
    pub cache: CacheReport,
    /// Sockets and fifos of the source, left out of the build dir (relative paths): they
    /// carry no content a build could use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_left_out: Vec<PathBuf>,
    /// The image the build ran in, when it ran in one (docs/images.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReport>,
}

/// An image a build ran in: the reference as the request named it, and the manifest
/// digest that fixes it (the identity the cache key and provenance use).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageReport {
    /// `REF@sha256:...` as given.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `sha256:<hex>`, the manifest's digest.
    pub digest: String,
}

impl BuildReport {
    /// The report as it is published: a JSON value, whose objects keep their keys sorted.
    pub fn to_published_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
}

named_values! {
    /// How a build ended.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum BuildVerdict {
        /// A single run succeeded (`--single`, or a single-run cache entry restored).
        Built = "built",
        /// Both runs succeeded with identical outputs.
        Reproducible = "reproducible",
        /// Both runs succeeded with different outputs.
        Nondeterministic = "nondeterministic",
        /// A run failed, or the sandbox did, or the build never ran.
        Failed = "failed",
    }
}

named_values! {
    /// Whether the build ran once or twice.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum BuildMode {
        Single = "single",
        Dual = "dual",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProfileReport {
    pub name: String,
    pub origin: String,
    pub sha256: String,
    /// BLAKE3 of the rootfs tree, for profiles that use one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs_blake3: Option<String>,
}

/// The pinned values as a report shows them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct PinReport {
    pub source_date_epoch: u64,
    pub source_date_epoch_from: EpochSource,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub hostname: String,
    pub build_dir: PathBuf,
    pub cpus: usize,
    pub umask: String,
    pub env: Vec<(String, String)>,
}

named_values! {
    /// Where SOURCE_DATE_EPOCH came from.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum EpochSource {
        Flag = "flag",
        GitHead = "git-head",
        Fallback = "fallback",
    }
}

named_values! {
    /// The runs of a dual build (a single build has run a only).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum RunName {
        /// The canonical run: every pin applied; its output is the one kept.
        A = "a",
        /// The varied run.
        B = "b",
        /// The noise pass: the canonical run again.
        C = "c",
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct RunReport {
    pub name: RunName,
    /// The command's exit code (128 + signal when killed, 124 on timeout); absent when
    /// the sandbox could not be set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<Digests>,
}

/// Digests of an output archive.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Digests {
    pub sha256: String,
    pub blake3: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct OutputReport {
    pub archive: PathBuf,
    pub digest: Digests,
    pub size: u64,
    pub manifest_blake3: String,
    /// Set when the archive is kept for inspection only: it must not be cached, signed or
    /// shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<OutputFlag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extracted_to: Option<PathBuf>,
    pub files: Vec<FileEntry>,
}

named_values! {
    /// Why an archive is kept for inspection only.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum OutputFlag {
        Nondeterministic = "nondeterministic",
    }
}

/// The canonical run's log as it was relayed: its digest goes into provenance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct LogReport {
    pub sha256: String,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::written_names;

    #[test]
    fn every_named_value_is_written_as_documented_and_reads_back() {
        assert_eq!(
            written_names(BuildVerdict::ALL, BuildVerdict::as_str),
            ["built", "reproducible", "nondeterministic", "failed"]
        );
        assert_eq!(
            written_names(BuildMode::ALL, BuildMode::as_str),
            ["single", "dual"]
        );
        assert_eq!(
            written_names(EpochSource::ALL, EpochSource::as_str),
            ["flag", "git-head", "fallback"]
        );
        assert_eq!(
            written_names(RunName::ALL, RunName::as_str),
            ["a", "b", "c"]
        );
        assert_eq!(
            written_names(OutputFlag::ALL, OutputFlag::as_str),
            ["nondeterministic"]
        );
    }
}
