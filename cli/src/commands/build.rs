//! `hermetic build`: run a build twice (the second time varied) and decide whether it is
//! reproducible; `--single` runs it once. Either way the canonical run's outputs are
//! archived.
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use hermetic::archive::extract::{extract_verified, ExtractLimits};
use hermetic::archive::manifest::FileEntry;
use hermetic::archive::outpath::OutputPath;
use hermetic::repro::compare::{Difference, DifferenceKind};
use hermetic::repro::dual::{
    self, DualOptions, RunIo, RunName, RunRecord, SuspectedCause, Verdict,
};
use hermetic::repro::explain;
use hermetic::repro::vary::Varied;
use hermetic::sandbox::launch::{
    self, AppliedLayers, BuildStatus, Launch, PackedOutputs, RunOutcome,
};
use hermetic::sandbox::plan::{self, PinReport, Plan, Request};
use hermetic::sandbox::profile::{self, Profile};
use serde::Serialize;

use crate::args::BuildArgs;
use crate::exit;
use crate::stdio::{self, Target};
use crate::Failure;

/// Version of the `--json` report. Changelog:
/// - hermetic.build/v1: first version (single and dual runs).
pub const BUILD_REPORT_SCHEMA: &str = "hermetic.build/v1";

/// How much of a non-canonical run's output is kept to show when it fails.
const CAPTURED_LOG_BYTES: usize = 64 * 1024;

#[derive(Serialize)]
struct BuildReport {
    schema: &'static str,
    /// "built" (single) | "reproducible" | "nondeterministic" | "failed"
    verdict: &'static str,
    exit_code: i32,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    profile: ProfileReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pins: Option<PinReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<AppliedLayers>,
    runs: Vec<RunReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    varied: Option<Vec<Varied>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    differences: Option<Vec<Difference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspected_causes: Option<Vec<SuspectedCause>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain_report: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<OutputReport>,
}

#[derive(Serialize)]
struct ProfileReport {
    name: String,
    origin: String,
    sha256: String,
    /// BLAKE3 of the rootfs tree, for profiles that use one.
    #[serde(skip_serializing_if = "Option::is_none")]
    rootfs_blake3: Option<String>,
}

#[derive(Serialize)]
struct RunReport {
    name: RunName,
    /// The command's exit code (128 + signal when killed, 124 on timeout); absent when
    /// the sandbox could not be set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    timed_out: bool,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_digest: Option<Digests>,
}

#[derive(Serialize)]
struct OutputReport {
    archive: PathBuf,
    digest: Digests,
    size: u64,
    manifest_blake3: String,
    /// Set when the archive is kept for inspection only ("nondeterministic"): it must not
    /// be cached, signed or shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    flagged: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extracted_to: Option<PathBuf>,
    files: Vec<FileEntry>,
}

#[derive(Clone, Serialize)]
struct Digests {
    sha256: String,
    blake3: String,
}

impl From<&PackedOutputs> for Digests {
    fn from(packed: &PackedOutputs) -> Self {
        Digests {
            sha256: packed.sha256.clone(),
            blake3: packed.blake3.clone(),
        }
    }
}

pub fn build(args: BuildArgs) -> Result<i32, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    let outputs = parse_outputs(&args.outputs).map_err(usage)?;
    let profile = profile::load(&args.sandbox.profile).map_err(|e| usage(e.into()))?;
    if let Some(dest) = &args.extract {
        if dest.symlink_metadata().is_ok() {
            return Err(usage(anyhow!(
                "--extract {}: already exists; name a new directory",
                dest.display()
            )));
        }
    }
    let plan = plan::plan(
        &profile,
        &Request {
            command: &args.command,
            source: Some(&args.sandbox.src),
            outputs: Some(&outputs),
            source_date_epoch: args.sandbox.source_date_epoch,
        },
    )
    .map_err(|e| usage(e.into()))?;
    let report = BuildReport {
        schema: BUILD_REPORT_SCHEMA,
        verdict: "failed",
        exit_code: exit::SANDBOX_FAILED,
        mode: if args.single { "single" } else { "dual" },
        error: None,
        profile: ProfileReport {
            name: profile.name.clone(),
            origin: profile.origin.clone(),
            sha256: profile.sha256.clone(),
            rootfs_blake3: plan.rootfs_blake3.clone(),
        },
        pins: Some(plan.pins()),
        sandbox: None,
        runs: Vec::new(),
        varied: None,
        differences: None,
        suspected_causes: None,
        explain_report: None,
        output: None,
    };
    let report = if args.single {
        build_single(&args, &profile, &plan, report)?
    } else {
        build_dual(&args, &profile, &plan, report)?
    };
    finish(&args, report)
}

