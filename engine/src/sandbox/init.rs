//! Pid 1 of the sandbox, and the build child it starts. This is the one place where the
//! order of the child-side steps lives:
//!
//! init (keeps its capabilities inside the user namespace; never runs build code):
//!   1. die with the helper, fixed umask
//!   2. filesystem (mount.rs), loopback up, hostname
//!   3. start the build child (in init's memory until it execs, as posix_spawn does), reap
//!      every process until the build's main process exits (or, when a failed tree is to
//!      be kept, until the timeout)
//!   4. kill whatever the build left behind (kill(-1) as pid 1 reaches the whole namespace)
//!   5. archive the outputs from the now quiet build dir (or, when the build failed and
//!      the launcher asked for it, the whole build dir), report, say it finished, let
//!      the launcher run, exit
//!
//! build child (pid 2):
//!   takes the build cgroup from the launcher (made while the sandbox was being built),
//!   joins it and creates the cgroup namespace (only the build is counted and limited, and
//!   the cgroup is empty once init has reaped the build), default signal dispositions and
//!   an empty signal mask, new session (no controlling tty: TIOCSTI has nothing to inject
//!   into), the kernel's default scheduler slice, umask, CPU set, rlimits, capabilities
//!   dropped (bounding and ambient sets too), no_new_privs, Landlock, seccomp last (it
//!   would forbid the earlier steps), every fd but 0-2 close-on-exec, reports what is in
//!   force (with the helper's namespaces), exec.
use crate::errors::error_chain;
use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::archive::pack::{pack_outputs, PackOptions};
use crate::sandbox::error::{step, Layer, StepError};
use crate::sandbox::message::{
    take_fd, Confinement, HelperMessage, MessageSink, Namespace, TreeHandover, ARTIFACT_FD,
    FAILED_TREE_FD, PROVISION_FD, SOURCE_FD,
};
use crate::sandbox::spec::{RootSpec, SandboxSpec};
use crate::sys::process::{exit_now, spawn_borrowing_memory};

