//! The daemon's zygote: a helper image exec'd once, which forks a ready helper for every
//! launch. Exec'ing and linking a fresh helper costs more than the rest of a small
//! sandbox's set-up, and the daemon itself may not fork (it runs a tokio runtime).
//!
//! The zygote is single-threaded and does nothing but wait on its control socket. Each
//! request carries the helper's descriptors (stdio, spec, messages, artifact, source) and
//! the numbers they go to; the zygote forks with CLONE_PARENT, so the new helper is the
//! daemon's own child: the launcher waits for it, opens its pidfd and kills it exactly as
//! one it had exec'd itself. The zygote replies with the helper's pid, or an errno.
//!
//! Wire format (SOCK_SEQPACKET, one message each way):
//! - request: `[PROTOCOL_VERSION, n, target₁ … targetₙ as i32 LE]`, with n descriptors
//!   in SCM_RIGHTS, in the same order;
//! - reply: `[PROTOCOL_VERSION, pid or -errno as i32 LE]`.
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::unistd::Pid;

use crate::sys::process::{
    close_from, exit_now, fork_sibling_with_fds, raw, recv_with_fds, send_with_fds, spawn_with_fds,
    Forked, MAX_PASSED_FDS,
};

/// argv[1] that turns any hermetic binary into the zygote.
pub const ZYGOTE_ARG: &str = "__hermetic-sandbox-zygote";

/// The zygote and the daemon are the same binary; the version still guards against a
/// binary replaced on disk between the daemon's start and the zygote's exec.
const PROTOCOL_VERSION: u8 = 1;
/// The control socket's number in the zygote.
const CONTROL_FD: RawFd = 3;
const REQUEST_BYTES: usize = 2 + 4 * MAX_PASSED_FDS;
const REPLY_BYTES: usize = 5;

/// The launcher's end of a running zygote.
pub struct Zygote {
    control: Mutex<OwnedFd>,
    pid: Pid,
    /// Set when the zygote stopped answering; launches then exec helpers again.
    failed: AtomicBool,
}

static ZYGOTE: OnceLock<Zygote> = OnceLock::new();

/// Starts this process's zygote. Call it once, from the thread that lives as long as the
/// process (helpers die with it: their parent-death signal follows that thread), before
/// any launch. Launches without a zygote exec or fork their helper instead.
pub fn start() -> io::Result<()> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg(ZYGOTE_ARG)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let child = spawn_with_fds(&mut command, &[(raw(&theirs), CONTROL_FD)])?;
    let zygote = Zygote {
        control: Mutex::new(ours),
        pid: Pid::from_raw(child.id() as i32),
        failed: AtomicBool::new(false),
    };
    ZYGOTE
        .set(zygote)
        .map_err(|_| io::Error::other("the zygote was already started"))
}

/// The running zygote, unless none was started or it failed.
pub(crate) fn running() -> Option<&'static Zygote> {
    ZYGOTE
        .get()
        .filter(|zygote| !zygote.failed.load(Ordering::Relaxed))
}

impl Zygote {
    /// A new helper with `fds` (source → target) in place, as a child of this process.
    /// A fork the zygote reports as failed (EAGAIN at a pids limit) fails this launch
    /// only; a zygote that stops answering properly is killed and never asked again.
    pub(crate) fn start_helper(&self, fds: &[(RawFd, RawFd)]) -> io::Result<Pid> {
        match self.request(fds) {
            Ok(forked) => forked,
            Err(broken) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    // Whatever state it is in, it is not trusted with another helper.
                    let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(self.pid, None);
                }
                Err(broken)
            }
        }
    }

    /// The zygote's answer (a helper's pid, or why its fork failed), or why there was no
    /// proper answer.
    fn request(&self, fds: &[(RawFd, RawFd)]) -> io::Result<io::Result<Pid>> {
        if fds.len() > MAX_PASSED_FDS {
            return Err(io::Error::other("too many descriptors for the zygote"));
        }
        let mut request = vec![PROTOCOL_VERSION, fds.len() as u8];
        for &(_, target) in fds {
            request.extend_from_slice(&target.to_le_bytes());
        }
        let sources: Vec<RawFd> = fds.iter().map(|&(source, _)| source).collect();
        let control = self
            .control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        send_with_fds(&control, &request, &sources)?;
        let mut reply = [0u8; REPLY_BYTES];
        let answered = recv_with_fds(&*control, &mut reply)?;
        drop(control);
        match answered {
            Some((REPLY_BYTES, passed)) if passed.is_empty() && reply[0] == PROTOCOL_VERSION => {
                let value = i32::from_le_bytes([reply[1], reply[2], reply[3], reply[4]]);
                Ok(if value > 0 {
                    Ok(Pid::from_raw(value))
                } else {
                    Err(io::Error::from_raw_os_error(-value))
                })
            }
            Some(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the zygote sent a malformed reply",
            )),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the zygote exited",
            )),
        }
    }
}

