//! systemd socket activation: adopting the listening socket systemd passed.
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Takes ownership of descriptor 3, marked close-on-exec so no sandbox helper inherits it.
///
/// # Safety
///
/// Only in a process that `LISTEN_PID` names, and only once: systemd put the socket at
/// fd 3 for this process, so nothing else in it owns that descriptor, and a second call
/// would make two owners of it.
pub unsafe fn adopt_listen_fd() -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a plain descriptor number reads and sets flags of the descriptor
    // table only; it touches no memory of ours.
    let flags = unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(LISTEN_FDS_START, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd 3 is open (F_GETFD succeeded) and, by the socket-activation protocol,
    // belongs to this process and to no other owner in it; it is adopted exactly once
    // (this function's contract).
    Ok(unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) })
}