/// Whether every write end of the helper-alive pipe is closed: only the helper holds one.
fn helper_is_gone(helper_alive: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsFd;
    let mut poll = [nix::poll::PollFd::new(
        helper_alive.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    match nix::poll::poll(&mut poll, nix::poll::PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => poll[0]
            .revents()
            .is_some_and(|events| events.intersects(nix::poll::PollFlags::POLLHUP)),
        // Unknown: the parent-death signal is set, which covers a helper alive now.
        Err(_) => false,
    }
}

/// Exit statuses of the build child when it could not exec (docker/podman convention).
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;

/// Runs init in this process, a fork of the helper, which created `helper_namespaces`;
/// `helper_alive` is the read end of a pipe whose write end only the helper holds.
///
/// # Safety
///
/// The process must be single-threaded, with SOURCE_FD, ARTIFACT_FD, FAILED_TREE_FD and
/// PROVISION_FD placed by the launcher and owned by no object that is used or dropped
/// again.
pub(crate) unsafe fn run(
    spec: &SandboxSpec,
    helper_namespaces: &[Namespace],
    messages: &mut MessageSink,
    helper_alive: std::os::fd::OwnedFd,
) -> ! {
    // SAFETY: the same contract as this function's.
    let code = match unsafe { init_main(spec, helper_namespaces, messages, helper_alive) } {
        Ok(code) => code,
        Err(err) => {
            messages.setup_failed(&err);
            crate::sandbox::helper::SETUP_FAILED
        }
    };
    exit_now(code)
}

/// # Safety
///
/// As for [`run`].
unsafe fn init_main(
    spec: &SandboxSpec,
    helper_namespaces: &[Namespace],
    messages: &mut MessageSink,
    helper_alive: std::os::fd::OwnedFd,
) -> Result<i32, StepError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(step(
        Layer::Helper,
        "die with the helper",
        "prctl(PR_SET_PDEATHSIG)",
        None,
    ))?;
    // A helper killed between the fork and the line above (a cancel) sent no signal:
    // its end of the pipe is closed then, and init must not go on without it.
    if helper_is_gone(&helper_alive) {
        exit_now(crate::sandbox::helper::SETUP_FAILED);
    }
    drop(helper_alive);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let tree = match spec.root {
        RootSpec::Host { .. } => None,
        // SAFETY: the launcher placed PROVISION_FD and nothing owns it (this function's
        // contract); init only borrows it, the build child takes it.
        RootSpec::Rootfs { .. } | RootSpec::Image { .. } => unsafe { TreeHandover::receive()? },
    };
    crate::sandbox::mount::build_root(spec, tree)?;
    if let Some(count) = spec.variation.inode_offset {
        crate::sandbox::mount::use_up_inode_numbers(&spec.paths.build_dir, count)?;
        crate::sandbox::mount::use_up_inode_numbers(&spec.paths.tmp, count)?;
    }
    if spec.source.is_some() {
        // SAFETY: the launcher placed SOURCE_FD, and nothing else owns it (this
        // function's contract); it is taken here only.
        let source = unsafe { take_fd(SOURCE_FD) };
        crate::sandbox::source::unpack_source(
            std::io::BufReader::with_capacity(crate::sandbox::source::PIPE_BUFFER_BYTES, source),
            &spec.paths.build_dir,
        )?;
    }
    crate::sys::net::loopback_up().map_err(step(
        Layer::Network,
        "bring up loopback",
        "ioctl(SIOCSIFFLAGS)",
        None,
    ))?;
    nix::unistd::sethostname(&spec.identity.hostname).map_err(step(
        Layer::Pins,
        "pin the hostname",
        "sethostname",
        None,
    ))?;
    crate::sys::process::set_domainname(&spec.identity.domainname).map_err(step(
        Layer::Pins,
        "pin the domainname",
        "setdomainname",
        None,
    ))?;

    if let Some(last_pid) = spec.variation.pid_offset {
        std::fs::write("/proc/sys/kernel/ns_last_pid", last_pid.to_string()).map_err(step(
            Layer::Pins,
            "shift the build's pids",
            "write",
            std::path::PathBuf::from("/proc/sys/kernel/ns_last_pid"),
        ))?;
    }
    let stdio = StdioRelease::prepare()?;
    // A build whose tree is to be kept if it fails is timed here, not only by the helper
    // (which kills init and with it the tree): init stops the build itself and archives
    // the tree; the helper waits longer (`helper::FAILED_TREE_GRACE_MS`).
    if spec.keep_failed_tree {
        let seconds = spec
            .limits
            .timeout_ms
            .div_ceil(1000)
            .min(u64::from(u32::MAX)) as u32;
        crate::sys::process::arm_timeout_alarm(seconds).map_err(step(
            Layer::Limits,
            "time the build",
            "sigaction(SIGALRM)",
            None,
        ))?;
    }
    // The build child borrows init's memory until it execs (see spawn_borrowing_memory):
    // init is suspended meanwhile, and the child copies no page of it.
    // SAFETY: init is single-threaded (this function's contract). The child has its own
    // descriptor table, in which PROVISION_FD is open and owned by nothing: init, whose
    // memory it runs in, never takes that descriptor.
    let build =
        unsafe { spawn_borrowing_memory(|| build_child(spec, helper_namespaces, messages)) }
            .map_err(step(
                Layer::Helper,
                "start the build",
                "clone(CLONE_VM | CLONE_VFORK)",
                None,
            ))?;
    stdio.release()?;
    let status = reap_until(build);
    nix::unistd::alarm::cancel();
    // Orphans (daemonised helpers, `setsid -f sleep`) die here, before outputs are read,
    // so nothing can change the build dir while it is archived.
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while waitpid(Pid::from_raw(-1), None).is_ok() {}

    let (code, signal) = match status {
        Some(WaitStatus::Exited(_, code)) => (Some(code), None),
        Some(WaitStatus::Signaled(_, signal, _)) => (None, Some(signal as i32)),
        _ => (None, None),
    };
    if status.is_none() {
        messages.send(&HelperMessage::TimedOut {
            after_ms: spec.limits.timeout_ms,
        });
    } else {
        messages.send(&HelperMessage::Exited { code, signal });
    }
    if code != Some(0) {
        if spec.keep_failed_tree {
            // SAFETY: the launcher placed FAILED_TREE_FD and nothing owns it (this
            // function's contract); it is taken here only.
            let file = unsafe { take_fd(FAILED_TREE_FD) };
            messages.send(&pack_failed_tree(spec, file));
        }
    } else {
        if let Some(outputs) = &spec.outputs {
            // SAFETY: the launcher placed ARTIFACT_FD and nothing owns it (this
            // function's contract); it is taken here only.
            let artifact = unsafe { take_fd(ARTIFACT_FD) };
            let options = PackOptions {
                mtime: outputs.mtime,
                zstd_level: outputs.zstd_level,
            };
            match pack_outputs(
                &spec.paths.build_dir,
                &outputs.paths,
                &options,
                std::io::BufWriter::new(crate::sys::archive::WriteBehind::new(artifact)),
            ) {
                Ok(packed) => messages.send(&HelperMessage::Packed {
                    manifest: packed.manifest,
                    sha256: packed.sha256,
                    blake3: packed.blake3,
                    size: packed.size,
                }),
                Err(err) => messages.send(&HelperMessage::PackFailed {
                    message: error_chain(&err),
                }),
            }
        }
    }
    messages.send(&HelperMessage::Finished);
    // The pipe's wake-up is a "sync" one: the launcher waiting for this message is put on
    // this CPU, behind init, whose exit (the pid and mount namespaces torn down, an RCU
    // grace period waited for) then ran before it: 0.2-0.3 ms of every run's end.
    // Yielding lets the launcher report first; the teardown follows.
    std::thread::yield_now();
    Ok(0)
}

/// The whole build dir of a failed build, archived into `file` for the launcher to keep.
/// Fast compression: it is a copy to look at, not an artifact.
fn pack_failed_tree(spec: &SandboxSpec, file: File) -> HelperMessage {
    let options = PackOptions {
        mtime: spec.outputs.as_ref().map_or(0, |outputs| outputs.mtime),
        zstd_level: 1,
    };
    match crate::archive::pack::pack_whole_tree(
        &spec.paths.build_dir,
        &options,
        std::io::BufWriter::new(file),
    ) {
        Ok((packed, left_out)) => HelperMessage::FailedTreePacked {
            manifest: packed.manifest,
            left_out,
        },
        Err(err) => HelperMessage::FailedTreePackFailed {
            message: error_chain(&err),
        },
    }
}

/// Reaps every child (pid 1 inherits all orphans) until `main` exits; returns its status,
/// or None when the build's time is up (only timed here for a kept failed tree).
fn reap_until(main: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(status) if status.pid() == Some(main) => match status {
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => return Some(status),
                _ => continue,
            },
            Err(nix::errno::Errno::EINTR) if crate::sys::process::timeout_alarm_fired() => {
                return None
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Some(WaitStatus::StillAlive),
        }
    }
}

