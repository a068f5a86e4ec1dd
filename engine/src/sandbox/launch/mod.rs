//! The launcher side: creates the build's cgroup, starts the helper with the spec, relays
//! what the helper reports, and cleans up. This is the only part of the engine a caller
//! (the CLI, later the daemon) touches.
//!
//! `start` holds the ways to start a helper, `early` the helper the CLI starts before it
//! has a spec, `cpu_split` where that one and its launcher run, `spec_sender` the spec on
//! its pipe, `build_cgroup` the cgroup handed over meanwhile, `reports` what comes back,
//! `reaping` the helper's end.
mod build_cgroup;
mod cpu_split;
mod early;
mod reaping;
mod reports;
mod spec_sender;
mod start;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::archive::manifest::Manifest;
use crate::errors::Chain;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::error::{Layer, SandboxError};
use crate::sandbox::keep_failed::FailedTrees;
use crate::sandbox::message::{read_messages, TreeHandover};
use crate::sandbox::profile::CgroupPolicy;
use crate::sandbox::source::{stream_source, SourceError, PIPE_BUFFER_BYTES};
use crate::sandbox::spec::{RootSpec, SandboxSpec};

pub use early::EarlyHelper;
pub use hermetic_contract::report::AppliedLayers;

use build_cgroup::{build_cgroup, hand_over};
use reports::Reported;
use start::Started;

/// How the build ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum BuildStatus {
    Exited(i32),
    Signaled(i32),
    TimedOut,
}

impl BuildStatus {
    /// The shell convention: the exit code, or 128 + signal; 124 for a timeout (as timeout(1)).
    pub fn shell_code(self) -> i32 {
        match self {
            BuildStatus::Exited(code) => code,
            BuildStatus::Signaled(signal) => 128 + signal,
            BuildStatus::TimedOut => 124,
        }
    }

    pub fn success(self) -> bool {
        self == BuildStatus::Exited(0)
    }
}

/// The archived outputs, as the sandbox's init reported them.
#[derive(Clone, Debug, Serialize)]
pub struct PackedOutputs {
    pub manifest: Manifest,
    pub sha256: String,
    pub blake3: String,
    pub size: u64,
}

/// What a caller needs to know about one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub status: BuildStatus,
    pub duration: Duration,
    /// Time from launch until the build's command was exec'd.
    pub setup: Option<Duration>,
    /// The build could not be exec'd: (program, errno).
    pub exec_failure: Option<(String, i32)>,
    /// Sockets and fifos of the source, left out of the build dir (relative paths).
    pub source_left_out: Vec<PathBuf>,
    pub layers: AppliedLayers,
    pub outputs: Option<Result<PackedOutputs, String>>,
}

/// One sandboxed run.
pub struct Launch<'a> {
    pub spec: &'a SandboxSpec,
    pub cgroup_policy: CgroupPolicy,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Where the archived outputs go, when the spec asks for outputs.
    pub artifact: Option<File>,
    /// Lets another thread kill this sandbox (the daemon's cancel).
    pub cancel: Option<&'a Cancel>,
    /// When the build's command fails, its whole build dir goes here, under this name
    /// (the daemon's `keep_failed`).
    pub keep_failed: Option<(&'a FailedTrees, &'static str)>,
    /// A helper already started with `stdout` and `stderr`, waiting for this spec. It
    /// takes neither an artifact nor a failed tree.
    pub early: Option<EarlyHelper>,
}

