//! systemd socket activation: adopting the listening socket systemd passed.
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Takes ownership of descriptor 3, marked close-on-exec so no sandbox helper inherits it.
/// Only for a process that `LISTEN_PID` names, once: systemd put the socket there for this
/// process, and nothing else in it has claimed fd 3 (the caller clears the variables).
pub fn adopt_listen_fd() -> io::Result<OwnedFd> {
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
    // belongs to this process and to no other owner in it; it is adopted exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) })
}
