//! The launcher side: creates the build's cgroup, starts the helper with the spec, relays
//! what the helper reports, and cleans up. This is the only part of the engine a caller
//! (the CLI, later the daemon) touches.
use std::fs::File;
use std::io::Write;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::Serialize;

use crate::archive::manifest::Manifest;
use crate::errors::Chain;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::cgroup::{BuildCgroup, CgroupLimits};
use crate::sandbox::error::{Layer, SandboxError};
use crate::sandbox::helper::HELPER_ARG;
use crate::sandbox::keep_failed::{FailedTrees, PackedTree};
use crate::sandbox::message::{
    pipe_capacity, read_messages, HelperMessage, Provision, ARTIFACT_FD, FAILED_TREE_FD,
    MESSAGE_FD, PROVISION_FD, SOURCE_FD, SPEC_FD,
};
use crate::sandbox::profile::CgroupPolicy;
use crate::sandbox::source::{send_if_it_fits, stream_source, SourceError, PIPE_BUFFER_BYTES};
use crate::sandbox::spec::SandboxSpec;
use crate::sys::process::{fork_with_fds, raw, spawn_with_fds, Forked};

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
    pub layers: AppliedLayers,
    pub outputs: Option<Result<PackedOutputs, String>>,
}

pub use hermetic_contract::report::AppliedLayers;

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

/// A helper forked before its launcher has a spec: it creates the sandbox's namespaces
/// (0.6-0.9 ms here) while the launcher loads the profile and plans (about 0.4 ms of the
/// CLI's), then waits on its pipe for the spec. [`run`] hands it the spec and the source.
/// Dropped unused (the profile did not load, say), it is killed and reaped.
pub struct EarlyHelper {
    helper: WaitingHelper,
    started: Instant,
    spec_pipe: File,
    message_read: OwnedFd,
    provision: OwnedFd,
    source_pipe: File,
}

impl EarlyHelper {
    /// Forks a helper with `stdout` and `stderr` as the build's streams, when this process
    /// can fork one (single-threaded, no zygote: the CLI); None otherwise, and the launch
    /// starts its helper itself.
    pub fn start(stdout: &OwnedFd, stderr: &OwnedFd) -> Result<Option<EarlyHelper>, SandboxError> {
        if crate::sandbox::zygote::running().is_some() {
            return Ok(None);
        }
        let started = Instant::now();
        let channels = Channels::open()?;
        let (source_read, source_write) = pipe().map_err(|source| SandboxError::Protocol {
            step: "create the source pipe",
            source,
        })?;
        let mut fds = channels.helper_fds(stdout, stderr);
        fds.push((raw(&source_read), SOURCE_FD));
        fds.push((raw(&channels.null), FAILED_TREE_FD));
        // The launcher's planning and the helper's setup are the whole run's path; a short
        // slice keeps them from waiting out a kernel worker's (the previous sandbox's
        // teardown) on a busy CPU. A hint: a kernel without custom slices ignores it, and
        // the build child gives its own back (init.rs).
        let _ = crate::sys::process::set_scheduler_slice(Some(LAUNCH_SLICE));
        let split = CpuSplit::pin_here();
        let forked = fork_with_fds(&fds);
        if let Ok(Some(Forked::Child)) = forked {
            if let Some(split) = &split {
                split.release_child();
            }
            crate::sys::process::exit_now(crate::sandbox::helper::helper_main(
                crate::sandbox::helper::Start::ForkedEarly,
            ))
        }
        if let Some(split) = split {
            split.move_launcher();
        }
        match forked.map_err(|source| SandboxError::SpawnHelper {
            program: "/proc/self/exe".into(),
            source,
        })? {
            Some(Forked::Parent { child }) => {
                let (spec_pipe, message_read, provision) = channels.launcher_ends();
                Ok(Some(EarlyHelper {
                    helper: WaitingHelper(child),
                    started,
                    spec_pipe,
                    message_read,
                    provision,
                    source_pipe: File::from(source_write),
                }))
            }
            // No fork: this process runs threads.
            _ => Ok(None),
        }
    }
}

/// The scheduler slice of a launcher that starts its helper early, and of the helper and
/// init (see `sys::process::set_scheduler_slice`): the shortest the kernel takes.
const LAUNCH_SLICE: Duration = Duration::from_micros(100);

