//! The helper process: synchronous code of the launcher's own binary that builds the
//! sandbox. Namespace setup never happens in the launcher (which may run a tokio runtime):
//! only a single-threaded process may fork and unshare safely, so the helper is forked from
//! a launcher that is single-threaded (the CLI), forked by the daemon's zygote, or exec'd.
//!
//! The namespaces need nothing from the spec, so the helper creates them first and takes
//! the spec after: a helper the CLI starts early (`launch::EarlyHelper`) builds them while
//! the CLI loads the profile and plans.
//!
//! Process tree: launcher → helper (host pid namespace and cgroup, waits with the
//! wall-clock limit) → init (pid 1 of the new pid namespace: builds the filesystem, reaps,
//! archives) → build (the only one in the build cgroup, with its descendants).
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};

use crate::sandbox::error::{step, Layer, StepError};
use crate::sandbox::message::{
    take_fd, HelperMessage, MessageSink, Namespace, FIRST_UNUSED_FD, SPEC_FD,
};
use crate::sandbox::spec::{SandboxSpec, SPEC_VERSION};
use crate::sys::process::{fork, Forked};

/// argv[1] that turns any hermetic binary into the sandbox helper.
pub const HELPER_ARG: &str = "__hermetic-sandbox-helper";

/// The comm and command line of the helper and the sandbox's init.
pub const PROCESS_NAME: &str = "hermetic-helper";

/// How long past the build's timeout init has to archive a failed build's tree (the
/// daemon's `keep_failed`) before the helper kills the sandbox anyway.
const FAILED_TREE_GRACE_MS: u64 = 120_000;

pub(crate) use crate::sys::process::SETUP_FAILED;

/// Called first thing in `main` of every binary that launches sandboxes. When the process
/// was started as the helper or the zygote it never returns.
pub fn run_helper_if_requested() {
    match std::env::args_os().nth(1) {
        Some(arg) if arg == HELPER_ARG => {
            // SAFETY: only a launcher passes this argument, when it execs this binary with
            // the fixed descriptors placed (`spawn_with_fds` in `launch`), and this is the
            // first call of `main` (as documented): no thread is started and no object
            // owns a descriptor yet; the process exits with the helper's status.
            std::process::exit(unsafe { helper_main(Start::Fresh) })
        }
        Some(arg) if arg == crate::sandbox::zygote::ZYGOTE_ARG => {
            // SAFETY: only `zygote::start` passes this argument, when it execs this binary
            // with the control socket placed, and this is the first call of `main`: no
            // thread is started and no object owns a descriptor yet.
            unsafe { crate::sandbox::zygote::zygote_main() }
        }
        _ => {}
    }
}

/// How the helper was started, which says where its spec comes from and what it inherited.
pub(crate) enum Start<'a> {
    /// Exec'd, or forked by the daemon's zygote: an empty environment; the spec arrives on
    /// its pipe.
    Fresh,
    /// Forked by a launcher that had the spec: it is in this memory.
    ForkedWith(&'a SandboxSpec),
    /// Forked by a launcher that did not have it yet (`launch::EarlyHelper`): the spec
    /// arrives on its pipe once the launcher has planned.
    ForkedEarly,
}

/// Runs the helper in this process, with the launcher's descriptors in place; returns its
/// exit status, with which the caller ends the process.
///
/// # Safety
///
/// The process must be single-threaded, with the fixed descriptors of `sandbox::message`
/// (below `FIRST_UNUSED_FD`) placed by the launcher. No object that owns a descriptor may
/// be used or dropped after this call (the caller ends the process with the status, never
/// returning to one): the helper takes the fixed ones and closes every one from
/// `FIRST_UNUSED_FD` up.
pub(crate) unsafe fn helper_main(start: Start<'_>) -> i32 {
    // Before anything else can open a descriptor: drop whatever the caller leaked to us.
    // SAFETY: no object that owns one of these descriptors is used again (this function's
    // contract).
    let leaked = unsafe { crate::sys::process::close_from(FIRST_UNUSED_FD) };
    // SAFETY: the launcher placed MESSAGE_FD and SPEC_FD, and no other object that owns
    // them is used again (this function's contract); each is taken here only.
    let (mut messages, spec_pipe) = unsafe { (MessageSink::from_helper_fd(), take_fd(SPEC_FD)) };
    // However it was started (exec'd, forked by the CLI or the zygote), the helper and
    // init look the same to anyone who can see them, and carry no host environment.
    let forked_by_launcher = !matches!(start, Start::Fresh);
    crate::test_hooks::read_helper_hooks();
    // SAFETY: the helper is single-threaded (this function's contract).
    let disguised = unsafe { crate::sys::process::disguise(PROCESS_NAME, forked_by_launcher) };
    if let Err(err) = disguised {
        messages.setup_failed(&StepError::new(
            Layer::Helper,
            "rename the helper and wipe its environment",
            "prctl(PR_SET_NAME)",
            None,
            err,
        ));
        return SETUP_FAILED;
    }
    if let Err(err) = leaked {
        messages.setup_failed(&StepError::new(
            Layer::Helper,
            "close inherited descriptors",
            "close_range",
            None,
            err,
        ));
        return SETUP_FAILED;
    }
    // SAFETY: single-threaded, the other fixed descriptors in place and untouched, and no
    // descriptor object used again: this function's contract.
    match unsafe { enter_namespaces_and_wait(start, spec_pipe, &mut messages) } {
        Ok(code) => code,
        Err(err) => {
            messages.setup_failed(&err);
            SETUP_FAILED
        }
    }
}