pub fn run(launch: Launch<'_>) -> Result<RunOutcome, SandboxError> {
    let mut started = Instant::now();
    let protocol =
        |step: &'static str| move |source: std::io::Error| SandboxError::Protocol { step, source };
    // A failed tree to keep: this launch's spec asks init for it, and init gets a file.
    let (asks_for_failed_tree, failed_tree) = match launch.keep_failed {
        None => (None, None),
        Some(_) => (
            Some(SandboxSpec {
                keep_failed_tree: true,
                ..launch.spec.clone()
            }),
            Some(
                FailedTrees::file()
                    .map_err(protocol("create the file for a failed build's tree"))?,
            ),
        ),
    };
    let spec = asks_for_failed_tree.as_ref().unwrap_or(launch.spec);

    let reverse_source = spec.variation.reverse_source_order;
    let launch_started_helper_now = launch.early.is_none();
    let started_helper = match launch.early {
        Some(early) => {
            if launch.artifact.is_some() || failed_tree.is_some() {
                return Err(SandboxError::Protocol {
                    step: "hand the spec to the helper started early",
                    source: std::io::Error::other(
                        "it has no place for an artifact or a failed tree",
                    ),
                });
            }
            started = early.started;
            early::hand_over_spec(early, spec)?
        }
        None => start::start_with_spec(spec, &launch, failed_tree.as_ref())?,
    };
    // From here until the reports are read, every way out is an error, on which `helper`
    // (a guard) kills and reaps the helper.
    let Started {
        helper,
        message_read,
        provision,
        source_to_stream,
        mut source_left_out,
    } = started_helper;
    if let Some(cancel) = launch.cancel {
        // Before the helper can be reaped, so the pidfd names this helper and no other.
        let pidfd = crate::sys::process::pidfd_open(helper.pid()).map_err(|source| {
            SandboxError::Protocol {
                step: "open a pidfd for the helper (to cancel it)",
                source,
            }
        })?;
        cancel.register(pidfd);
    }
    drop((launch.stdout, launch.stderr, launch.artifact));
    let source_sender = source_to_stream
        .map(|(dir, write)| {
            crate::background::spawn("hermetic-source", move || {
                stream_source(
                    &dir,
                    reverse_source,
                    std::io::BufWriter::with_capacity(PIPE_BUFFER_BYTES, write),
                )
            })
        })
        .transpose()
        .map_err(|source| SandboxError::Protocol {
            step: "start the thread that sends the source",
            source,
        })?;

    tracing::debug!(elapsed = ?started.elapsed(), "helper started and spec sent");
    // A new child often lands on this CPU's run queue (always, with one CPU), where it
    // would wait for the cgroup's creation below; the helper's path is the one the build
    // waits for, and the cgroup is needed only once the root filesystem is built. (A
    // helper started early runs elsewhere already, see `CpuSplit`.)
    if launch_started_helper_now {
        std::thread::yield_now();
    }

    // A rootfs or image root: its tree goes to init first (`message::TreeHandover`), as a
    // detached mount where this process can clone one.
    if let RootSpec::Rootfs { dir } | RootSpec::Image { dir } = &spec.root {
        let tree = crate::sys::mount::clone_tree(dir).ok();
        TreeHandover::send(&provision, tree.as_ref())
            .map_err(protocol("hand the root tree to the sandbox"))?;
    }

    // Only the build child joins the cgroup, and it needs it only once the namespaces and
    // the root filesystem are ready: made here meanwhile, on another CPU where there is
    // one, and handed over.
    let cgroup = build_cgroup(spec, launch.cgroup_policy)?;
    hand_over(cgroup.as_ref(), &provision)?;
    let cgroup_report = cgroup.as_ref().map(|cgroup| cgroup.report.clone());
    drop(provision);
    tracing::debug!(elapsed = ?started.elapsed(), "cgroup handed over");

    let mut outcome = Reported::default();
    let read_result = read_messages(File::from(message_read), |message| outcome.absorb(message));
    // Once init has finished, the build cgroup is empty and nothing is left to wait for but
    // init and the helper tearing down the namespaces (about a millisecond): the caller gets
    // the outcome now, and the helper is reaped later (`reap_in_background`), inside the
    // daemon with the cgroup's removal. Otherwise (setup failed, timeout, cancel) the
    // helper's end is part of the story.
    let helper_status = if matches!(read_result, Ok(true)) {
        helper.reap_in_background(cgroup);
        None
    } else {
        let status = helper.wait().map_err(protocol("wait for the helper"))?;
        drop(cgroup);
        Some(status)
    };
    tracing::debug!(elapsed = ?started.elapsed(), "init finished");
    read_result.map_err(protocol("read the helper's reports"))?;
    if let (Some((trees, name)), Some(file), Some(packed)) =
        (launch.keep_failed, failed_tree, outcome.failed_tree.take())
    {
        trees.add(name, file, packed);
    }
    // A source the launcher could not send explains why the sandbox stopped.
    match source_sender.map(crate::background::Background::join) {
        Some(Some(Err(err))) if !matches!(err, SourceError::Send(_)) => {
            return Err(source_failed(err))
        }
        Some(Some(Ok(left_out))) => source_left_out = left_out,
        _ => {}
    }

    if let Some((layer, message)) = outcome.setup_failure.take() {
        return Err(SandboxError::Setup { layer, message });
    }
    let status = if outcome.timed_out {
        BuildStatus::TimedOut
    } else {
        match outcome.exited {
            Some((Some(code), _)) => BuildStatus::Exited(code),
            Some((None, Some(signal))) => BuildStatus::Signaled(signal),
            _ => {
                return Err(SandboxError::HelperDied {
                    status: helper_status
                        .unwrap_or_else(|| "init finished without reporting an exit".into()),
                })
            }
        }
    };
    let layers = outcome.applied_layers(cgroup_report);
    Ok(RunOutcome {
        status,
        duration: started.elapsed(),
        setup: outcome.started_at.map(|at| at.duration_since(started)),
        exec_failure: outcome.exec_failure,
        source_left_out,
        layers,
        outputs: outcome.outputs,
    })
}

fn source_failed(err: SourceError) -> SandboxError {
    SandboxError::Setup {
        layer: Layer::Filesystem,
        message: format!("filesystem: copy the source: {}", Chain(&err)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The default profile's plan for `true`: a spec for tests to vary.
    pub(crate) fn default_spec() -> SandboxSpec {
        let profile = crate::sandbox::profile::load("default").unwrap();
        let command = vec!["true".to_string()];
        let request = crate::sandbox::plan::Request {
            command: &command,
            source: None,
            outputs: None,
            source_date_epoch: Some(0),
            image: None,
        };
        crate::sandbox::plan::plan(&profile, &request).unwrap().spec
    }

    #[test]
    fn asking_for_a_failed_tree_leaves_the_planned_spec_json_as_it_was() {
        // Dual builds seed their variation from the planned spec's JSON: keep_failed must
        // not change how a build varies.
        let spec = default_spec();
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("keep_failed_tree").is_none(), "{json}");
        let asked = SandboxSpec {
            keep_failed_tree: true,
            ..spec
        };
        let json = serde_json::to_string(&asked).unwrap();
        let read: SandboxSpec = serde_json::from_str(&json).unwrap();
        assert!(read.keep_failed_tree);
    }
}