fn build_single(
    args: &BuildArgs,
    profile: &Profile,
    plan: &Plan,
    mut report: BuildReport,
) -> Result<BuildReport, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    let partial = PartialArtifact::create(&args.artifact, "").map_err(usage)?;
    let artifact = partial
        .file
        .try_clone()
        .context("duplicate the artifact descriptor")
        .map_err(usage)?;
    // The build's own output is a log, not hermetic's result: it goes to stderr, so stdout
    // carries only the report.
    let (stdout, stdout_relay) = stdio::for_build(Target::Stderr).map_err(|e| usage(e.into()))?;
    let (stderr, stderr_relay) = stdio::for_build(Target::Stderr).map_err(|e| usage(e.into()))?;
    let outcome = launch::run(Launch {
        spec: &plan.spec,
        cgroup_policy: profile.cgroup,
        stdout,
        stderr,
        artifact: Some(artifact),
    });
    for relay in [stdout_relay, stderr_relay].into_iter().flatten() {
        let _ = relay.join();
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            report.error = Some(err.to_string());
            return Ok(report);
        }
    };
    report.sandbox = Some(outcome.layers.clone());
    report.runs.push(run_report(RunName::A, Ok(&outcome)));
    match judge(&outcome) {
        Err(message) => {
            report.exit_code = exit::BUILD_FAILED;
            report.error = Some(message);
        }
        Ok(packed) => keep_archive(
            args,
            partial,
            packed,
            None,
            "built",
            exit::SUCCESS,
            &mut report,
        ),
    }
    Ok(report)
}

