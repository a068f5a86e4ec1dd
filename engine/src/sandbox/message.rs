//! The channels between the launcher and the sandbox, and their fixed descriptor numbers.
//! The reports: one JSON object per line on a pipe, which the helper, the sandbox's init
//! and the build child (until it execs) all write to; the launcher reads until init says
//! it finished, or until every copy of the pipe is closed. The other way, the provision
//! socket: init's root tree first ([`TreeHandover`], for a rootfs or image root), then the
//! build child's cgroup ([`Provision`]).
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{OwnedFd, RawFd};

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::archive::manifest::Manifest;
use crate::sandbox::error::{Layer, StepError};

/// Descriptor numbers the helper receives (fixed, so no argument parsing is needed).
pub(crate) const SPEC_FD: RawFd = 3;
pub(crate) const MESSAGE_FD: RawFd = 4;
pub(crate) const ARTIFACT_FD: RawFd = 5;
pub(crate) const SOURCE_FD: RawFd = 6;
/// A SOCK_SEQPACKET socket on which the launcher hands the build child what it prepares
/// while the sandbox is being built (see `launch::Provision`).
pub(crate) const PROVISION_FD: RawFd = 7;
/// Where init archives the whole build dir when the build fails, if the spec says
/// `keep_failed_tree`; /dev/null otherwise (always placed, so that nothing a forking
/// launcher left open at this number survives into the helper).
pub(crate) const FAILED_TREE_FD: RawFd = 8;
/// The first descriptor number the helper does not use.
pub(crate) const FIRST_UNUSED_FD: RawFd = 9;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HelperMessage {
    /// A layer could not be applied; the build did not start.
    SetupFailed { layer: Layer, message: String },
    /// Every layer is applied; the build child is about to exec.
    Started(Confinement),
    /// execve failed in the build child (after every layer was applied).
    ExecFailed { program: String, errno: i32 },
    /// The build's main process ended; every other process of the build is dead too.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The wall-clock limit was reached. From the helper: the whole sandbox was killed.
    /// From init (which times the build only when the spec says `keep_failed_tree`):
    /// every process of the build was killed, and init goes on to archive the tree.
    TimedOut { after_ms: u64 },
    /// The outputs were archived into the artifact descriptor.
    Packed {
        manifest: Manifest,
        sha256: String,
        blake3: String,
        size: u64,
    },
    /// The outputs could not be archived (missing path, symlink, unsupported file type).
    PackFailed { message: String },
    /// The build failed, and the whole build dir was archived into `FAILED_TREE_FD`,
    /// except the entries in `left_out` (what no archive holds: fifos, sockets, ...).
    FailedTreePacked {
        manifest: Manifest,
        left_out: Vec<String>,
    },
    /// The failed build's dir could not be archived (say, a directory in it could not be
    /// read).
    FailedTreePackFailed { message: String },
    /// Init's last message: it has reported everything, and every process of the build
    /// has been reaped, so the build cgroup is empty. Only init and the helper remain, and
    /// they are exiting.
    Finished,
}

/// The layers in force for the build, which the build child reports just before it execs:
/// the namespaces, the helper's (handed down through init's memory: a report of the
/// helper's own could wake the launcher onto the helper's CPU while the helper's path is
/// the one the build waits for) and its own, then what it applied to itself, read back
/// where the kernel tells.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Confinement {
    /// In the order they were created.
    pub namespaces: Vec<Namespace>,
    /// The capabilities the build holds or could inherit: "none", or their names.
    pub capabilities: String,
    pub no_new_privs: bool,
    /// The Landlock ABI the enforced rules were written for (the profile's).
    pub landlock_abi: u8,
    /// The newest Landlock ABI the kernel offers.
    pub kernel_landlock_abi: u8,
    pub seccomp_policy: String,
    pub seccomp_sha256: String,
}

/// A namespace of the sandbox. The order of the variants is the order reports list them
/// in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    User,
    Mount,
    Pid,
    Net,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl Namespace {
    /// Its name in reports (as on the report channel).
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The flag that creates it, for unshare(2).
    pub(crate) fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // nix has no name for it.
            Namespace::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }
}

/// The writing end. Every message is written with a single write(2) call.
pub(crate) struct MessageSink {
    pipe: File,
}

impl MessageSink {
    /// Takes ownership of the helper's message descriptor.
    ///
    /// # Safety
    ///
    /// As for [`take_fd`] with `MESSAGE_FD`.
    pub(crate) unsafe fn from_helper_fd() -> Self {
        // SAFETY: MESSAGE_FD is open and owned by nothing else (this function's contract).
        let pipe = unsafe { take_fd(MESSAGE_FD) };
        MessageSink { pipe }
    }

    pub(crate) fn send(&mut self, message: &HelperMessage) {
        let mut line = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        // The launcher may have gone away; there is nobody left to tell.
        let _ = self.pipe.write_all(&line);
    }

    pub(crate) fn setup_failed(&mut self, err: &StepError) {
        self.send(&HelperMessage::SetupFailed {
            layer: err.layer,
            message: crate::errors::error_chain(err),
        });
    }
}

/// Reads messages until [`HelperMessage::Finished`] (returns true) or EOF (false).
pub(crate) fn read_messages(
    pipe: File,
    mut on_message: impl FnMut(HelperMessage),
) -> io::Result<bool> {
    let reader = io::BufReader::with_capacity(64 * 1024, pipe);
    for line in reader.lines() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let message = serde_json::from_str(&line)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        if matches!(message, HelperMessage::Finished) {
            return Ok(true);
        }
        on_message(message);
    }
    Ok(false)
}