fn read_spec(mut pipe: File) -> Result<SandboxSpec, StepError> {
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes).map_err(step(
        Layer::Helper,
        "read the sandbox spec",
        "read",
        None,
    ))?;
    let spec: SandboxSpec = serde_json::from_slice(&bytes).map_err(|err| {
        StepError::refused(Layer::Helper, "parse the sandbox spec", err.to_string())
    })?;
    if spec.version != SPEC_VERSION {
        return Err(StepError::refused(
            Layer::Helper,
            "check the spec version",
            format!(
                "launcher sent version {}, helper speaks {SPEC_VERSION}",
                spec.version
            ),
        ));
    }
    Ok(spec)
}

/// The namespaces the helper creates once it is in its own user namespace, which owns them
/// whether or not its ids are mapped yet.
const OWNED_BY_THE_USER_NAMESPACE: [Namespace; 6] = [
    Namespace::Mount,
    Namespace::Pid,
    Namespace::Net,
    Namespace::Uts,
    Namespace::Ipc,
    Namespace::Time,
];

/// Creates the namespaces, which needs nothing from the spec (so that a helper started
/// early does it while its launcher plans), then takes the spec, maps the build user and
/// starts init.
///
/// # Safety
///
/// As for [`helper_main`], with its descriptors but MESSAGE_FD and SPEC_FD (taken)
/// untouched.
unsafe fn enter_namespaces_and_wait(
    start: Start<'_>,
    spec_pipe: File,
    messages: &mut MessageSink,
) -> Result<i32, StepError> {
    if nix::unistd::geteuid().is_root() {
        become_unprivileged()?;
    }
    let outer_uid = nix::unistd::geteuid();
    let outer_gid = nix::unistd::getegid();
    unshare(Namespace::User.clone_flag()).map_err(step(
        Layer::Namespaces,
        "create the user namespace",
        "unshare(CLONE_NEWUSER)",
        None,
    ))?;
    let flags = OWNED_BY_THE_USER_NAMESPACE
        .iter()
        .fold(CloneFlags::empty(), |flags, namespace| {
            flags | namespace.clone_flag()
        });
    unshare(flags).map_err(step(
        Layer::Namespaces,
        "create mount, pid, net, uts, ipc and time namespaces",
        "unshare",
        None,
    ))?;
    let mut created = vec![Namespace::User];
    created.extend(OWNED_BY_THE_USER_NAMESPACE);
    pin_uptime()?;
    let read;
    let spec = match start {
        Start::ForkedWith(spec) => {
            drop(spec_pipe);
            spec
        }
        Start::Fresh | Start::ForkedEarly => {
            read = read_spec(spec_pipe)?;
            &read
        }
    };
    let map_files = [
        ("/proc/self/setgroups", "deny".to_string()),
        (
            "/proc/self/uid_map",
            format!("{} {} 1", spec.identity.uid, outer_uid),
        ),
        (
            "/proc/self/gid_map",
            format!("{} {} 1", spec.identity.gid, outer_gid),
        ),
    ];
    for (path, content) in map_files {
        std::fs::write(path, content).map_err(step(
            Layer::Namespaces,
            "map the build user",
            "write",
            PathBuf::from(path),
        ))?;
    }
    // Nothing of the helper and init (they still hold the launcher's view of the host)
    // may be read or traced by the build. Only now: a non-dumpable process's /proc/self
    // files belong to the host's root, so an unprivileged helper could not have written
    // its uid_map or time offsets.
    nix::sys::prctl::set_dumpable(false).map_err(step(
        Layer::Helper,
        "make the helper non-dumpable",
        "prctl(PR_SET_DUMPABLE)",
        None,
    ))?;

    let stdio = crate::sandbox::init::StdioRelease::prepare()?;
    // A pipe whose write end only the helper keeps: init asks to die with the helper, and
    // then sees the pipe's other end closed if the helper died before it asked (a fork has
    // no parent-death signal from its first instruction, and pid 1 of a new pid namespace
    // cannot compare getppid: it reads 0).
    let (helper_alive, helper_alive_writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(step(
            Layer::Helper,
            "create the helper-alive pipe",
            "pipe2",
            None,
        ))?;
    // SAFETY: the helper is single-threaded (this function's contract).
    let forked = unsafe { fork() };
    let init = match forked.map_err(step(
        Layer::Namespaces,
        "start the sandbox init",
        "fork",
        None,
    ))? {
        // SAFETY: init is a copy of this single-threaded helper, whose launcher's
        // descriptors other than MESSAGE_FD and SPEC_FD are in place and untouched, and
        // it ends the process without returning here.
        Forked::Child => {
            drop(helper_alive_writer);
            // SAFETY: as above.
            unsafe { crate::sandbox::init::run(spec, &created, messages, helper_alive) }
        }
        Forked::Parent { child } => {
            drop(helper_alive);
            // Held until the helper ends, with the process: never closed by hand.
            std::mem::forget(helper_alive_writer);
            child
        }
    };
    stdio.release()?;
    let pidfd = crate::sys::process::pidfd_open(init).map_err(step(
        Layer::Limits,
        "watch the sandbox init",
        "pidfd_open",
        None,
    ))?;
    // With a failed tree to keep, init times the build and archives its tree when the
    // time is up; this is then the backstop.
    let limit_ms = if spec.keep_failed_tree {
        spec.limits.timeout_ms.saturating_add(FAILED_TREE_GRACE_MS)
    } else {
        spec.limits.timeout_ms
    };
    let exited = crate::sys::process::wait_pidfd(&pidfd, Some(limit_ms)).map_err(step(
        Layer::Limits,
        "wait for the build",
        "poll(pidfd)",
        None,
    ))?;
    if !exited {
        // Killing pid 1 of the namespace kills every process in it.
        let _ = kill(init, Signal::SIGKILL);
        messages.send(&HelperMessage::TimedOut {
            after_ms: spec.limits.timeout_ms,
        });
    }
    let status = waitpid(init, None).map_err(step(
        Layer::Helper,
        "reap the sandbox init",
        "waitpid",
        None,
    ))?;
    Ok(match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => SETUP_FAILED,
    })
}