/// # Safety
///
/// Only in the build child, whose own descriptor table holds PROVISION_FD, owned by no
/// object.
unsafe fn build_child(
    spec: &SandboxSpec,
    helper_namespaces: &[Namespace],
    messages: &mut MessageSink,
) -> ! {
    // SAFETY: the same contract as this function's.
    match unsafe { confine_and_exec(spec, helper_namespaces, messages) } {
        Ok(never) => match never {},
        Err(ChildFailure::Setup(err)) => {
            messages.setup_failed(&err);
            exit_now(crate::sandbox::helper::SETUP_FAILED)
        }
        Err(ChildFailure::Exec { program, errno }) => {
            messages.send(&HelperMessage::ExecFailed {
                program,
                errno: errno as i32,
            });
            exit_now(if errno == nix::errno::Errno::ENOENT {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXECUTE
            })
        }
    }
}

enum ChildFailure {
    Setup(StepError),
    Exec {
        program: String,
        errno: nix::errno::Errno,
    },
}

impl From<StepError> for ChildFailure {
    fn from(err: StepError) -> Self {
        ChildFailure::Setup(err)
    }
}

/// # Safety
///
/// As for [`build_child`].
unsafe fn confine_and_exec(
    spec: &SandboxSpec,
    helper_namespaces: &[Namespace],
    messages: &mut MessageSink,
) -> Result<Infallible, ChildFailure> {
    use nix::sys::resource::{setrlimit, Resource};

    // SAFETY: PROVISION_FD is open in this child's descriptor table and owned by nothing
    // (this function's contract); it is taken here only.
    let provision = unsafe { take_fd(PROVISION_FD) };
    let mut namespaces = helper_namespaces.to_vec();
    namespaces.push(join_cgroup(crate::sandbox::message::Provision::receive(
        provision,
    )?)?);
    crate::sys::process::reset_signals().map_err(step(
        Layer::Pins,
        "reset signal dispositions and the signal mask",
        "rt_sigaction",
        None,
    ))?;
    nix::unistd::setsid().map_err(step(Layer::Pins, "start a new session", "setsid", None))?;
    crate::sys::process::set_scheduler_slice(None).map_err(step(
        Layer::Pins,
        "give back the default scheduler slice",
        "sched_setattr",
        None,
    ))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(spec.umask));
    let mut cpus = nix::sched::CpuSet::new();
    for &cpu in &spec.cpu_set {
        cpus.set(cpu)
            .map_err(step(Layer::Pins, "pin the CPU set", "CpuSet::set", None))?;
    }
    nix::sched::sched_setaffinity(Pid::from_raw(0), &cpus).map_err(step(
        Layer::Pins,
        "pin the CPU set",
        "sched_setaffinity",
        None,
    ))?;
    for (resource, value) in [
        (Resource::RLIMIT_NOFILE, spec.limits.nofile),
        (Resource::RLIMIT_CORE, 0),
    ] {
        setrlimit(resource, value, value).map_err(step(
            Layer::Limits,
            "set resource limits",
            "setrlimit",
            None,
        ))?;
    }

    let program = resolve_program(spec)?;
    let argv: Vec<CString> = spec
        .command
        .iter()
        .map(|arg| cstring(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = spec
        .env
        .iter()
        .map(|(name, value)| cstring(format!("{name}={value}").as_bytes()))
        .collect::<Result<_, _>>()?;

    let capabilities = drop_capabilities()?;
    nix::sys::prctl::set_no_new_privs().map_err(step(
        Layer::Capabilities,
        "set no_new_privs",
        "prctl(PR_SET_NO_NEW_PRIVS)",
        None,
    ))?;
    let no_new_privs = crate::sys::seccomp::no_new_privs().map_err(step(
        Layer::Capabilities,
        "check no_new_privs",
        "prctl(PR_GET_NO_NEW_PRIVS)",
        None,
    ))?;
    let landlock = crate::sandbox::landlock::restrict(spec)?;
    let kernel_landlock_abi = match landlock.landlock {
        landlock::LandlockStatus::Available { effective_abi, .. } => effective_abi as u8,
        _ => 0,
    };
    spec.seccomp.install().map_err(|err| {
        StepError::new(
            Layer::Seccomp,
            "install the filters",
            "seccomp",
            None,
            std::io::Error::other(crate::errors::error_chain(&err)),
        )
    })?;
    crate::sys::process::set_cloexec_from(3).map_err(step(
        Layer::Helper,
        "close inherited descriptors",
        "close_range(CLOEXEC)",
        None,
    ))?;
    messages.send(&HelperMessage::Started(Confinement {
        namespaces,
        capabilities,
        no_new_privs,
        landlock_abi: spec.landlock_abi,
        kernel_landlock_abi,
        seccomp_policy: spec.seccomp.name.clone(),
        seccomp_sha256: spec.seccomp.sha256.clone(),
    }));

    let errno = match nix::unistd::execve(&program, &argv, &envp) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    Err(ChildFailure::Exec {
        program: spec.command[0].clone(),
        errno,
    })
}

/// Writes this process (one thread: "0" through v1 `tasks` moves only the caller, which
/// spares the kernel's global threadgroup lock) into the build cgroup, through the files
/// the launcher opened (the kernel checks the opener's credentials, and this process has
/// none to spare), then makes that cgroup the root of a new cgroup namespace, so no host
/// cgroup path is visible. Returns that namespace.
fn join_cgroup(files: Vec<(PathBuf, File)>) -> Result<Namespace, StepError> {
    for (path, mut file) in files {
        file.write_all(b"0").map_err(step(
            Layer::Cgroup,
            "join the build cgroup",
            "write",
            path,
        ))?;
    }
    nix::sched::unshare(Namespace::Cgroup.clone_flag()).map_err(step(
        Layer::Namespaces,
        "create the cgroup namespace",
        "unshare(CLONE_NEWCGROUP)",
        None,
    ))?;
    Ok(Namespace::Cgroup)
}

/// /dev/null, opened before starting the child that takes the build's stdio on, and put in
/// place of this process's own stdio after it (see
/// [`crate::sys::process::release_stdio`]).
pub(crate) struct StdioRelease(File);

impl StdioRelease {
    pub(crate) fn prepare() -> Result<StdioRelease, StepError> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(StdioRelease)
            .map_err(step(
                Layer::Helper,
                "open /dev/null",
                "open",
                PathBuf::from("/dev/null"),
            ))
    }

    pub(crate) fn release(self) -> Result<(), StepError> {
        crate::sys::process::release_stdio(&self.0).map_err(step(
            Layer::Helper,
            "hand the build's stdio on",
            "dup2",
            PathBuf::from("/dev/null"),
        ))
    }
}