/// How many bytes `pipe` holds: as many as can be written to it while it is empty, with
/// nobody reading yet, without blocking. None when the kernel does not say.
pub(crate) fn pipe_capacity(pipe: &File) -> Option<usize> {
    nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_GETPIPE_SZ)
        .ok()
        .and_then(|capacity| usize::try_from(capacity).ok())
}

/// Takes ownership of one of the fixed descriptors the launcher placed in the helper.
///
/// # Safety
///
/// `fd` must be open, owned by no other object of this process, and taken once.
pub(crate) unsafe fn take_fd(fd: RawFd) -> File {
    // SAFETY: the same contract as this function's.
    unsafe { crate::sys::process::file_from_inherited_fd(fd) }
}

/// What the launcher hands the build child over the provision socket once the sandbox is
/// being built: the build cgroup's join files (none without a cgroup). One packet: a JSON
/// list of the files' paths (for error messages), the files themselves as SCM_RIGHTS.
pub(crate) struct Provision {
    pub(crate) cgroup: Vec<(std::path::PathBuf, File)>,
}

impl Provision {
    /// (the launcher's end, the end placed at `PROVISION_FD`), both close-on-exec.
    pub(crate) fn socket() -> std::io::Result<(OwnedFd, OwnedFd)> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(std::io::Error::from)
    }

    pub(crate) fn send(&self, socket: &OwnedFd) -> std::io::Result<()> {
        let paths: Vec<&std::path::Path> =
            self.cgroup.iter().map(|(path, _)| path.as_path()).collect();
        let fds: Vec<RawFd> = self
            .cgroup
            .iter()
            .map(|(_, file)| std::os::fd::AsRawFd::as_raw_fd(file))
            .collect();
        let bytes = serde_json::to_vec(&paths).map_err(std::io::Error::other)?;
        crate::sys::process::send_with_fds(socket, &bytes, &fds)
    }

    /// In the build child: waits for the launcher's packet.
    pub(crate) fn receive(socket: File) -> Result<Vec<(std::path::PathBuf, File)>, StepError> {
        let failed = |reason: String| {
            StepError::refused(
                Layer::Cgroup,
                "receive the build cgroup from the launcher",
                reason,
            )
        };
        let socket = OwnedFd::from(socket);
        // A few paths below /sys/fs/cgroup; a packet that does not fit is reported as such
        // (MSG_TRUNC), and a smaller buffer is fewer pages for the build child to touch.
        let mut buffer = vec![0u8; 8 * 1024];
        let (length, fds) = crate::sys::process::recv_with_fds(&socket, &mut buffer)
            .map_err(|err| failed(err.to_string()))?
            .ok_or_else(|| failed("the launcher closed the provision socket".into()))?;
        let paths: Vec<std::path::PathBuf> = serde_json::from_slice(&buffer[..length])
            .map_err(|err| failed(format!("malformed packet: {err}")))?;
        if paths.len() != fds.len() {
            return Err(failed(format!(
                "{} paths for {} descriptors",
                paths.len(),
                fds.len()
            )));
        }
        Ok(paths
            .into_iter()
            .zip(fds.into_iter().map(File::from))
            .collect())
    }
}

/// The tree of a rootfs or image root, handed to init as the provision socket's first
/// packet: a detached mount of it (`sys::mount::clone_tree`) when the launcher could make
/// one, else an empty packet, and init finds the tree by its path. A root launcher's
/// sandbox runs as `nobody`, who may not search the directories down to the tree (a root
/// daemon's state dir is 0700); the detached mount needs no path. An unprivileged
/// launcher cannot clone mounts, and its sandbox reaches its own tree by path.
pub(crate) struct TreeHandover;

impl TreeHandover {
    const PACKET: &'static [u8] = b"tree";

    pub(crate) fn send(socket: &OwnedFd, tree: Option<&OwnedFd>) -> std::io::Result<()> {
        let fds: Vec<RawFd> = tree
            .iter()
            .map(|fd| std::os::fd::AsRawFd::as_raw_fd(*fd))
            .collect();
        crate::sys::process::send_with_fds(socket, Self::PACKET, &fds)
    }

    /// In init: waits for the launcher's packet on PROVISION_FD, leaving that descriptor
    /// to the build child.
    ///
    /// # Safety
    ///
    /// PROVISION_FD must be open, placed by the launcher, and owned by no object of this
    /// process.
    pub(crate) unsafe fn receive() -> Result<Option<OwnedFd>, StepError> {
        let failed = |reason: String| {
            StepError::refused(
                Layer::Filesystem,
                "receive the root tree from the launcher",
                reason,
            )
        };
        // SAFETY: PROVISION_FD is open and nothing in this process owns it (this
        // function's contract); init never closes it.
        let socket = unsafe { crate::sys::process::borrow_inherited_fd(PROVISION_FD) };
        let mut buffer = [0u8; 16];
        let (length, mut fds) = crate::sys::process::recv_with_fds(&socket, &mut buffer)
            .map_err(|err| failed(err.to_string()))?
            .ok_or_else(|| failed("the launcher closed the provision socket".into()))?;
        if &buffer[..length] != Self::PACKET || fds.len() > 1 {
            return Err(failed(format!(
                "a packet of {length} bytes and {} descriptors where the tree was due",
                fds.len()
            )));
        }
        Ok(fds.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::Namespace;

    /// The launcher reports namespaces by [`Namespace::name`]; the channel carries serde's
    /// names. They must agree.
    #[test]
    fn namespaces_have_one_name() {
        for namespace in [
            Namespace::User,
            Namespace::Mount,
            Namespace::Pid,
            Namespace::Net,
            Namespace::Uts,
            Namespace::Ipc,
            Namespace::Cgroup,
            Namespace::Time,
        ] {
            assert_eq!(
                serde_json::to_value(namespace).unwrap(),
                namespace.name(),
                "{namespace:?}"
            );
        }
    }
}
