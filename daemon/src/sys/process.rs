//! Process plumbing: forking the sandbox's init, spawning the helper with fixed fd numbers,
//! pidfds, close_range, _exit.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Result of [`fork`].
pub(crate) enum Forked {
    Parent { child: nix::unistd::Pid },
    Child,
}

/// fork(2). Only called from the helper process, which is single-threaded (it was just
/// exec'd and starts no threads), so the child may run arbitrary code afterwards.
pub(crate) fn fork() -> io::Result<Forked> {
    // SAFETY: the helper never starts threads before forking, so the child gets a
    // consistent copy of the whole address space (no lock can be held by a vanished thread).
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent { child }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Descriptor numbers at or above this are free for parking in a freshly forked child.
const PARK_FLOOR: RawFd = 64;

/// Spawns `command` with `fds` moved to fixed descriptor numbers (source → target) and the
/// child killed when the spawning thread dies.
pub(crate) fn spawn_with_fds(command: &mut Command, fds: &[(RawFd, RawFd)]) -> io::Result<Child> {
    let fds = fds.to_vec();
    let mut parked = vec![-1; fds.len()];
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // calls (fcntl, dup2, prctl) on values captured before the fork; it allocates nothing
    // (`parked` is allocated before the fork and only indexed).
    unsafe {
        command.pre_exec(move || {
            // Park every source above the targets first: a source may sit on another
            // entry's target number, and dup2 onto it would destroy it.
            for (slot, &(source, _)) in parked.iter_mut().zip(&fds) {
                *slot = libc::fcntl(source, libc::F_DUPFD_CLOEXEC, PARK_FLOOR);
                if *slot < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (&parked, &(_, target)) in parked.iter().zip(&fds) {
                if libc::dup2(parked, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    command.spawn()
}

/// Marks every descriptor from `first` up close-on-exec, so that nothing the helper holds
/// reaches the build, while the error pipe still works if execve fails.
pub(crate) fn set_cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor from `first` up: the helper keeps only what the launcher placed
/// at fixed numbers, not whatever its caller leaked without close-on-exec.
pub(crate) fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; the helper holds no Rust object (File,
    // OwnedFd) for numbers at or above `first` at this point.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits.
pub(crate) fn pidfd_open(pid: nix::unistd::Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2) with SIGKILL: unlike kill(2) on a pid, it can never reach another
/// process that reused the pid after this one was reaped.
pub(crate) fn pidfd_kill(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: the descriptor is a live pidfd we own; a null siginfo makes the call behave
    // as kill(2); no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until the pidfd is readable (the process exited) or `timeout_ms` passes.
/// Returns true when the process exited.
pub(crate) fn wait_pidfd(pidfd: &OwnedFd, timeout_ms: Option<u64>) -> io::Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline =
        timeout_ms.map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
    loop {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// setdomainname(2); nix only wraps sethostname.
pub(crate) fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the current process immediately, without running atexit handlers or flushing
/// stdio buffers that belong to the parent's copy of the address space.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// The raw number of a descriptor, for the fd table of [`spawn_with_fds`].
pub(crate) fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

/// Takes ownership of a descriptor the launcher placed at a fixed number in the helper.
pub(crate) fn file_from_inherited_fd(fd: RawFd) -> std::fs::File {
    // SAFETY: only called for SPEC_FD/MESSAGE_FD/ARTIFACT_FD, which the launcher dup2'd
    // into this process before exec and which nothing else in the helper owns.
    unsafe { std::fs::File::from_raw_fd(fd) }
}
