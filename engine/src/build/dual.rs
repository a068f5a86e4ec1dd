//! The default build: the canonical run and the varied run side by side (and the noise
//! pass when they differ, `repro::dual`); the canonical outputs are kept, flagged when
//! they are not reproducible.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{
    BuildReport, BuildVerdict, Difference, DifferenceKind, Digests, OutputFlag, RunName,
};

use super::log_relay::LogRelay;
use super::outcome::{judge, run_report};
use super::output::keep_archive;
use super::partial::PartialArtifact;
use super::{BuildError, LogSink};
use crate::errors::Chain;
use crate::exit_code as exit;
use crate::repro::dual::{self, DualOptions, RunIo, RunRecord, Verdict};
use crate::repro::explain;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::keep_failed::FailedTrees;
use crate::sandbox::plan::Plan;
use crate::sandbox::profile::Profile;

/// How much of a non-canonical run's output is kept to show when it fails.
const CAPTURED_LOG_BYTES: usize = 64 * 1024;

pub(super) fn build(
    request: &BuildRequest,
    profile: &Profile,
    plan: &Plan,
    mut report: BuildReport,
    log: LogSink<'_>,
    cancel: Option<&Cancel>,
    keep_failed: Option<&FailedTrees>,
) -> Result<BuildReport, BuildError> {
    let partials: Mutex<Vec<(RunName, PartialArtifact)>> = Mutex::new(Vec::new());
    let captured: Mutex<Vec<(RunName, JoinHandle<Vec<u8>>)>> = Mutex::new(Vec::new());
    let canonical_log: Mutex<Option<LogRelay>> = Mutex::new(None);
    let io = |name: RunName| -> std::io::Result<RunIo> {
        let suffix = match name {
            RunName::A => "",
            RunName::B => ".run-b",
            RunName::C => ".run-c",
        };
        let partial =
            PartialArtifact::create(&request.artifact, suffix).map_err(std::io::Error::other)?;
        let artifact = partial.file.try_clone()?;
        let archive_path = partial.temp.clone();
        partials.lock().expect("not poisoned").push((name, partial));
        let (stdout, stderr) = if name == RunName::A {
            let relay = LogRelay::start(log())?;
            let streams = relay.streams()?;
            *canonical_log.lock().expect("not poisoned") = Some(relay);
            streams
        } else {
            // The other runs would interleave with the canonical log; keep their tail for
            // a failure report instead.
            let (reader, writer) = std::io::pipe()?;
            let handle = std::thread::spawn(move || keep_tail(reader));
            captured.lock().expect("not poisoned").push((name, handle));
            (OwnedFd::from(writer.try_clone()?), OwnedFd::from(writer))
        };
        Ok(RunIo {
            stdout,
            stderr,
            artifact,
            archive_path,
        })
    };
    // The variation is derived from the inputs, so rebuilding the same inputs varies the
    // same way and reports (and provenance) stay comparable.
    let seed = {
        let spec = serde_json::to_vec(&plan.spec).unwrap_or_default();
        let digest = blake3::hash(&spec);
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
    };
    let options = DualOptions {
        cgroup_policy: profile.cgroup,
        cancel,
        seed,
        noise_pass: true,
        keep_failed,
    };
    let outcome = dual::run(&plan.spec, &options, &io).map_err(BuildError::Streams)?;
    let logs: Vec<(RunName, Vec<u8>)> = captured
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|(name, handle)| (name, handle.join().unwrap_or_default()))
        .collect();
    let mut partials = partials.into_inner().expect("not poisoned");
    report.log = canonical_log
        .into_inner()
        .expect("not poisoned")
        .map(LogRelay::finish);

    report.varied = Some(outcome.varied.clone());
    report.sandbox = outcome.runs[0]
        .result
        .as_ref()
        .ok()
        .map(|o| o.layers.clone());
    if let Ok(canonical) = &outcome.runs[0].result {
        report.source_left_out = super::outcome::source_left_out(canonical);
    }
    for record in &outcome.runs {
        let mut run = run_report(record.name, record.result.as_ref());
        run.output_digest = record.packed().map(Digests::from);
        report.runs.push(run);
    }
    let mut take_a = || {
        let index = partials
            .iter()
            .position(|(name, _)| *name == RunName::A)
            .expect("run a has an artifact");
        partials.swap_remove(index).1
    };
    match outcome.verdict {
        Verdict::Failed => {
            let (code, error) = failure_of(&outcome.runs);
            report.exit_code = code;
            report.error = Some(error);
            for (name, log) in &logs {
                let failed = outcome
                    .runs
                    .iter()
                    .any(|r| r.name == *name && !dual::command_succeeded(r));
                if failed && !log.is_empty() {
                    tracing::warn!(
                        "output of run {name:?} (last {} bytes):\n{}",
                        log.len(),
                        String::from_utf8_lossy(log)
                    );
                }
            }
        }
        Verdict::Reproducible => {
            let packed = outcome.runs[0]
                .packed()
                .expect("reproducible runs have outputs")
                .clone();
            keep_archive(
                request,
                take_a(),
                &packed,
                None,
                BuildVerdict::Reproducible,
                exit::SUCCESS,
                &mut report,
            );
        }
        Verdict::Nondeterministic => {
            let packed = outcome.runs[0]
                .packed()
                .expect("compared runs have outputs")
                .clone();
            if request.explain {
                match explain_differences(request, &outcome.differences, &outcome.runs) {
                    Ok(path) => report.explain_report = Some(path),
                    Err(err) => tracing::warn!("could not write the explanation: {}", Chain(&err)),
                }
            }
            report.differences = Some(outcome.differences.clone());
            report.suspected_causes = Some(outcome.suspected.clone());
            keep_archive(
                request,
                take_a(),
                &packed,
                Some(OutputFlag::Nondeterministic),
                BuildVerdict::Nondeterministic,
                exit::NONDETERMINISTIC,
                &mut report,
            );
        }
    }
    Ok(report)
}

