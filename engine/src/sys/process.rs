//! Process plumbing: forking the sandbox's init, starting the build child in init's memory,
//! spawning the helper with fixed fd numbers, pidfds, close_range, _exit.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Exit status of a sandbox process (the helper, or a child placing its descriptors) whose
/// setup failed before the build started: docker's and podman's 125.
pub(crate) const SETUP_FAILED: i32 = 125;

/// Result of [`fork`].
pub(crate) enum Forked {
    Parent { child: nix::unistd::Pid },
    Child,
}

/// fork(2), after which the child may run arbitrary code.
///
/// # Safety
///
/// The calling process must be single-threaded: a thread that does not exist in the child
/// may hold a lock (the allocator's, stdout's) in the child's copy of the memory.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller is single-threaded (this function's contract), so the child gets
    // a consistent copy of the whole address space, with no lock held by a vanished thread.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent { child }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Runs `child` in a new process that borrows this process's memory until it execs or
/// exits, as posix_spawn(3) does: clone(2) with CLONE_VM | CLONE_VFORK, on a stack of its
/// own below a guard page. This process is suspended until then, and gets the child's pid.
///
/// Why not fork: a fork copies the page tables, every page either process then writes is
/// copied on the fault, and the exec throws the child's copy away again. For the sandbox's
/// init (a static binary forked twice already) the build child and `/bin/true` took 105
/// page faults with fork and take 75 now, on a virtual machine where one costs about 4 us.
///
/// What the child may do follows from sharing the memory of a suspended, single-threaded
/// parent: anything that neither returns into the parent's frames nor leaves the shared
/// heap or statics inconsistent when it execs. It allocates from the parent's heap (what it
/// leaves there stays allocated) and has its own descriptor table, signal handlers,
/// credentials, cgroups, seccomp filters and Landlock domain, like any child. Signals are
/// blocked across the clone, so no handler of the parent's runs on the child's stack
/// before the child resets them; the child inherits the full mask and must clear it.
///
/// # Safety
///
/// The calling process must be single-threaded. The child runs in this memory as the
/// calling thread (its thread-local state, its allocator cache, its identity for reentrant
/// locks), which is sound only while that thread is suspended and no other thread can see
/// or change the memory under the child.
pub(crate) unsafe fn spawn_borrowing_memory(
    child: impl FnOnce() -> std::convert::Infallible,
) -> io::Result<nix::unistd::Pid> {
    use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

    const STACK_BYTES: usize = 1 << 20;
    const GUARD_BYTES: usize = 64 << 10;
    let length = std::num::NonZeroUsize::new(GUARD_BYTES + STACK_BYTES).expect("not zero");
    // SAFETY: a fresh private anonymous mapping aliases nothing.
    let stack = unsafe {
        mmap_anonymous(
            None,
            length,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK,
        )
    }
    .map_err(io::Error::from)?;
    let unmap = |stack| {
        // SAFETY: the mapping made above, which nothing uses any more: the child has
        // exec'd or exited (or never started).
        let _ = unsafe { munmap(stack, length.get()) };
    };
    // SAFETY: the lowest GUARD_BYTES of the mapping just made; the stack grows down
    // towards it, so an overflow faults there instead of writing into other memory.
    if let Err(errno) = unsafe { mprotect(stack, GUARD_BYTES, ProtFlags::PROT_NONE) } {
        unmap(stack);
        return Err(errno.into());
    }
    // SAFETY: the mapping is ours, readable and writable except for the guard, which the
    // slice covers only so that the stack's top is computed from the whole length.
    let stack_bytes =
        unsafe { std::slice::from_raw_parts_mut(stack.as_ptr().cast::<u8>(), length.get()) };

    let mut child = Some(child);
    let callback = Box::new(move || -> isize {
        let run = child.take().expect("the child runs its function once");
        match run() {}
    });
    let mut previous_mask = SigSet::empty();
    if let Err(errno) = pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous_mask),
    ) {
        unmap(stack);
        return Err(errno.into());
    }
    // SAFETY: CLONE_VM | CLONE_VFORK without CLONE_THREAD: the child runs `callback` on
    // the new stack in this process's memory while this thread waits in the kernel, as
    // documented above; the caller is single-threaded (this function's contract), so no
    // other thread of ours can run meanwhile either. SIGCHLD makes it an ordinary child for
    // waitpid.
    let spawned = unsafe {
        nix::sched::clone(
            callback,
            stack_bytes,
            nix::sched::CloneFlags::CLONE_VM | nix::sched::CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    };
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous_mask), None);
    unmap(stack);
    spawned.map_err(io::Error::from)
}