fn build_dual(
    args: &BuildArgs,
    profile: &Profile,
    plan: &Plan,
    mut report: BuildReport,
) -> Result<BuildReport, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    let partials: Mutex<Vec<(RunName, PartialArtifact)>> = Mutex::new(Vec::new());
    let captured: Mutex<Vec<(RunName, JoinHandle<Vec<u8>>)>> = Mutex::new(Vec::new());
    let io = |name: RunName| -> std::io::Result<RunIo> {
        let suffix = match name {
            RunName::A => "",
            RunName::B => ".run-b",
            RunName::C => ".run-c",
        };
        let partial =
            PartialArtifact::create(&args.artifact, suffix).map_err(std::io::Error::other)?;
        let artifact = partial.file.try_clone()?;
        let archive_path = partial.temp.clone();
        partials.lock().expect("not poisoned").push((name, partial));
        let (stdout, stderr) = if name == RunName::A {
            // The canonical run's log is streamed like a single build's.
            let (stdout, relay_out) = stdio::for_build(Target::Stderr)?;
            let (stderr, relay_err) = stdio::for_build(Target::Stderr)?;
            for relay in [relay_out, relay_err].into_iter().flatten() {
                captured.lock().expect("not poisoned").push((
                    name,
                    std::thread::spawn(move || {
                        let _ = relay.join();
                        Vec::new()
                    }),
                ));
            }
            (stdout, stderr)
        } else {
            // The other runs would interleave with it; keep their tail for a failure report.
            let (reader, writer) = std::io::pipe()?;
            let handle = std::thread::spawn(move || keep_tail(reader));
            captured.lock().expect("not poisoned").push((name, handle));
            (Stdio::from(writer.try_clone()?), Stdio::from(writer))
        };
        Ok(RunIo {
            stdout,
            stderr,
            artifact,
            archive_path,
        })
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let options = DualOptions {
        cgroup_policy: profile.cgroup,
        seed,
        noise_pass: true,
    };
    let outcome = dual::run(&plan.spec, &options, &io)
        .map_err(|e| usage(anyhow!("prepare the runs: {e}")))?;
    let logs: Vec<(RunName, Vec<u8>)> = captured
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|(name, handle)| (name, handle.join().unwrap_or_default()))
        .collect();
    let mut partials = partials.into_inner().expect("not poisoned");

    report.varied = Some(outcome.varied.clone());
    report.sandbox = outcome.runs[0]
        .result
        .as_ref()
        .ok()
        .map(|o| o.layers.clone());
    for record in &outcome.runs {
        report
            .runs
            .push(run_report(record.name, record.result.as_ref()));
        if let Some(packed) = record.packed() {
            report.runs.last_mut().expect("just pushed").output_digest = Some(packed.into());
        }
    }
    let take_a = |partials: &mut Vec<(RunName, PartialArtifact)>| {
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
                    eprintln!("--- output of run {name:?} (last {} bytes) ---", log.len());
                    eprint!("{}", String::from_utf8_lossy(log));
                }
            }
        }
        Verdict::Reproducible => {
            let packed = outcome.runs[0]
                .packed()
                .expect("reproducible runs have outputs")
                .clone();
            keep_archive(
                args,
                take_a(&mut partials),
                &packed,
                None,
                "reproducible",
                exit::SUCCESS,
                &mut report,
            );
        }
        Verdict::Nondeterministic => {
            let packed = outcome.runs[0]
                .packed()
                .expect("compared runs have outputs")
                .clone();
            if args.explain {
                report.explain_report =
                    explain_differences(args, &outcome.differences, &outcome.runs)
                        .map_err(|e| tracing::warn!("could not write the explanation: {e:#}"))
                        .ok();
            }
            report.differences = Some(outcome.differences.clone());
            report.suspected_causes = Some(outcome.suspected.clone());
            keep_archive(
                args,
                take_a(&mut partials),
                &packed,
                Some("nondeterministic"),
                "nondeterministic",
                exit::NONDETERMINISTIC,
                &mut report,
            );
        }
    }
    Ok(report)
}

/// Moves the canonical archive into place and fills in the report (and extracts it when
/// asked; never a flagged one).
fn keep_archive(
    args: &BuildArgs,
    partial: PartialArtifact,
    packed: &PackedOutputs,
    flagged: Option<&'static str>,
    verdict: &'static str,
    code: i32,
    report: &mut BuildReport,
) {
    let archive = match partial.commit() {
        Ok(archive) => archive,
        Err(err) => {
            report.exit_code = exit::SANDBOX_FAILED;
            report.error = Some(format!("{err:#}"));
            return;
        }
    };
    let mut output = OutputReport {
        archive,
        digest: packed.into(),
        size: packed.size,
        manifest_blake3: packed.manifest.blake3_hex(),
        flagged,
        extracted_to: None,
        files: packed.manifest.files.clone(),
    };
    report.verdict = verdict;
    report.exit_code = code;
    if let (Some(dest), None) = (&args.extract, flagged) {
        match extract(&output.archive, packed, dest) {
            Ok(()) => output.extracted_to = Some(dest.clone()),
            Err(err) => {
                report.verdict = "failed";
                report.exit_code = exit::SANDBOX_FAILED;
                report.error = Some(format!("{err:#}"));
            }
        }
    }
    report.output = Some(output);
}

