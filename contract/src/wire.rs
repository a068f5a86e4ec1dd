//! The daemon's wire format: plain serde types shared with clients (the `hermetic` CLI).
//!
//! Every route lives under `/v{API_VERSION}/` (except `/metrics`); bodies are JSON.
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

pub use crate::build::BuildRequest;
pub use crate::report::Digests;
use crate::report::{BuildReport, BuildVerdict, DrillReport, RunVerdict};

/// Version of the HTTP API (the route prefix). Changelog (additions within a version
/// keep old clients working):
/// - 1: first version (jobs, log, cancel, health).
/// - 1, addition: `GET /v1/jobs/{id}/log?framed=true` answers `FRAMED_LOG_CONTENT_TYPE`,
///   so a client can give a `run`'s stdout and stderr back separately; followed, it ends
///   with the job's final record.
/// - 1, addition: `POST /v1/jobs?follow=true&framed=true` answers 201 with that followed
///   framed log and the job's URL in `Location`; without the query, the `Job` as before.
/// - 1, addition: the drill history. `POST /v1/drills` records a finished
///   `hermetic.drill/v1` report (201, the report); `GET /v1/drills?kind=&case=&cache_key=
///   &limit=` lists recorded drills, newest first, as a `DrillList`.
pub const API_VERSION: u32 = 1;

/// The log as frames: each is one byte naming the stream (1 stdout, 2 stderr, 3 the
/// daemon's own `[hermeticd]` notes), the length as u32 big-endian, then that many bytes
/// of the log. A build's output is all stderr (as `hermetic build` shows it); a `run`'s
/// keeps its two streams apart. A followed log ends with one `FRAME_JOB` frame.
pub const FRAMED_LOG_CONTENT_TYPE: &str = "application/vnd.hermetic.log-frames";

/// The last frame of a followed framed log: the job's final record (`Job`, JSON).
pub const FRAME_JOB: u8 = 4;

/// Bytes in a frame's header: the tag byte and the u32 length.
pub const FRAME_HEADER: usize = 5;

/// One frame of a framed log, borrowed from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The stream byte (1, 2, 3) or [`FRAME_JOB`]; other values are a newer daemon's.
    pub tag: u8,
    pub bytes: &'a [u8],
}

/// Splits the whole frames at the start of `buffer` (bytes as they arrived, in any
/// pieces), calling `each` for each in order until it returns false; returns how many
/// bytes those frames took. A frame not yet whole waits for more bytes.
pub fn split_frames<'a>(buffer: &'a [u8], mut each: impl FnMut(Frame<'a>) -> bool) -> usize {
    let mut used = 0;
    while let Some(header) = buffer.get(used..used + FRAME_HEADER) {
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let start = used + FRAME_HEADER;
        let Some(bytes) = buffer.get(start..start + length) else {
            break;
        };
        used = start + length;
        if !each(Frame {
            tag: header[0],
            bytes,
        }) {
            break;
        }
    }
    used
}

/// Schema of the JSON bodies. Changelog:
/// - hermetic.daemon/v1: first version.
pub const WIRE_SCHEMA: &str = "hermetic.daemon/v1";

/// `POST /v1/jobs`: what to run. Fields a client adds beyond these (a uid, say) are
/// ignored: a job always runs with the daemon's own privileges.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobRequest {
    Run(RunRequest),
    Build(BuildRequest),
}

impl JobRequest {
    pub fn kind(&self) -> JobKind {
        match self {
            JobRequest::Run(_) => JobKind::Run,
            JobRequest::Build(_) => JobKind::Build,
        }
    }
}

/// One sandboxed command, as `hermetic run` runs it (no outputs).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RunRequest {
    /// Profile name or path.
    pub profile: String,
    /// The source tree (an absolute path on the daemon's host).
    pub src: PathBuf,
    #[serde(default)]
    pub source_date_epoch: Option<u64>,
    pub command: Vec<String>,
    /// Run inside this image instead of the profile's root: `REF@sha256:<manifest
    /// digest>` (docs/images.md); absent, the request's JSON is what it was before images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Run,
    Build,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Run => "run",
            JobKind::Build => "build",
        }
    }
}

/// The job state machine:
///
/// ```text
/// queued ──► running ──► succeeded | failed | cancelled
///   │           │
///   │           └──► interrupted   (the daemon stopped or died while it ran)
///   ├──► cancelled
///   └──► interrupted               (the daemon stopped or died before it ran)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// A job in a terminal state never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// How a job ended: its build's verdict, or its run's. Written as the bare verdict (the
/// two sets of names do not overlap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(untagged)]
pub enum JobVerdict {
    Build(BuildVerdict),
    Run(RunVerdict),
}

impl JobVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            JobVerdict::Build(verdict) => verdict.as_str(),
            JobVerdict::Run(verdict) => verdict.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<JobVerdict> {
        BuildVerdict::parse(text)
            .map(JobVerdict::Build)
            .or_else(|| RunVerdict::parse(text).map(JobVerdict::Run))
    }
}