/// The host uid and gid a root caller's builds run as.
///
/// The build's uid inside maps to the helper's uid outside. Mapped to root, the build would
/// be host root without capabilities, which still passes every owner check on host-owned
/// kernel files (a writable /proc/sys/kernel/core_pattern is a full escape). So a root
/// helper first becomes `nobody`, exactly like an unprivileged caller.
pub const ROOT_CALLER_BUILD_UID: u32 = 65534;
pub const ROOT_CALLER_BUILD_GID: u32 = 65534;

fn become_unprivileged() -> Result<(), StepError> {
    let launcher = nix::unistd::getppid();
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    // Supplementary groups would show up as "nogroup" inside.
    setgroups(&[]).map_err(step(
        Layer::Namespaces,
        "drop supplementary groups",
        "setgroups",
        None,
    ))?;
    let gid = Gid::from_raw(ROOT_CALLER_BUILD_GID);
    setresgid(gid, gid, gid).map_err(step(
        Layer::Namespaces,
        "become the build group",
        "setresgid",
        None,
    ))?;
    let uid = Uid::from_raw(ROOT_CALLER_BUILD_UID);
    setresuid(uid, uid, uid).map_err(step(
        Layer::Namespaces,
        "become the build user",
        "setresuid",
        None,
    ))?;
    // Changing credentials cleared the parent-death signal: set it again, and make sure
    // the launcher did not die in between (the helper would then be an orphan of init).
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(step(
        Layer::Helper,
        "die with the launcher",
        "prctl(PR_SET_PDEATHSIG)",
        None,
    ))?;
    if nix::unistd::getppid() != launcher {
        return Err(StepError::refused(
            Layer::Helper,
            "die with the launcher",
            "the launcher exited during setup",
        ));
    }
    // Changing credentials also made the process non-dumpable, which would hand its
    // /proc/self files to root and stop it from writing its own uid_map.
    nix::sys::prctl::set_dumpable(true).map_err(step(
        Layer::Namespaces,
        "keep /proc/self writable",
        "prctl(PR_SET_DUMPABLE)",
        None,
    ))
}

/// The time namespace's offsets make CLOCK_MONOTONIC and CLOCK_BOOTTIME (and so
/// /proc/uptime) start near zero in every sandbox instead of at the host's uptime.
fn pin_uptime() -> Result<(), StepError> {
    use nix::time::{clock_gettime, ClockId};
    let mut offsets = String::new();
    for (name, clock) in [
        ("monotonic", ClockId::CLOCK_MONOTONIC),
        ("boottime", ClockId::CLOCK_BOOTTIME),
    ] {
        let now = clock_gettime(clock).map_err(step(
            Layer::Pins,
            "read the host uptime",
            "clock_gettime",
            None,
        ))?;
        offsets.push_str(&format!("{name} {} 0\n", -now.tv_sec()));
    }
    std::fs::write("/proc/self/timens_offsets", offsets).map_err(step(
        Layer::Pins,
        "pin uptime in the time namespace",
        "write",
        PathBuf::from("/proc/self/timens_offsets"),
    ))
}
