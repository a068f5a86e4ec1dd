//! Runs the canonical build (a) and the varied build (b) side by side, compares their
//! manifests, and when they differ runs a noise pass (c: a second canonical run) to tell
//! intrinsic randomness from sensitivity to what b varied.
use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::repro::compare::{compare, Difference, DifferenceKind};
use crate::repro::explain::{find_timestamps, read_archived_files, TimeWindow};
use crate::repro::vary::{canonical_run, second_run, Varied};
use crate::sandbox::cancel::Cancel;
use crate::sandbox::keep_failed::{FailedTrees, KEPT_TREE_NAME};
use crate::sandbox::launch::{self, BuildStatus, Launch, PackedOutputs, RunOutcome};
use crate::sandbox::profile::CgroupPolicy;
use crate::sandbox::spec::SandboxSpec;
use crate::sandbox::SandboxError;

pub use hermetic_contract::report::{RunName, Suspect, SuspectedCause};

/// Bytes of one differing file read back for the timestamp scan.
const SCAN_CAP: u64 = 16 << 20;

/// The name a run's build dir is kept under when its command fails (`keep_failed`): as
/// its artifact's suffix.
pub fn kept_tree_name(run: RunName) -> &'static str {
    match run {
        RunName::A => KEPT_TREE_NAME,
        RunName::B => "build.run-b",
        RunName::C => "build.run-c",
    }
}

/// Where one run's output goes.
pub struct RunIo {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub artifact: File,
    pub archive_path: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Reproducible,
    Nondeterministic,
    Failed,
}

#[derive(Debug)]
pub struct RunRecord {
    pub name: RunName,
    pub result: Result<RunOutcome, SandboxError>,
    /// The wall-clock window the build ran in.
    pub window: TimeWindow,
    pub archive_path: PathBuf,
}

impl RunRecord {
    /// The outputs when the run succeeded and archived them.
    pub fn packed(&self) -> Option<&PackedOutputs> {
        match &self.result {
            Ok(outcome) if outcome.status.success() && outcome.exec_failure.is_none() => {
                outcome.outputs.as_ref()?.as_ref().ok()
            }
            _ => None,
        }
    }
}

pub struct DualOutcome {
    pub verdict: Verdict,
    pub runs: Vec<RunRecord>,
    pub differences: Vec<Difference>,
    pub varied: Vec<Varied>,
    pub suspected: Vec<SuspectedCause>,
}

pub struct DualOptions<'c> {
    pub cgroup_policy: CgroupPolicy,
    /// Kills every run of this build when cancelled (no noise pass starts after it).
    pub cancel: Option<&'c Cancel>,
    /// Picks b's offsets; recorded through `varied`.
    pub seed: u64,
    /// Run the noise pass when a and b differ.
    pub noise_pass: bool,
    /// Where a run whose command fails leaves its build dir (the daemon's `keep_failed`).
    pub keep_failed: Option<&'c FailedTrees>,
}

/// Runs the dual build. `io` is asked for each run's output destinations when that run
/// starts (c only exists when a noise pass is needed).
pub fn run(
    canonical: &SandboxSpec,
    options: &DualOptions<'_>,
    io: &(dyn Fn(RunName) -> std::io::Result<RunIo> + Sync),
) -> std::io::Result<DualOutcome> {
    let canonical = &canonical_run(canonical);
    let second = second_run(canonical, options.seed);
    let io_a = io(RunName::A)?;
    let io_b = io(RunName::B)?;
    let pool = crate::background::Pool::current();
    let (record_a, record_b) = std::thread::scope(|scope| {
        let b = scope.spawn(|| {
            let _pool = pool.enter();
            if second.start_delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(second.start_delay_ms));
            }
            run_one(RunName::B, &second.spec, options, io_b)
        });
        let a = run_one(RunName::A, canonical, options, io_a);
        (a, b.join().expect("the run-b thread does not panic"))
    });

    let mut outcome = DualOutcome {
        verdict: Verdict::Failed,
        runs: Vec::new(),
        differences: Vec::new(),
        varied: second.varied,
        suspected: Vec::new(),
    };
    let (Some(packed_a), Some(packed_b)) = (record_a.packed(), record_b.packed()) else {
        outcome.runs = vec![record_a, record_b];
        return Ok(outcome);
    };
    outcome.differences = compare(&packed_a.manifest, &packed_b.manifest);
    if outcome.differences.is_empty() {
        outcome.verdict = Verdict::Reproducible;
        outcome.runs = vec![record_a, record_b];
        return Ok(outcome);
    }
    outcome.verdict = Verdict::Nondeterministic;
    outcome.suspected = timestamp_leaks(&outcome.differences, &record_a, &record_b);
    outcome.runs = vec![record_a, record_b];
    let cancelled = options.cancel.is_some_and(Cancel::is_cancelled);
    if options.noise_pass && !cancelled {
        let record_c = run_one(RunName::C, canonical, options, io(RunName::C)?);
        if let (Some(packed_a), Some(packed_c)) = (outcome.runs[0].packed(), record_c.packed()) {
            let noisy: BTreeSet<String> = compare(&packed_a.manifest, &packed_c.manifest)
                .into_iter()
                .map(|d| d.path)
                .collect();
            for difference in &outcome.differences {
                let suspect = if noisy.contains(&difference.path) {
                    Suspect::IntrinsicRandomness
                } else {
                    Suspect::VariationSensitive
                };
                outcome.suspected.push(SuspectedCause {
                    path: difference.path.clone(),
                    suspect,
                });
            }
        }
        outcome.runs.push(record_c);
    }
    Ok(outcome)
}

fn run_one(name: RunName, spec: &SandboxSpec, options: &DualOptions<'_>, io: RunIo) -> RunRecord {
    let start = now_secs();
    let result = launch::run(Launch {
        spec,
        cgroup_policy: options.cgroup_policy,
        stdout: io.stdout,
        stderr: io.stderr,
        artifact: Some(io.artifact),
        cancel: options.cancel,
        keep_failed: options
            .keep_failed
            .map(|trees| (trees, kept_tree_name(name))),
        early: None,
    });
    let end = now_secs();
    RunRecord {
        name,
        result,
        window: TimeWindow { start, end },
        archive_path: io.archive_path,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Differing files that hold a value from their own run's time window.
fn timestamp_leaks(
    differences: &[Difference],
    a: &RunRecord,
    b: &RunRecord,
) -> Vec<SuspectedCause> {
    let wanted: BTreeSet<String> = differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::Content)
        .map(|d| d.path.clone())
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut suspected = Vec::new();
    let mut leaked: BTreeSet<String> = BTreeSet::new();
    for record in [a, b] {
        let Ok(files) = read_archived_files(&record.archive_path, &wanted, SCAN_CAP) else {
            continue;
        };
        for (path, content) in files {
            if leaked.contains(&path) {
                continue;
            }
            if let Some(&(encoding, offset)) = find_timestamps(&content, record.window).first() {
                leaked.insert(path.clone());
                suspected.push(SuspectedCause {
                    path,
                    suspect: Suspect::TimestampLeak {
                        run: record.name,
                        encoding,
                        offset,
                    },
                });
            }
        }
    }
    suspected
}

/// The shell-style exit status of a run, for reports.
pub fn exit_status(record: &RunRecord) -> Option<i32> {
    record
        .result
        .as_ref()
        .ok()
        .map(|outcome| outcome.status.shell_code())
}

/// True when the run's command ran and exited 0.
pub fn command_succeeded(record: &RunRecord) -> bool {
    matches!(&record.result, Ok(outcome) if outcome.status == BuildStatus::Exited(0) && outcome.exec_failure.is_none())
}
