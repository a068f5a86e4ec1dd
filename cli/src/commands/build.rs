//! `hermetic build --single`: one sandboxed run whose outputs are archived.
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use hermetic::archive::extract::{extract_verified, ExtractLimits};
use hermetic::archive::manifest::FileEntry;
use hermetic::archive::outpath::OutputPath;
use hermetic::sandbox::launch::{
    self, AppliedLayers, BuildStatus, Launch, PackedOutputs, RunOutcome,
};
use hermetic::sandbox::plan::{self, PinReport, Request};
use hermetic::sandbox::profile;
use serde::Serialize;

use crate::args::BuildArgs;
use crate::exit;
use crate::stdio::{self, Target};
use crate::Failure;

/// Version of the `--json` report. Changelog:
/// - hermetic.build/v1: first version.
pub const BUILD_REPORT_SCHEMA: &str = "hermetic.build/v1";

#[derive(Serialize)]
struct BuildReport {
    schema: &'static str,
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
    name: &'static str,
    /// The command's exit code (128 + signal when killed, 124 on timeout).
    exit_status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    timed_out: bool,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_ms: Option<f64>,
}

#[derive(Serialize)]
struct OutputReport {
    archive: PathBuf,
    digest: Digests,
    size: u64,
    manifest_blake3: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    extracted_to: Option<PathBuf>,
    files: Vec<FileEntry>,
}

#[derive(Serialize)]
struct Digests {
    sha256: String,
    blake3: String,
}

pub fn build(args: BuildArgs) -> Result<i32, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    if !args.single {
        return Err(usage(anyhow!(
            "dual-run builds are not available yet; pass --single to run the build once"
        )));
    }
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
            source_date_epoch: args.source_date_epoch,
        },
    )
    .map_err(|e| usage(e.into()))?;
    let mut report = BuildReport {
        schema: BUILD_REPORT_SCHEMA,
        verdict: "failed",
        exit_code: exit::SANDBOX_FAILED,
        mode: "single",
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
        output: None,
    };

    let partial = PartialArtifact::create(&args.artifact).map_err(usage)?;
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
            return finish(&args, report);
        }
    };
    report.sandbox = Some(outcome.layers.clone());
    report.runs.push(run_report("a", &outcome));
    match judge(&outcome) {
        Err(message) => {
            report.exit_code = exit::BUILD_FAILED;
            report.error = Some(message);
        }
        Ok(packed) => match partial.commit() {
            Err(err) => {
                report.exit_code = exit::SANDBOX_FAILED;
                report.error = Some(format!("{err:#}"));
            }
            Ok(archive) => {
                let mut output = OutputReport {
                    archive,
                    digest: Digests {
                        sha256: packed.sha256.clone(),
                        blake3: packed.blake3.clone(),
                    },
                    size: packed.size,
                    manifest_blake3: packed.manifest.blake3_hex(),
                    extracted_to: None,
                    files: packed.manifest.files.clone(),
                };
                report.verdict = "built";
                report.exit_code = exit::SUCCESS;
                if let Some(dest) = &args.extract {
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
        },
    }
    finish(&args, report)
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

fn run_report(name: &'static str, outcome: &RunOutcome) -> RunReport {
    RunReport {
        name,
        exit_status: outcome.status.shell_code(),
        signal: match outcome.status {
            BuildStatus::Signaled(signal) => Some(signal),
            _ => None,
        },
        timed_out: outcome.status == BuildStatus::TimedOut,
        duration_ms: outcome.duration.as_millis() as u64,
        setup_ms: outcome.setup.map(|d| d.as_secs_f64() * 1000.0),
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
    match (&report.output, &report.error) {
        (Some(output), None) => {
            println!(
                "built: {} ({} entries, {} bytes)",
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
        (_, error) => {
            eprintln!(
                "hermetic: build failed: {}",
                error.as_deref().unwrap_or("unknown error")
            );
        }
    }
}

/// The archive while it is written: a temporary file beside the destination, renamed into
/// place only when the build succeeded, removed otherwise. Nobody ever sees half an archive.
struct PartialArtifact {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartialArtifact {
    fn create(dest: &Path) -> anyhow::Result<Self> {
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
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::options()
            .write(true)
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