fn cstring(bytes: &[u8]) -> Result<CString, StepError> {
    CString::new(bytes).map_err(|_| {
        StepError::refused(
            Layer::Exec,
            "prepare argv and env",
            "a value contains a NUL byte",
        )
    })
}

/// execvp's lookup, done before seccomp and with the pinned PATH, so a missing program is
/// reported as "not found" (127) and a non-executable one as 126.
fn resolve_program(spec: &SandboxSpec) -> Result<CString, ChildFailure> {
    let name = &spec.command[0];
    let not_found = || ChildFailure::Exec {
        program: name.clone(),
        errno: nix::errno::Errno::ENOENT,
    };
    if name.contains('/') {
        return cstring(name.as_bytes()).map_err(ChildFailure::Setup);
    }
    let path_var = spec
        .env
        .iter()
        .find(|(n, _)| n == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let mut first_denied: Option<PathBuf> = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        match nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK) {
            Ok(()) if candidate.is_file() => {
                return cstring(candidate.as_os_str().as_bytes()).map_err(ChildFailure::Setup);
            }
            Ok(()) => {}
            Err(nix::errno::Errno::EACCES) => {
                first_denied.get_or_insert(candidate);
            }
            Err(_) => {}
        }
    }
    match first_denied {
        Some(path) => cstring(path.as_os_str().as_bytes()).map_err(ChildFailure::Setup),
        None => Err(not_found()),
    }
}

