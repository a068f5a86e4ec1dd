//! Per-thread filesystem identity, for a daemon acting for another user: while a job of
//! that user runs, its thread (and every thread it starts, which inherit the kernel's
//! per-thread credentials) opens, reads and creates files as that user. The calls are raw
//! syscalls on purpose: glibc's setgroups wrapper would change every thread of the daemon.
use std::cell::Cell;
use std::io;

thread_local! {
    /// The user this thread acts for, for the subprocesses it starts (exec resets the
    /// filesystem ids to the effective ones, so they are given the user's ids instead).
    static ACTING_FOR: Cell<Option<(u32, u32)>> = const { Cell::new(None) };
}

/// The filesystem identity of this thread until dropped; then the daemon's own.
pub struct ActingAs {
    own_groups: Vec<libc::gid_t>,
}

/// Makes this thread act as `uid`/`gid` with supplementary `groups` for every file
/// access, until the returned guard is dropped.
pub fn act_as(uid: u32, gid: u32, groups: &[u32]) -> io::Result<ActingAs> {
    let own_groups = nix::unistd::getgroups()
        .map_err(io::Error::from)?
        .into_iter()
        .map(|gid| gid.as_raw())
        .collect();
    set_groups(groups)?;
    // SAFETY: setfsgid/setfsuid take plain integers and change only this thread's
    // credentials; they report failure only by leaving the id unchanged (checked below).
    unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
    }
    let guard = ActingAs { own_groups };
    if current_fs_ids() != (uid, gid) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("setfsuid({uid})/setfsgid({gid}): not permitted (the daemon needs CAP_SETUID and CAP_SETGID)"),
        ));
    }
    ACTING_FOR.with(|acting| acting.set(Some((uid, gid))));
    Ok(guard)
}

impl Drop for ActingAs {
    fn drop(&mut self) {
        ACTING_FOR.with(|acting| acting.set(None));
        let (euid, egid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        // SAFETY: as in `act_as`; back to the ids every other thread of the daemon has.
        unsafe {
            libc::setfsuid(euid);
            libc::setfsgid(egid);
        }
        if let Err(err) = set_groups(&self.own_groups) {
            // A pooled thread keeping another user's groups would leak them into the next
            // job: better to stop here.
            panic!("failed to restore the daemon's supplementary groups: {err}");
        }
    }
}

/// Runs `f` with the daemon's own filesystem identity (for the cgroup tree, which only
/// the daemon may change), then returns to the identity the thread had.
pub(crate) fn as_daemon<T>(f: impl FnOnce() -> T) -> T {
    let (uid, gid) = current_fs_ids();
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if (uid, gid) == (euid, egid) {
        return f();
    }
    // SAFETY: as in `act_as`; the previous ids are restored right after `f`.
    unsafe {
        libc::setfsuid(euid);
        libc::setfsgid(egid);
    }
    let result = f();
    // SAFETY: as above.
    unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
    }
    result
}

/// The user this thread acts for, if any (see [`act_as`]).
pub(crate) fn acting_for() -> Option<(u32, u32)> {
    ACTING_FOR.with(Cell::get)
}

fn current_fs_ids() -> (u32, u32) {
    // SAFETY: an invalid id (-1) changes nothing and returns the current one.
    unsafe {
        (
            libc::setfsuid(u32::MAX) as u32,
            libc::setfsgid(u32::MAX) as u32,
        )
    }
}

fn set_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: the raw syscall reads `groups.len()` ids from a live slice and changes only
    // this thread's credentials.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes a subprocess run as the user this thread acts for, if any: exec would otherwise
/// give it the daemon's own file access back.
pub(crate) fn as_caller(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = acting_for() {
        command.uid(uid).gid(gid);
    }
    command
}