/// A helper waiting for a spec that nobody will send unless [`hand_over_spec`] takes it
/// over: killed and reaped when dropped.
struct WaitingHelper(Pid);

impl WaitingHelper {
    fn take_over(self) -> Pid {
        let helper = self.0;
        std::mem::forget(self);
        helper
    }
}

impl Drop for WaitingHelper {
    fn drop(&mut self) {
        stop_helper(self.0);
    }
}

/// Where the launcher and its early helper run. A forked child is often queued on its
/// parent's CPU even with another one idle, and then waits for the launcher's planning
/// instead of running beside it (the point of starting it early): in about half the runs
/// here. So the helper is born pinned to the launcher's CPU, warm and about to be free, and
/// the launcher moves to another one, whose wake-up its own slack absorbs; both then take
/// their CPU set back.
struct CpuSplit {
    inherited: nix::sched::CpuSet,
    elsewhere: nix::sched::CpuSet,
}

impl CpuSplit {
    /// Pins the launcher to the CPU it runs on, so that the child it forks next starts
    /// there; None (and nothing changed) when it may use only one CPU.
    fn pin_here() -> Option<CpuSplit> {
        use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
        let this_process = Pid::from_raw(0);
        let inherited = sched_getaffinity(this_process).ok()?;
        let here = sched_getcpu().ok()?;
        let mut elsewhere = inherited;
        elsewhere.unset(here).ok()?;
        if !(0..CpuSet::count()).any(|cpu| elsewhere.is_set(cpu) == Ok(true)) {
            return None;
        }
        let mut pinned = CpuSet::new();
        pinned.set(here).ok()?;
        sched_setaffinity(this_process, &pinned).ok()?;
        Some(CpuSplit {
            inherited,
            elsewhere,
        })
    }

    /// In the forked child: its CPU set back.
    fn release_child(&self) {
        let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &self.inherited);
    }

    /// In the launcher: onto another CPU, then its CPU set back (where it stays).
    fn move_launcher(self) {
        let this_process = Pid::from_raw(0);
        let _ = nix::sched::sched_setaffinity(this_process, &self.elsewhere);
        let _ = nix::sched::sched_setaffinity(this_process, &self.inherited);
    }
}

/// The pipes and socket between a launcher and its helper, with the helper's /dev/null.
struct Channels {
    null: File,
    spec_read: OwnedFd,
    spec_write: OwnedFd,
    message_read: OwnedFd,
    message_write: OwnedFd,
    provision: OwnedFd,
    provision_for_build: OwnedFd,
}

impl Channels {
    fn open() -> Result<Channels, SandboxError> {
        let protocol = |step: &'static str| {
            move |source: std::io::Error| SandboxError::Protocol { step, source }
        };
        let (spec_read, spec_write) = pipe().map_err(protocol("create the spec pipe"))?;
        let (message_read, message_write) = pipe().map_err(protocol("create the message pipe"))?;
        let (provision, provision_for_build) =
            Provision::socket().map_err(protocol("create the provision socket"))?;
        let null = File::open("/dev/null").map_err(protocol("open /dev/null for the helper"))?;
        Ok(Channels {
            null,
            spec_read,
            spec_write,
            message_read,
            message_write,
            provision,
            provision_for_build,
        })
    }

    /// The helper's descriptor table every helper gets (source → target): stdio with
    /// `stdout` and `stderr` for the build, the spec, the reports, the provision socket.
    fn helper_fds(&self, stdout: &OwnedFd, stderr: &OwnedFd) -> Vec<(RawFd, RawFd)> {
        vec![
            (raw(&self.null), 0),
            (raw(stdout), 1),
            (raw(stderr), 2),
            (raw(&self.spec_read), SPEC_FD),
            (raw(&self.message_write), MESSAGE_FD),
            (raw(&self.provision_for_build), PROVISION_FD),
        ]
    }

    /// Once a forked helper has its copies: the launcher's ends (spec, reports,
    /// provision); the helper's ends are closed here.
    fn launcher_ends(self) -> (File, OwnedFd, OwnedFd) {
        (
            File::from(self.spec_write),
            self.message_read,
            self.provision,
        )
    }
}