impl std::fmt::Display for JobVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A job as the daemon reports it (`GET /v1/jobs/{id}`, and the answer to a submission).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Job {
    pub schema: String,
    pub id: u64,
    pub kind: JobKind,
    pub state: JobState,
    pub request: JobRequest,
    /// Milliseconds since the Unix epoch.
    pub submitted_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<JobVerdict>,
    /// The documented exit code (`crate::exit_code`), as `hermetic run` or
    /// `hermetic build` would have exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<Digests>,
    /// Where the daemon keeps the job's log.
    pub log_path: PathBuf,
    /// The full `hermetic.build/v1` report of a build job (only in `GET /v1/jobs/{id}`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "published_report"
    )]
    pub report: Option<Box<BuildReport>>,
}

/// A job's report as `hermetic build --json` prints it (`BuildReport::to_published_json`).
fn published_report<S: Serializer>(
    report: &Option<Box<BuildReport>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let published = report
        .as_deref()
        .map(BuildReport::to_published_json)
        .transpose()
        .map_err(serde::ser::Error::custom)?;
    published.serialize(serializer)
}

/// `GET /v1/jobs`: newest first.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct JobList {
    pub schema: String,
    pub jobs: Vec<Job>,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Health {
    pub schema: String,
    /// "ok", or "shutting-down".
    pub status: String,
    pub version: String,
    pub api_version: u32,
    pub queued: usize,
    pub running: usize,
    pub max_concurrent: usize,
    pub queue_limit: usize,
}

/// Every 4xx/5xx answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorInfo {
    /// Stable, machine-readable: "busy", "bad-request", "body-too-large", "forbidden",
    /// "not-found", "unsupported-api-version", "method-not-allowed", "not-cancellable",
    /// "shutting-down", "internal".
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_split_whole_whatever_pieces_they_arrive_in() {
        let mut log = vec![1, 0, 0, 0, 3];
        log.extend_from_slice(b"out");
        log.extend_from_slice(&[2, 0, 0, 0, 0]);
        log.extend_from_slice(&[FRAME_JOB, 0, 0, 0, 2]);
        log.extend_from_slice(b"{}");
        for cut in 0..=log.len() {
            let mut seen = Vec::new();
            let used = split_frames(&log[..cut], |frame| {
                seen.push((frame.tag, frame.bytes.to_vec()));
                true
            });
            let whole: Vec<_> = [
                (1, b"out".to_vec()),
                (2, vec![]),
                (FRAME_JOB, b"{}".to_vec()),
            ]
            .into_iter()
            .take(match cut {
                0..=7 => 0,
                8..=12 => 1,
                13..=19 => 2,
                _ => 3,
            })
            .collect();
            assert_eq!(seen, whole, "cut at {cut}");
            assert_eq!(used, [0, 8, 13, 20][whole.len()], "cut at {cut}");
        }
        let mut first = 0;
        let used = split_frames(&log, |_| {
            first += 1;
            false
        });
        assert_eq!(
            (first, used),
            (1, 8),
            "stopping after a frame consumes just it"
        );
    }

    use super::*;
    use crate::report::sample_report;

    #[test]
    fn a_job_verdict_is_written_as_the_bare_verdict_and_reads_back() {
        let build = BuildVerdict::ALL.iter().copied().map(JobVerdict::Build);
        let run = RunVerdict::ALL.iter().copied().map(JobVerdict::Run);
        for verdict in build.chain(run) {
            let json = serde_json::to_string(&verdict).unwrap();
            assert_eq!(json, format!("\"{verdict}\""));
            assert_eq!(serde_json::from_str::<JobVerdict>(&json).unwrap(), verdict);
            assert_eq!(JobVerdict::parse(verdict.as_str()), Some(verdict));
        }
        assert_eq!(JobVerdict::parse("succeeded"), None);
    }

    #[test]
    fn a_job_carries_its_report_as_published_and_reads_it_back() {
        let report = sample_report();
        let job = Job {
            schema: WIRE_SCHEMA.into(),
            id: 7,
            kind: JobKind::Build,
            state: JobState::Failed,
            request: JobRequest::Run(RunRequest {
                profile: "default".into(),
                src: "/src".into(),
                source_date_epoch: None,
                command: vec!["make".into()],
                image: None,
            }),
            submitted_at_ms: 1,
            started_at_ms: Some(2),
            finished_at_ms: Some(3),
            verdict: Some(JobVerdict::Build(report.verdict)),
            exit_code: Some(report.exit_code),
            error: report.error.clone(),
            digests: report.output.as_ref().map(|output| output.digest.clone()),
            log_path: "/logs/7.log".into(),
            report: Some(Box::new(report.clone())),
        };
        let json = serde_json::to_string(&job).unwrap();
        let published = report.to_published_json().unwrap().to_string();
        assert!(
            json.ends_with(&format!(r#","report":{published}}}"#)),
            "{json}"
        );
        let read: Job = serde_json::from_str(&json).unwrap();
        assert_eq!(read.report.as_deref(), Some(&report));
        assert_eq!(
            read.verdict,
            Some(JobVerdict::Build(BuildVerdict::Nondeterministic))
        );
    }
}

/// `GET /v1/drills`: recorded drills, newest first (by when they finished). With `case` or
/// `cache_key`, each drill lists only the matching cases, and drills without one are left
/// out.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DrillList {
    pub schema: String,
    pub drills: Vec<DrillReport>,
}