/// Ends this process with `code` (its buffered stdout and stderr flushed, every descriptor
/// closed) without making whoever waits for it wait for its address space to be freed too:
/// a child sharing that memory (CLONE_VM) holds it, so the process's exit only drops a
/// reference, and the child, killed by its parent-death signal at that exit, frees it
/// after. mold ends its links the same way. For the CLI, whose mapped pages (~1,000, most
/// of them its static binary's) took 0.25-0.3 ms to unmap here after every command, while
/// its caller waited.
///
/// The child holds no descriptor (they are closed before it starts), so no pipe of the
/// caller's stays open; it makes raw system calls only, on a stack of its own, and pauses
/// until the signal. Without it (the clone failed, or the process runs other threads), the
/// process simply exits.
pub(crate) fn exit_leaving_memory_to_a_child(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Closing every descriptor under another thread could hand its number to a file that
    // thread opens next, behind the back of the object that still owns the number.
    if is_single_threaded() {
        // SAFETY: this is the process's only thread (checked above), and it never returns
        // from here: no object that owns a descriptor is used or dropped again.
        let _ = unsafe { close_from(0) };
        start_memory_holder();
    }
    // SAFETY: exit_group ends every thread of this process; it never returns.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    unreachable!("exit_group returned")
}

/// Starts the child of [`exit_leaving_memory_to_a_child`], which holds this memory until
/// the calling thread, about to end the process, is gone; every descriptor is closed by
/// then.
fn start_memory_holder() {
    extern "C" fn hold_memory(parent: *mut libc::c_void) -> libc::c_int {
        // SAFETY: raw system calls on integers. Of the memory this child shares with its
        // exiting parent they touch the stack it was given, and on failure errno, in the
        // thread-local block of the parent's thread, which nothing reads any more.
        unsafe {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            // The parent may have exited before the signal was asked for.
            if libc::syscall(libc::SYS_getppid) as usize == parent as usize {
                loop {
                    libc::syscall(libc::SYS_pause);
                }
            }
            libc::syscall(libc::SYS_exit, 0);
        }
        0
    }
    const STACK_BYTES: usize = 16 << 10;
    // SAFETY: a fresh private anonymous mapping aliases nothing. It is never unmapped: it
    // goes with the address space.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return;
    }
    let parent = std::process::id() as usize as *mut libc::c_void;
    // SAFETY: the child runs `hold_memory` on the top of the mapping just made, in this
    // process's memory, and touches nothing else of it (see above). SIGCHLD makes it an
    // ordinary child, which init or a subreaper reaps once it is orphaned.
    unsafe {
        libc::clone(
            hold_memory,
            stack.cast::<u8>().add(STACK_BYTES).cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            parent,
        );
    }
}

/// Descriptor numbers at or above this are free for parking in a freshly forked child.
const PARK_FLOOR: RawFd = 64;

/// Spawns `command` with `fds` moved to fixed descriptor numbers (source → target) and the
/// child killed when the spawning thread dies.
pub(crate) fn spawn_with_fds(command: &mut Command, fds: &[(RawFd, RawFd)]) -> io::Result<Child> {
    let fds = fds.to_vec();
    let mut parked = vec![-1; fds.len()];
    // SAFETY: the closure runs between fork and exec and only calls `place_fds`, which is
    // async-signal-safe and allocates nothing (`parked` is allocated before the fork).
    unsafe { command.pre_exec(move || place_fds(&fds, &mut parked)) };
    command.spawn()
}

