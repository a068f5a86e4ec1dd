//! Raw calls used to install seccomp filters.
use std::io;

/// Whether PR_SET_NO_NEW_PRIVS is in force on the calling thread. Root (CAP_SYS_ADMIN) may
/// install filters without it, so the caller checks it to keep "filters imply
/// no_new_privs" true for every user.
pub(crate) fn no_new_privs() -> io::Result<bool> {
    nix::sys::prctl::get_no_new_privs().map_err(io::Error::from)
}

/// seccomp(SECCOMP_SET_MODE_FILTER) for the calling thread. Allocates nothing and makes a
/// single syscall, so it may run between fork and exec.
pub(crate) fn install_filter(program: &[libc::sock_filter]) -> io::Result<()> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` describes `program`, which outlives the call; the kernel only copies
    // the instructions in and never writes through the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_uint,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Spawns `command` with no_new_privs set and `programs` installed, in order, between fork
/// and exec, so tests can watch real programs run under a policy.
#[cfg(test)]
pub(crate) fn spawn_filtered(
    command: &mut std::process::Command,
    programs: Vec<Vec<libc::sock_filter>>,
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec; it only calls prctl and seccomp on
    // programs built before the fork, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            for program in &programs {
                install_filter(program)?;
            }
            Ok(())
        })
    };
    command.spawn()
}