/// A started helper, as `run` goes on with it.
struct Started {
    helper: Pid,
    message_read: OwnedFd,
    provision: OwnedFd,
    /// A source too large for its pipe, still to be sent (by a thread).
    source_to_stream: Option<(PathBuf, File)>,
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

fn launcher_started_ns() -> u128 {
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos())
    })
}

pub const NAMESPACES: [&str; 8] = [
    "user", "mount", "pid", "net", "uts", "ipc", "cgroup", "time",
];

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
    let mut layers = AppliedLayers {
        namespaces: NAMESPACES.iter().map(|name| name.to_string()).collect(),
        seccomp_policy: spec.seccomp.name.clone(),
        seccomp_sha256: spec.seccomp.sha256.clone(),
        no_new_privs: true,
        capabilities: "none".into(),
        ..AppliedLayers::default()
    };

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
            hand_over_spec(early, spec)?
        }
        None => start_with_spec(spec, &launch, failed_tree.as_ref())?,
    };
    let Started {
        helper,
        message_read,
        provision,
        source_to_stream,
    } = started_helper;
    if let Some(cancel) = launch.cancel {
        // Before the helper can be reaped, so the pidfd names this helper and no other.
        match crate::sys::process::pidfd_open(helper) {
            Ok(pidfd) => cancel.register(pidfd),
            Err(source) => {
                stop_helper(helper);
                return Err(SandboxError::Protocol {
                    step: "open a pidfd for the helper (to cancel it)",
                    source,
                });
            }
        }
    }
    drop((launch.stdout, launch.stderr, launch.artifact));
    let source_sender = source_to_stream.map(|(dir, write)| {
        crate::background::spawn("hermetic-source", move || {
            stream_source(
                &dir,
                reverse_source,
                std::io::BufWriter::with_capacity(PIPE_BUFFER_BYTES, write),
            )
        })
    });
    let source_sender = match source_sender.transpose() {
        Ok(sender) => sender,
        Err(source) => {
            stop_helper(helper);
            return Err(SandboxError::Protocol {
                step: "start the thread that sends the source",
                source,
            });
        }
    };

    tracing::debug!(elapsed = ?started.elapsed(), "helper started and spec sent");
    // A new child often lands on this CPU's run queue (always, with one CPU), where it
    // would wait for the cgroup's creation below; the helper's path is the one the build
    // waits for, and the cgroup is needed only once the root filesystem is built. (A
    // helper started early runs elsewhere already, see `CpuSplit`.)
    if launch_started_helper_now {
        std::thread::yield_now();
    }

    // Only the build child joins the cgroup, and it needs it only once the namespaces and
    // the root filesystem are ready: made here meanwhile, on another CPU where there is
    // one, and handed over.
    let cgroup = build_cgroup(spec, launch.cgroup_policy).and_then(|cgroup| {
        hand_over(cgroup.as_ref(), &provision)?;
        Ok(cgroup)
    });
    let cgroup = match cgroup {
        Ok(cgroup) => cgroup,
        Err(err) => {
            stop_helper(helper);
            return Err(err);
        }
    };
    layers.cgroup = cgroup.as_ref().map(|c| c.report.clone());
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
        reap_in_background(helper, cgroup);
        None
    } else {
        let status = wait_for(helper).map_err(protocol("wait for the helper"))?;
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
    if let Some(Some(Err(err))) = source_sender.map(crate::background::Background::join) {
        if !matches!(err, SourceError::Send(_)) {
            return Err(source_failed(err));
        }
    }

    if let Some((layer, message)) = outcome.setup_failure {
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
    layers.landlock_abi = outcome.landlock_abi;
    layers.kernel_landlock_abi = outcome.kernel_landlock_abi;
    Ok(RunOutcome {
        status,
        duration: started.elapsed(),
        setup: outcome.started_at.map(|at| at.duration_since(started)),
        exec_failure: outcome.exec_failure,
        layers,
        outputs: outcome.outputs,
    })
}

#[derive(Default)]
struct Reported {
    setup_failure: Option<(Layer, String)>,
    exited: Option<(Option<i32>, Option<i32>)>,
    timed_out: bool,
    exec_failure: Option<(String, i32)>,
    landlock_abi: u8,
    kernel_landlock_abi: u8,
    /// When the build child reported that it is about to exec.
    started_at: Option<Instant>,
    outputs: Option<Result<PackedOutputs, String>>,
    /// The failed build's dir, archived, or why it is not.
    failed_tree: Option<Result<PackedTree, String>>,
}

impl Reported {
    fn absorb(&mut self, message: HelperMessage) {
        match message {
            HelperMessage::SetupFailed { layer, message } => {
                self.setup_failure.get_or_insert((layer, message));
            }
            HelperMessage::Started {
                landlock_abi,
                kernel_landlock_abi,
            } => {
                self.landlock_abi = landlock_abi;
                self.kernel_landlock_abi = kernel_landlock_abi;
                self.started_at = Some(Instant::now());
            }
            HelperMessage::ExecFailed { program, errno } => {
                self.exec_failure = Some((program, errno))
            }
            HelperMessage::Exited { code, signal } => self.exited = Some((code, signal)),
            HelperMessage::TimedOut { .. } => self.timed_out = true,
            HelperMessage::Packed {
                manifest,
                sha256,
                blake3,
                size,
            } => {
                self.outputs = Some(Ok(PackedOutputs {
                    manifest,
                    sha256,
                    blake3,
                    size,
                }))
            }
            HelperMessage::PackFailed { message } => self.outputs = Some(Err(message)),
            HelperMessage::FailedTreePacked { manifest, left_out } => {
                self.failed_tree = Some(Ok(PackedTree { manifest, left_out }))
            }
            HelperMessage::FailedTreePackFailed { message } => {
                self.failed_tree = Some(Err(message))
            }
            HelperMessage::Finished => {}
        }
    }
}

fn source_failed(err: SourceError) -> SandboxError {
    SandboxError::Setup {
        layer: Layer::Filesystem,
        message: format!("filesystem: copy the source: {}", Chain(&err)),
    }
}

/// Starts a helper for `spec` now, with the launch's streams and files.
fn start_with_spec(
    spec: &SandboxSpec,
    launch: &Launch<'_>,
    failed_tree: Option<&File>,
) -> Result<Started, SandboxError> {
    let channels = Channels::open()?;
    let mut fds = channels.helper_fds(&launch.stdout, &launch.stderr);
    if let Some(artifact) = &launch.artifact {
        fds.push((raw(artifact), ARTIFACT_FD));
    }
    fds.push((raw(failed_tree.unwrap_or(&channels.null)), FAILED_TREE_FD));
    // The source is read here, with the caller's privileges, and sent to the sandbox's
    // init (see source.rs): all of it now when it fits the pipe, else by a thread while
    // init unpacks it.
    let mut source_to_stream = None;
    let source_read = match &spec.source {
        Some(dir) => {
            let (read, write) = pipe().map_err(|source| SandboxError::Protocol {
                step: "create the source pipe",
                source,
            })?;
            let write = File::from(write);
            if !send_if_it_fits(dir, spec.variation.reverse_source_order, &write)
                .map_err(source_failed)?
            {
                source_to_stream = Some((dir.clone(), write));
            }
            fds.push((raw(&read), SOURCE_FD));
            Some(read)
        }
        None => None,
    };
    let Channels {
        spec_write,
        message_read,
        provision,
        ..
    } = channels;
    let helper = start_helper(&fds, spec, File::from(spec_write))?;
    // The helper's ends, which it has copies of now.
    drop((channels.null, channels.spec_read, channels.message_write));
    drop((channels.provision_for_build, source_read));
    Ok(Started {
        helper,
        message_read,
        provision,
        source_to_stream,
    })
}

/// Sends a helper started early its spec, then the source.
fn hand_over_spec(early: EarlyHelper, spec: &SandboxSpec) -> Result<Started, SandboxError> {
    let EarlyHelper {
        helper,
        spec_pipe,
        message_read,
        provision,
        source_pipe,
        ..
    } = early;
    SpecSender::start(spec, spec_pipe)?.finish();
    let all_sent = match &spec.source {
        Some(dir) => send_if_it_fits(dir, spec.variation.reverse_source_order, &source_pipe)
            .map_err(source_failed)?,
        None => true,
    };
    Ok(Started {
        helper: helper.take_over(),
        message_read,
        provision,
        source_to_stream: match &spec.source {
            Some(dir) if !all_sent => Some((dir.clone(), source_pipe)),
            _ => None,
        },
    })
}

/// Starts the helper with `fds` (source → target) in place, as a child of this process:
/// through the daemon's zygote when there is one; else by forking this process when it is
/// single-threaded (the CLI), which saves an exec and the spec's encoding (the child has it
/// in memory); else by exec'ing this binary again. A helper that is not forked from here
/// reads the spec from `spec_pipe`.
fn start_helper(
    fds: &[(RawFd, RawFd)],
    spec: &SandboxSpec,
    spec_pipe: File,
) -> Result<Pid, SandboxError> {
    let spawn_failed = |source| SandboxError::SpawnHelper {
        program: "/proc/self/exe".into(),
        source,
    };
    let zygote = crate::sandbox::zygote::running();
    if zygote.is_none() {
        match fork_with_fds(fds).map_err(spawn_failed)? {
            Some(Forked::Child) => {
                crate::sys::process::exit_now(crate::sandbox::helper::helper_main(
                    crate::sandbox::helper::Start::ForkedWith(spec),
                ))
            }
            Some(Forked::Parent { child }) => return Ok(child),
            None => {}
        }
    }
    let spec_sender = SpecSender::start(spec, spec_pipe)?;
    if let Some(zygote) = zygote {
        match zygote.start_helper(fds) {
            Ok(helper) => {
                spec_sender.finish();
                return Ok(helper);
            }
            // The zygote answered: its fork failed, as any other would (a pids limit).
            Err(err) if crate::sandbox::zygote::running().is_some() => {
                return Err(spawn_failed(err))
            }
            Err(err) => {
                tracing::warn!(
                    "the sandbox zygote failed, exec'ing helpers from now on: {}",
                    Chain(&err)
                )
            }
        }
    }
    let mut command = Command::new("/proc/self/exe");
    command.arg(HELPER_ARG).env_clear();
    let helper = spawn_with_fds(&mut command, fds).map_err(spawn_failed)?;
    spec_sender.finish();
    Ok(Pid::from_raw(helper.id() as i32))
}

/// The spec for a helper that reads it from its pipe: written before the helper starts
/// when the pipe holds it all, so that the helper finds it waiting instead of waiting for
/// the launcher's reply from the zygote and the encoding; otherwise written after.
struct SpecSender {
    pipe: File,
    unsent: Option<Vec<u8>>,
}

impl SpecSender {
    fn start(spec: &SandboxSpec, mut pipe: File) -> Result<SpecSender, SandboxError> {
        let json = serde_json::to_vec(spec).map_err(|err| SandboxError::Protocol {
            step: "encode the spec",
            source: std::io::Error::other(err),
        })?;
        let fits = pipe_capacity(&pipe).is_some_and(|capacity| json.len() <= capacity);
        if !fits {
            return Ok(SpecSender {
                pipe,
                unsent: Some(json),
            });
        }
        pipe.write_all(&json)
            .map_err(|source| SandboxError::Protocol {
                step: "send the spec",
                source,
            })?;
        Ok(SpecSender { pipe, unsent: None })
    }

    /// Sends what did not fit, now that a helper reads; then closes the pipe.
    fn finish(mut self) {
        if let Some(json) = self.unsent.take() {
            // A helper that failed early closes its end; its report explains why.
            let _ = self.pipe.write_all(&json);
        }
    }
}

/// The build's cgroup, or none when the profile allows that and the host has none.
fn build_cgroup(
    spec: &SandboxSpec,
    policy: CgroupPolicy,
) -> Result<Option<BuildCgroup>, SandboxError> {
    // The launcher's start time tells apart two launchers that got the same pid.
    let name = format!(
        "hermetic-{}-{:x}-{}",
        std::process::id(),
        launcher_started_ns(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let limits = CgroupLimits {
        pids: spec.limits.pids,
        memory_bytes: spec.limits.memory_bytes,
        cpus: spec.cpu_set.len(),
    };
    match BuildCgroup::create(&name, limits) {
        Ok(cgroup) => Ok(Some(cgroup)),
        Err(err) if policy == CgroupPolicy::Optional => {
            tracing::warn!("running without cgroup limits: {}", Chain(&err));
            Ok(None)
        }
        Err(err) => Err(SandboxError::setup(&err)),
    }
}

/// Sends the build child its cgroup's join files (none without a cgroup).
fn hand_over(cgroup: Option<&BuildCgroup>, provision: &OwnedFd) -> Result<(), SandboxError> {
    let files = match cgroup {
        Some(cgroup) => cgroup
            .open_join_files()
            .map_err(|err| SandboxError::setup(&err))?,
        None => Vec::new(),
    };
    // A sandbox that failed already has closed its end; its report explains why.
    let _ = Provision { cgroup: files }.send(provision);
    Ok(())
}

/// Kills a helper that will not be needed (its init dies with it) and reaps it.
fn stop_helper(helper: Pid) {
    let _ = kill(helper, Signal::SIGKILL);
    let _ = wait_for(helper);
}

/// Reaps a helper that is exiting, and removes its build's (empty) cgroup, without making
/// the caller wait for either. Inside the daemon, a thread of its blocking pool does both:
/// the job's end reaches its client without waiting for a cgroup's rmdir on every
/// hierarchy. A process without a runtime (the CLI, which exits right after) removes the
/// cgroup now and starts no thread for the helper, which cost 0.1-0.2 ms of every
/// `hermetic run`: the helper is reaped by the next launch in the process if it has exited
/// by then, else inherited by init (or the nearest subreaper) when the process exits, as
/// any orphan is.
fn reap_in_background(helper: Pid, cgroup: Option<BuildCgroup>) {
    if !crate::background::in_runtime() {
        drop(cgroup);
        static EXITING_HELPERS: std::sync::Mutex<Vec<Pid>> = std::sync::Mutex::new(Vec::new());
        let mut exiting = EXITING_HELPERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        exiting.retain(|&pid| {
            matches!(
                waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
        exiting.push(helper);
        return;
    }
    let reaper = crate::background::spawn("hermetic-reap", move || {
        drop(cgroup);
        wait_for(helper)
    });
    if reaper.is_err() {
        // No thread to spare (the work, cgroup included, was dropped, which removed it):
        // wait here rather than leave a zombie behind.
        let _ = wait_for(helper);
    }
}

/// Reaps the helper; describes how it ended.
fn wait_for(helper: Pid) -> std::io::Result<String> {
    let status = loop {
        match waitpid(helper, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    Ok(match status {
        WaitStatus::Exited(_, code) => format!("exit status: {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        other => format!("{other:?}"),
    })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn default_spec() -> SandboxSpec {
        let profile = crate::sandbox::profile::load("default").unwrap();
        let command = vec!["true".to_string()];
        let request = crate::sandbox::plan::Request {
            command: &command,
            source: None,
            outputs: None,
            source_date_epoch: Some(0),
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

    /// A spec the pipe cannot hold is not written ahead (that would block before any
    /// helper reads), and arrives whole once a reader is there.
    #[test]
    fn a_spec_larger_than_the_pipe_is_sent_once_the_helper_reads() {
        let mut spec = default_spec();
        spec.command.push("x".repeat(8192));
        let json = serde_json::to_vec(&spec).unwrap();
        let (read_end, write_end) = pipe().unwrap();
        let capacity =
            nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
        assert!(json.len() > capacity as usize, "{} bytes", json.len());

        let sender = SpecSender::start(&spec, File::from(write_end)).unwrap();
        assert!(sender.unsent.is_some());
        let reader = std::thread::spawn(move || {
            let mut received = Vec::new();
            File::from(read_end).read_to_end(&mut received).unwrap();
            received
        });
        sender.finish();
        assert_eq!(reader.join().unwrap(), json);
    }

    /// One that fits is waiting in the pipe before the helper starts.
    #[test]
    fn a_spec_the_pipe_holds_is_written_before_the_helper_starts() {
        let spec = default_spec();
        let (read_end, write_end) = pipe().unwrap();
        let sender = SpecSender::start(&spec, File::from(write_end)).unwrap();
        assert!(sender.unsent.is_none());
        sender.finish();
        let mut received = Vec::new();
        File::from(read_end).read_to_end(&mut received).unwrap();
        assert_eq!(received, serde_json::to_vec(&spec).unwrap());
    }
}