/// Clears the bounding and ambient sets, then every other set. The bounding set is what
/// stops a later exec of a file-capability binary from gaining anything back. Returns what
/// is left, read back: the permitted and inheritable sets (the effective and ambient sets
/// are within them), "none" when they are empty.
fn drop_capabilities() -> Result<String, StepError> {
    use caps::{CapSet, CapsHashSet};
    let failed = |what: &'static str, call: &'static str| {
        move |err: caps::errors::CapsError| {
            StepError::new(
                Layer::Capabilities,
                what,
                call,
                None,
                std::io::Error::other(crate::errors::error_chain(&err)),
            )
        }
    };
    let fail = |what: &'static str| failed(what, "capset");
    let known = caps::runtime::procfs_all_supported(None)
        .map_err(fail("list the kernel's capabilities"))?;
    for cap in known {
        caps::drop(None, CapSet::Bounding, cap).map_err(fail("clear the bounding set"))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(fail("clear the ambient set"))?;
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        caps::set(None, set, &CapsHashSet::new()).map_err(fail("clear the capability sets"))?;
    }
    let mut left = Vec::new();
    for set in [CapSet::Permitted, CapSet::Inheritable] {
        let held = caps::read(None, set).map_err(failed("read the sets back", "capget"))?;
        left.extend(held.iter().map(ToString::to_string));
    }
    if left.is_empty() {
        return Ok("none".into());
    }
    left.sort();
    left.dedup();
    Ok(left.join(","))
}