/// Called first thing in `main` (through `run_helper_if_requested`) when the process was
/// started as the zygote; never returns.
///
/// # Safety
///
/// The process must be single-threaded, have its control socket at `CONTROL_FD`, placed
/// by [`start`], and no object that owns a descriptor yet.
pub(crate) unsafe fn zygote_main() -> ! {
    // Whatever the daemon leaked to us would otherwise reach every helper.
    // SAFETY: no object owns a descriptor yet (this function's contract).
    if unsafe { close_from(CONTROL_FD + 1) }.is_err() {
        exit_now(1);
    }
    // SAFETY: `start` placed the control socket there, and nothing owns it yet (this
    // function's contract).
    let control = unsafe { crate::sys::process::file_from_inherited_fd(CONTROL_FD) };
    let control = OwnedFd::from(control);
    let daemon = nix::unistd::getppid();
    loop {
        let mut request = [0u8; REQUEST_BYTES];
        let (length, fds) = match recv_with_fds(&control, &mut request) {
            Ok(Some(received)) => received,
            // The daemon closed its end: it is exiting.
            Ok(None) => exit_now(0),
            Err(_) => exit_now(1),
        };
        let reply = match placement(&request[..length], &fds) {
            Some(placement) => fork_helper(&control, &placement, daemon),
            None => -libc::EINVAL,
        };
        drop(fds);
        let mut message = vec![PROTOCOL_VERSION];
        message.extend_from_slice(&reply.to_le_bytes());
        if send_with_fds(&control, &message, &[]).is_err() {
            exit_now(1);
        }
    }
}

/// The (source, target) table of a request, if it is well-formed.
fn placement(request: &[u8], fds: &[OwnedFd]) -> Option<Vec<(RawFd, RawFd)>> {
    let (&[version, count], targets) = request.split_first_chunk::<2>()?;
    if version != PROTOCOL_VERSION || count as usize != fds.len() || targets.len() != 4 * fds.len()
    {
        return None;
    }
    let targets = targets
        .chunks_exact(4)
        .map(|bytes| RawFd::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
    Some(fds.iter().map(AsRawFd::as_raw_fd).zip(targets).collect())
}

/// Forks a helper; in the parent returns its pid or -errno, in the child never returns.
fn fork_helper(control: &OwnedFd, placement: &[(RawFd, RawFd)], daemon: Pid) -> i32 {
    // SAFETY: the zygote is single-threaded (it starts no thread), and the child ends in
    // `exit_now` below without using or dropping the descriptor objects it inherited but
    // for closing the control socket's number when no placed descriptor took it.
    match unsafe { fork_sibling_with_fds(placement) } {
        Ok(Forked::Parent { child }) => child.as_raw(),
        Ok(Forked::Child) => {
            // The parent-death signal is set; if the daemon died before that, it never
            // comes, and nobody would wait for this helper.
            if nix::unistd::getppid() != daemon {
                exit_now(crate::sandbox::helper::SETUP_FAILED);
            }
            // The control socket sits on a number the helper uses; the placement above
            // replaced it unless the request left that number out.
            if !placement.iter().any(|&(_, target)| target == CONTROL_FD) {
                let _ = nix::unistd::close(control.as_raw_fd());
            }
            // SAFETY: a child of the single-threaded zygote, with the helper's
            // descriptors placed from the request; the objects that own descriptors here
            // (the request's, the control socket) are the zygote's, never used or dropped
            // again in this process, which exits with the helper's status.
            exit_now(unsafe {
                crate::sandbox::helper::helper_main(crate::sandbox::helper::Start::Fresh)
            })
        }
        Err(err) => -err.raw_os_error().unwrap_or(libc::EIO),
    }
}