/// In a freshly forked child: moves `fds` (source → target) to their fixed numbers and
/// asks for SIGKILL when the parent thread dies. Only async-signal-safe calls (fcntl,
/// dup2, prctl) on memory allocated before the fork; `parked` has one slot per entry.
fn place_fds(fds: &[(RawFd, RawFd)], parked: &mut [RawFd]) -> io::Result<()> {
    // Park every source above the targets first: a source may sit on another entry's
    // target number, and dup2 onto it would destroy it.
    for (slot, &(source, _)) in parked.iter_mut().zip(fds) {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor number only creates a descriptor.
        *slot = unsafe { libc::fcntl(source, libc::F_DUPFD_CLOEXEC, PARK_FLOOR) };
        if *slot < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for (&parked, &(_, target)) in parked.iter().zip(fds) {
        // SAFETY: dup2 between descriptor numbers; the target's old file is closed, which
        // is the point (nothing in this child owns it any more).
        if unsafe { libc::dup2(parked, target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // A number below the highest target that no entry targets still holds whatever the
    // parent had there: in a forked child, often a copy of one of the sources (the build's
    // stdout when the zygote received it there), which nothing in the child owns and which
    // would keep that pipe open as long as the child lives.
    let highest = fds.iter().map(|&(_, target)| target).max().unwrap_or(-1);
    for number in 0..highest {
        if !fds.iter().any(|&(_, target)| target == number) {
            // SAFETY: close on a descriptor number that no object in this child owns.
            unsafe { libc::close(number) };
        }
    }
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process runs a single thread: only then may its child of a plain fork run
/// arbitrary code (no lock can be held by a thread that does not exist in the child).
pub(crate) fn is_single_threaded() -> bool {
    never_started_a_thread()
        || std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// glibc's own answer, without the 7 syscalls of listing /proc/self/task (0.03-0.05 ms
/// before every CLI launch): `__libc_single_threaded` (glibc 2.32) turns false when the
/// process creates its first thread and may stay false after that thread has gone, so
/// false only means "ask the kernel".
#[cfg(target_env = "gnu")]
fn never_started_a_thread() -> bool {
    extern "C" {
        static __libc_single_threaded: libc::c_char;
    }
    // SAFETY: a byte glibc defines for exactly this reading. glibc writes it when this
    // process creates a thread (and in a forked child); while it is true there is no
    // other thread to race with.
    unsafe { std::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
}

#[cfg(not(target_env = "gnu"))]
fn never_started_a_thread() -> bool {
    false
}

/// Sets this thread's EEVDF slice (Linux 6.12): `Some(slice)` asks for slices that short
/// (0.1 to 100 ms), `None` gives the kernel's default back. A task with a short slice that
/// wakes up, or lands on a CPU, preempts one running a longer slice (a kernel worker
/// finishing the previous sandbox's teardown) instead of waiting for that slice to end; its
/// share of CPU time is unchanged. Children inherit it. Older kernels ignore it. Only
/// SCHED_OTHER and SCHED_BATCH threads are changed, their nice value kept.
pub(crate) fn set_scheduler_slice(slice: Option<std::time::Duration>) -> io::Result<()> {
    let mut attr = libc::sched_attr {
        size: 0,
        sched_policy: 0,
        sched_flags: 0,
        sched_nice: 0,
        sched_priority: 0,
        sched_runtime: 0,
        sched_deadline: 0,
        sched_period: 0,
    };
    let size = std::mem::size_of::<libc::sched_attr>() as libc::c_uint;
    // SAFETY: the kernel writes at most `size` bytes, the size of `attr`, for this thread.
    if unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if !matches!(
        attr.sched_policy as i32,
        libc::SCHED_OTHER | libc::SCHED_BATCH
    ) {
        return Ok(());
    }
    attr.size = size;
    attr.sched_runtime = slice.map_or(0, |slice| slice.as_nanos() as u64);
    // SAFETY: the kernel reads `attr.size` bytes of `attr`, for this thread.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Forks this process if it is single-threaded (`None` otherwise); the child gets `fds`
/// at their fixed numbers and dies with the parent thread. Saves the exec, dynamic
/// linking and start-up of a new helper image.
///
/// # Safety
///
/// In the child, every descriptor number below the highest target now holds one of `fds`
/// or is closed, whichever object of the parent's owned it: the child must neither use nor
/// drop any descriptor-owning object it inherited (it runs the helper and ends with
/// [`exit_now`], never returning into the caller's frames).
pub(crate) unsafe fn fork_with_fds(fds: &[(RawFd, RawFd)]) -> io::Result<Option<Forked>> {
    if !is_single_threaded() {
        return Ok(None);
    }
    let mut parked = vec![-1; fds.len()];
    // SAFETY: this process runs one thread (checked just above; only this thread could
    // have started another since, and it did not).
    let forked = unsafe { fork() }?;
    Ok(Some(placed_in_child(forked, fds, &mut parked)))
}

/// Gives this process `name` as its comm and as its whole command line (truncated to the
/// space of the one it was started with), so that neither shows the launcher's arguments
/// (host paths) or how the process was started. With `wipe_environment`, also overwrites
/// the environment strings it was started with and empties its environment: a helper
/// forked from the CLI would otherwise carry the caller's whole environment (CI tokens
/// included) into the sandbox's init, where only init's non-dumpability keeps it from
/// /proc/1/environ. (An exec'd helper, or one the zygote forks, starts with none.)
///
/// # Safety
///
/// The calling process must be single-threaded: no other thread may read the environment
/// or the argument strings while they are rewritten (`std::env::args` reads the latter in
/// place).
pub(crate) unsafe fn disguise(name: &str, wipe_environment: bool) -> io::Result<()> {
    nix::sys::prctl::set_name(&std::ffi::CString::new(name).map_err(io::Error::other)?)?;
    let ((arg_start, arg_end), (env_start, env_end)) = own_strings()?;
    let length = name.len().min(arg_end - arg_start - 1);
    // SAFETY: [arg_start, arg_end) is the block of argument strings the kernel copied to
    // this process's main stack at exec; it is mapped and writable. std's argv points into
    // it and still finds NUL-terminated strings there; no other thread reads it meanwhile
    // (this function's contract). /proc/PID/cmdline shows it.
    unsafe {
        std::ptr::write_bytes(arg_start as *mut u8, 0, arg_end - arg_start);
        std::ptr::copy_nonoverlapping(name.as_ptr(), arg_start as *mut u8, length);
    }
    if wipe_environment {
        // SAFETY: [env_start, env_end) is the block of environment strings the kernel
        // copied to the top of the main stack at exec; it is mapped and writable, and no
        // Rust object refers to it (std reads the environment through libc's `environ`,
        // which clearenv detaches right after); no other thread reads the environment
        // meanwhile (this function's contract).
        unsafe {
            std::ptr::write_bytes(env_start as *mut u8, 0, env_end - env_start);
            libc::clearenv();
        }
    }
    Ok(())
}

/// Where the kernel put this process's argument and environment strings, from
/// /proc/self/stat: ((arg_start, arg_end), (env_start, env_end)).
type Ranges = ((usize, usize), (usize, usize));

fn own_strings() -> io::Result<Ranges> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/stat");
    // The fields after the command name, which may itself hold spaces and parentheses:
    // the first is field 3 (state), so arg_start..env_end (fields 48 to 51) are 45 to 48.
    let after_name = stat.rfind(')').ok_or_else(malformed)?;
    let fields: Vec<&str> = stat[after_name + 1..].split_ascii_whitespace().collect();
    let range = |first: usize| -> io::Result<(usize, usize)> {
        let address = |index: usize| -> io::Result<usize> {
            fields
                .get(index)
                .and_then(|field| field.parse().ok())
                .ok_or_else(malformed)
        };
        let (start, end) = (address(first)?, address(first + 1)?);
        // An empty environment (an exec'd helper's) is an empty range.
        if start == 0 || end < start {
            return Err(malformed());
        }
        Ok((start, end))
    };
    let arguments = range(45)?;
    if arguments.1 == arguments.0 {
        return Err(malformed());
    }
    Ok((arguments, range(47)?))
}

/// clone(2) with CLONE_PARENT, for the single-threaded zygote: the new process is a child
/// of the zygote's parent (the daemon), which can then wait for it and open a pidfd for
/// it as for any child of its own. The child gets `fds` at their fixed numbers and dies
/// with the daemon's thread that started the zygote. Its exit signal is the zygote's own
/// (SIGCHLD).
///
/// # Safety
///
/// As for [`fork`] and [`fork_with_fds`]: the calling process must be single-threaded, and
/// the child must neither use nor drop any descriptor-owning object it inherited.
pub(crate) unsafe fn fork_sibling_with_fds(fds: &[(RawFd, RawFd)]) -> io::Result<Forked> {
    let mut parked = vec![-1; fds.len()];
    // SAFETY: a raw clone without a new stack behaves as fork(2), and the caller is
    // single-threaded (this function's contract), so the child gets a consistent address
    // space with no lock held. What glibc's fork would also do and this does not: run
    // atfork handlers (this program registers none) and refresh the thread's cached tid,
    // which glibc then uses only for pthread mutex owners and for signalling the thread
    // from another one (raise(3) asks the kernel for its tid); the helper uses neither.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_PARENT as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    let forked = match rc {
        0 => Forked::Child,
        pid if pid > 0 => Forked::Parent {
            child: nix::unistd::Pid::from_raw(pid as i32),
        },
        _ => return Err(io::Error::last_os_error()),
    };
    Ok(placed_in_child(forked, fds, &mut parked))
}

/// In the child of a fork: places `fds`, or exits at once if that fails (the launcher
/// then sees a helper that died without a report).
fn placed_in_child(forked: Forked, fds: &[(RawFd, RawFd)], parked: &mut [RawFd]) -> Forked {
    if matches!(forked, Forked::Child) && place_fds(fds, parked).is_err() {
        exit_now(SETUP_FAILED);
    }
    forked
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
///
/// # Safety
///
/// No object of this process (a `File`, an `OwnedFd`) that owns a descriptor numbered
/// `first` or above may be used or dropped afterwards: its number may then name another
/// file.
pub(crate) unsafe fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors, and no object that owns one of them is
    // used again (this function's contract).
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
///
/// # Safety
///
/// `fd` must be open and owned by no other object of this process, and be taken once.
pub(crate) unsafe fn file_from_inherited_fd(fd: RawFd) -> std::fs::File {
    // SAFETY: `fd` is open and nothing else owns it (this function's contract).
    unsafe { std::fs::File::from_raw_fd(fd) }
}

/// Borrows a descriptor the launcher placed at a fixed number, for as long as the process
/// lives.
///
/// # Safety
///
/// `fd` must be open, and stay open: no object of this process may own and close it.
pub(crate) unsafe fn borrow_inherited_fd(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: `fd` is open for the rest of the process (this function's contract).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Sends `bytes` and the descriptors `fds` as one message on a SOCK_SEQPACKET socket.
pub(crate) fn send_with_fds(socket: &OwnedFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [io::IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let control: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let sent = sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != bytes.len() {
        return Err(io::Error::other("short send on a packet socket"));
    }
    Ok(())
}

/// Receives one message sent by [`send_with_fds`]: its bytes (at most `buffer.len()`) and
/// descriptors (at most `MAX_PASSED_FDS`, close-on-exec). `Ok(None)` at end of stream.
pub(crate) fn recv_with_fds(
    socket: &impl std::os::fd::AsFd,
    buffer: &mut [u8],
) -> io::Result<Option<(usize, Vec<OwnedFd>)>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut control = nix::cmsg_space!([RawFd; MAX_PASSED_FDS]);
    let mut iov = [io::IoSliceMut::new(buffer)];
    let message = loop {
        match recvmsg::<()>(
            socket.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel just installed these descriptors in this process for
            // this message; nothing else owns them.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let truncated = message
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    let length = message.bytes;
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a message or its descriptors did not fit",
        ));
    }
    if length == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some((length, fds)))
}

/// The most descriptors one [`send_with_fds`] message may carry. A helper takes 8 (stdio,
/// spec, reports, provision, artifact, source); the rest is headroom, so that a new one
/// does not make every launch through the zygote fail.
pub(crate) const MAX_PASSED_FDS: usize = 16;

/// Gives every signal its default action and unblocks them all. Ignored signals and the
/// mask survive execve, so whatever the launcher's caller had (Rust programs ignore
/// SIGPIPE, nohup ignores SIGHUP) would otherwise reach the build: `yes | head -1` would
/// report a broken pipe instead of ending quietly.
pub(crate) fn reset_signals() -> io::Result<()> {
    /// The kernel's struct sigaction for rt_sigaction(2) on x86_64. glibc's sigaction()
    /// refuses the two real-time signals it keeps for itself, which a caller can still
    /// have ignored, so the raw call is made for every signal.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: libc::sighandler_t,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a valid kernel sigaction that installs no handler code, it
        // outlives the call, the old action is not asked for, and 8 is the size of the
        // kernel's signal set on x86_64.
        let result = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .map_err(io::Error::from)
}

static TIMEOUT_ALARM_FIRED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_timeout_alarm(_signal: libc::c_int) {
    TIMEOUT_ALARM_FIRED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes SIGALRM interrupt this process's blocking calls (no SA_RESTART) and note that it
/// came ([`timeout_alarm_fired`]), then sets the alarm `seconds` from now.
pub(crate) fn arm_timeout_alarm(seconds: u32) -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(note_timeout_alarm),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { sigaction(Signal::SIGALRM, &action) }?;
    nix::unistd::alarm::set(seconds);
    Ok(())
}

/// Whether the alarm of [`arm_timeout_alarm`] has gone off.
pub(crate) fn timeout_alarm_fired() -> bool {
    TIMEOUT_ALARM_FIRED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Points descriptors 0-2 at `null` (/dev/null, opened before the fork that handed the
/// build's stdio on to a child). The helper and init drop their own copies this way: a
/// reader of the build's output (the daemon's log relay) sees its end when the build's
/// processes are gone, not only after init and the helper have torn the namespaces down.
pub(crate) fn release_stdio(null: &std::fs::File) -> io::Result<()> {
    for target in 0..=2 {
        // SAFETY: dup2 between descriptor numbers; 0-2 are owned by no Rust object in the
        // helper or init, and their old files are closed on purpose.
        if unsafe { libc::dup2(null.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A launcher that runs threads must never fork a helper: glibc's flag and the kernel's
    /// task list agree that this process (the test harness, with a thread of its own for
    /// this test) has more than one.
    #[test]
    fn a_process_with_threads_is_not_single_threaded() {
        let (ready, wait) = std::sync::mpsc::channel::<()>();
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            ready.send(()).unwrap();
            finish.recv().unwrap();
        });
        wait.recv().unwrap();
        assert!(!super::never_started_a_thread());
        assert!(!super::is_single_threaded());
        done.send(()).unwrap();
        thread.join().unwrap();
    }
}