/// The exit code and message of a failed dual build: a sandbox error wins (5), else the
/// commands' statuses (1), all shown.
fn failure_of(runs: &[RunRecord]) -> (i32, String) {
    let mut parts = Vec::new();
    let mut code = exit::BUILD_FAILED;
    for record in runs {
        let part = match &record.result {
            Err(err) => {
                code = exit::SANDBOX_FAILED;
                format!("run {:?}: {}", record.name, Chain(err))
            }
            Ok(outcome) => match judge(outcome) {
                Ok(_) => format!("run {:?}: succeeded", record.name),
                Err(message) => format!("run {:?}: {message}", record.name),
            },
        };
        parts.push(part);
    }
    let only_one = runs.iter().filter(|r| dual::command_succeeded(r)).count() == 1;
    let prefix = if only_one {
        "only one run failed (itself a sign of nondeterminism); "
    } else {
        ""
    };
    (code, format!("{prefix}{}", parts.join("; ")))
}

/// Writes the explanation next to the artifact: diffoscope's text report when diffoscope
/// is installed, else the built-in per-file summary.
fn explain_differences(
    request: &BuildRequest,
    differences: &[Difference],
    runs: &[RunRecord],
) -> std::io::Result<PathBuf> {
    const MAX_FILES: usize = 10;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
    const MAX_REPORT: u64 = 4 << 20;
    let wanted: BTreeSet<String> = differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::Content)
        .take(MAX_FILES)
        .map(|d| d.path.clone())
        .collect();
    let read = |name: RunName| -> std::io::Result<BTreeMap<String, Vec<u8>>> {
        let record = runs
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| std::io::Error::other(format!("run {name:?} is missing")))?;
        explain::read_archived_files(&record.archive_path, &wanted, 64 << 20)
    };
    let (files_a, files_b) = (read(RunName::A)?, read(RunName::B)?);

    let diffoscope_report = sibling(&request.artifact, ".diffoscope.txt");
    let scratch = std::env::temp_dir().join(format!("hermetic-explain-{}", std::process::id()));
    let diffoscope = (|| -> std::io::Result<bool> {
        let (a, b) = (
            write_tree(&scratch.join("a"), &files_a)?,
            write_tree(&scratch.join("b"), &files_b)?,
        );
        Ok(matches!(
            explain::run_diffoscope(&a, &b, &diffoscope_report, TIMEOUT, MAX_REPORT),
            Some(Ok(())) if diffoscope_report.exists()
        ))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    if diffoscope? {
        return Ok(diffoscope_report);
    }
    let summary_path = sibling(&request.artifact, ".explain.txt");
    let mut summary =
        String::from("hermetic: built-in explanation (install diffoscope for a full report)\n\n");
    let empty = Vec::new();
    for path in &wanted {
        let a = files_a.get(path).unwrap_or(&empty);
        let b = files_b.get(path).unwrap_or(&empty);
        summary.push_str(&explain::summarise_file(path, a, b));
    }
    std::fs::write(&summary_path, summary)?;
    Ok(summary_path)
}

fn write_tree(root: &Path, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    for (path, content) in files {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
    }
    Ok(root.to_path_buf())
}

fn sibling(artifact: &Path, suffix: &str) -> PathBuf {
    let mut name = artifact.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    artifact.with_file_name(name)
}

/// A non-canonical run's output, only its last `CAPTURED_LOG_BYTES`.
fn keep_tail(mut reader: std::io::PipeReader) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > CAPTURED_LOG_BYTES {
            kept.drain(..kept.len() - CAPTURED_LOG_BYTES);
        }
    }
    kept
}