/// The exit code and message of a failed dual build: a sandbox error wins (5), else the
/// commands' statuses (1), both shown.
fn failure_of(runs: &[RunRecord]) -> (i32, String) {
    let mut parts = Vec::new();
    let mut code = exit::BUILD_FAILED;
    for record in runs {
        let part = match &record.result {
            Err(err) => {
                code = exit::SANDBOX_FAILED;
                format!("run {:?}: {err}", record.name)
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
    args: &BuildArgs,
    differences: &[Difference],
    runs: &[RunRecord],
) -> anyhow::Result<PathBuf> {
    const MAX_FILES: usize = 10;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
    const MAX_REPORT: u64 = 4 << 20;
    let wanted: BTreeSet<String> = differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::Content)
        .take(MAX_FILES)
        .map(|d| d.path.clone())
        .collect();
    let read = |name: RunName| -> anyhow::Result<_> {
        let record = runs
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| anyhow!("run {name:?} is missing"))?;
        explain::read_archived_files(&record.archive_path, &wanted, 64 << 20)
            .context("read the archived outputs")
    };
    let (files_a, files_b) = (read(RunName::A)?, read(RunName::B)?);

    let scratch = std::env::temp_dir().join(format!("hermetic-explain-{}", std::process::id()));
    let tree = |side: &str,
                files: &std::collections::BTreeMap<String, Vec<u8>>|
     -> anyhow::Result<PathBuf> {
        let root = scratch.join(side);
        for (path, content) in files {
            let target = root.join(path);
            std::fs::create_dir_all(target.parent().expect("a file path has a parent"))?;
            std::fs::write(&target, content)?;
        }
        std::fs::create_dir_all(&root)?;
        Ok(root)
    };
    let diffoscope_report = sibling(&args.artifact, ".diffoscope.txt");
    let result = (|| -> anyhow::Result<Option<PathBuf>> {
        let (a, b) = (tree("a", &files_a)?, tree("b", &files_b)?);
        match explain::run_diffoscope(&a, &b, &diffoscope_report, TIMEOUT, MAX_REPORT) {
            Some(Ok(())) if diffoscope_report.exists() => Ok(Some(diffoscope_report.clone())),
            _ => Ok(None),
        }
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(report) = result? {
        return Ok(report);
    }
    let summary_path = sibling(&args.artifact, ".explain.txt");
    let mut summary =
        String::from("hermetic: built-in explanation (install diffoscope for a full report)\n\n");
    for path in &wanted {
        let empty = Vec::new();
        let a = files_a.get(path).unwrap_or(&empty);
        let b = files_b.get(path).unwrap_or(&empty);
        summary.push_str(&explain::summarise_file(path, a, b));
    }
    std::fs::write(&summary_path, summary)
        .with_context(|| format!("write {}", summary_path.display()))?;
    Ok(summary_path)
}

fn sibling(artifact: &Path, suffix: &str) -> PathBuf {
    let mut name = artifact.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    artifact.with_file_name(name)
}

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

/// The build's outputs when it succeeded, else why it failed.
fn judge(outcome: &RunOutcome) -> Result<&PackedOutputs, String> {
    if let Some((program, errno)) = &outcome.exec_failure {
        return Err(format!(
            "cannot execute `{program}` in the sandbox: {}",
            std::io::Error::from_raw_os_error(*errno)
        ));
    }
    match outcome.status {
        BuildStatus::Exited(0) => {}
        BuildStatus::Exited(code) => {
            return Err(format!("the build command exited with status {code}"))
        }
        BuildStatus::Signaled(signal) => {
            return Err(format!("the build command was killed by signal {signal}"))
        }
        BuildStatus::TimedOut => {
            return Err("the build exceeded the profile's timeout and was killed".into())
        }
    }
    match &outcome.outputs {
        Some(Ok(packed)) => Ok(packed),
        Some(Err(message)) => Err(message.clone()),
        None => Err("the sandbox reported no outputs".into()),
    }
}

fn run_report(
    name: RunName,
    outcome: Result<&RunOutcome, &hermetic::sandbox::SandboxError>,
) -> RunReport {
    match outcome {
        Err(err) => RunReport {
            name,
            exit_status: None,
            signal: None,
            timed_out: false,
            duration_ms: 0,
            setup_ms: None,
            error: Some(err.to_string()),
            output_digest: None,
        },
        Ok(outcome) => RunReport {
            name,
            exit_status: Some(outcome.status.shell_code()),
            signal: match outcome.status {
                BuildStatus::Signaled(signal) => Some(signal),
                _ => None,
            },
            timed_out: outcome.status == BuildStatus::TimedOut,
            duration_ms: outcome.duration.as_millis() as u64,
            setup_ms: outcome.setup.map(|d| d.as_secs_f64() * 1000.0),
            error: judge(outcome).err(),
            output_digest: None,
        },
    }
}

fn extract(archive: &Path, packed: &PackedOutputs, dest: &Path) -> anyhow::Result<()> {
    let file = File::open(archive).with_context(|| format!("open {}", archive.display()))?;
    extract_verified(
        std::io::BufReader::new(file),
        &packed.manifest,
        dest,
        &ExtractLimits::default(),
    )
    .with_context(|| format!("extract the outputs into {}", dest.display()))?;
    Ok(())
}

fn parse_outputs(raw: &[String]) -> anyhow::Result<Vec<OutputPath>> {
    let raw: Vec<&str> = if raw.is_empty() {
        vec!["out"]
    } else {
        raw.iter().map(String::as_str).collect()
    };
    raw.iter()
        .map(|path| OutputPath::parse(path).map_err(|err| anyhow!("--output {path}: {err}")))
        .collect()
}

fn finish(args: &BuildArgs, report: BuildReport) -> Result<i32, Failure> {
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(exit::SANDBOX_FAILED, e))?;
        println!("{json}");
    } else {
        print_human(&report);
    }
    Ok(report.exit_code)
}

fn print_human(report: &BuildReport) {
    if let Some(error) = &report.error {
        eprintln!("hermetic: build failed: {error}");
        return;
    }
    let Some(output) = &report.output else { return };
    match report.verdict {
        "nondeterministic" => {
            let differences = report.differences.as_deref().unwrap_or_default();
            println!(
                "nondeterministic: {} path(s) differ between the canonical and the varied run",
                differences.len()
            );
            let causes = report.suspected_causes.as_deref().unwrap_or_default();
            for difference in differences {
                let suspected: Vec<String> = causes
                    .iter()
                    .filter(|c| c.path == difference.path)
                    .map(|c| {
                        serde_json::to_value(&c.suspect)
                            .ok()
                            .and_then(|v| v["cause"].as_str().map(str::to_string))
                            .unwrap_or_default()
                    })
                    .collect();
                let kind = serde_json::to_value(difference.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let causes = if suspected.is_empty() {
                    String::new()
                } else {
                    format!("  (suspected: {})", suspected.join(", "))
                };
                println!("  {kind:<8} {}{causes}", difference.path);
            }
            if let Some(varied) = &report.varied {
                let names: Vec<&str> = varied.iter().map(|v| v.what).collect();
                println!("varied: {}", names.join(", "));
            }
            match &report.explain_report {
                Some(path) => println!("report: {}", path.display()),
                None => println!("report: rerun with --explain for a per-file explanation (run with --json for digests)"),
            }
            println!(
                "kept for inspection, flagged nondeterministic: {}",
                output.archive.display()
            );
        }
        verdict => {
            println!(
                "{verdict}: {} ({} entries, {} bytes)",
                output.archive.display(),
                output.files.len(),
                output.size
            );
            println!("  sha256 {}", output.digest.sha256);
            println!("  blake3 {}", output.digest.blake3);
            if let Some(dest) = &output.extracted_to {
                println!("  extracted to {}", dest.display());
            }
        }
    }
}

/// An archive while it is written: a temporary file beside the destination, renamed into
/// place only when it is kept, removed otherwise. Nobody ever sees half an archive.
struct PartialArtifact {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartialArtifact {
    fn create(dest: &Path, run_suffix: &str) -> anyhow::Result<Self> {
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow!("--artifact {}: not a file name", dest.display()))?;
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(anyhow!(
                "--artifact {}: directory {} does not exist",
                dest.display(),
                dir.display()
            ));
        }
        let temp = dir.join(format!(
            ".{}{run_suffix}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp)
            .with_context(|| format!("create {}", temp.display()))?;
        Ok(PartialArtifact {
            file,
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    fn commit(mut self) -> anyhow::Result<PathBuf> {
        self.file
            .sync_all()
            .with_context(|| format!("sync {}", self.temp.display()))?;
        std::fs::rename(&self.temp, &self.dest)
            .with_context(|| format!("move the archive to {}", self.dest.display()))?;
        self.committed = true;
        Ok(self.dest.clone())
    }
}

impl Drop for PartialArtifact {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
