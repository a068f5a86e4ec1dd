//! The ways to start a helper, as a child of the launcher: a plain fork of a launcher that
//! is single-threaded (the CLI), the daemon's zygote, or a re-exec of /proc/self/exe; and
//! the pipes, socket and descriptor table every helper gets ([`Channels`]).
use std::fs::File;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Command;

use nix::unistd::Pid;

use super::reaping::HelperGuard;
use super::spec_sender::SpecSender;
use super::{source_failed, Launch};
use crate::errors::Chain;
use crate::sandbox::error::SandboxError;
use crate::sandbox::helper::HELPER_ARG;
use crate::sandbox::message::{
    Provision, ARTIFACT_FD, FAILED_TREE_FD, MESSAGE_FD, PROVISION_FD, SOURCE_FD, SPEC_FD,
};
use crate::sandbox::source::send_if_it_fits;
use crate::sandbox::spec::SandboxSpec;
use crate::sys::process::{fork_with_fds, raw, spawn_with_fds, Forked};

/// The pipes and socket between a launcher and its helper, with the helper's /dev/null.
pub(super) struct Channels {
    pub(super) null: File,
    spec_read: OwnedFd,
    spec_write: OwnedFd,
    message_read: OwnedFd,
    message_write: OwnedFd,
    provision: OwnedFd,
    provision_for_build: OwnedFd,
}

impl Channels {
    pub(super) fn open() -> Result<Channels, SandboxError> {
        let protocol = |step: &'static str| {
            move |source: std::io::Error| SandboxError::Protocol { step, source }
        };
        let (spec_read, spec_write) = pipe().map_err(protocol("create the spec pipe"))?;
        let (message_read, message_write) = pipe().map_err(protocol("create the message pipe"))?;
        let (provision, provision_for_build) =
            Provision::socket().map_err(protocol("create the provision socket"))?;
        let null = File::open("/dev/null").map_err(protocol("open /dev/null for the helper"))?;
        Ok(Channels {
            null,
            spec_read,
            spec_write,
            message_read,
            message_write,
            provision,
            provision_for_build,
        })
    }

    /// The helper's descriptor table every helper gets (source → target): stdio with
    /// `stdout` and `stderr` for the build, the spec, the reports, the provision socket.
    pub(super) fn helper_fds(&self, stdout: &OwnedFd, stderr: &OwnedFd) -> Vec<(RawFd, RawFd)> {
        vec![
            (raw(&self.null), 0),
            (raw(stdout), 1),
            (raw(stderr), 2),
            (raw(&self.spec_read), SPEC_FD),
            (raw(&self.message_write), MESSAGE_FD),
            (raw(&self.provision_for_build), PROVISION_FD),
        ]
    }

    /// Once a forked helper has its copies: the launcher's ends (spec, reports,
    /// provision); the helper's ends are closed here.
    pub(super) fn launcher_ends(self) -> (File, OwnedFd, OwnedFd) {
        (
            File::from(self.spec_write),
            self.message_read,
            self.provision,
        )
    }
}

/// A started helper, as `run` goes on with it.
pub(super) struct Started {
    pub(super) helper: HelperGuard,
    pub(super) message_read: OwnedFd,
    pub(super) provision: OwnedFd,
    /// A source too large for its pipe, still to be sent (by a thread).
    pub(super) source_to_stream: Option<(PathBuf, File)>,
    /// What the source sent already left out (sockets, fifos).
    pub(super) source_left_out: Vec<PathBuf>,
}

/// Starts a helper for `spec` now, with the launch's streams and files.
pub(super) fn start_with_spec(
    spec: &SandboxSpec,
    launch: &Launch<'_>,
    failed_tree: Option<&File>,
) -> Result<Started, SandboxError> {
    let channels = Channels::open()?;
    let mut fds = channels.helper_fds(&launch.stdout, &launch.stderr);
    if let Some(artifact) = &launch.artifact {
        fds.push((raw(artifact), ARTIFACT_FD));
    }
    fds.push((raw(failed_tree.unwrap_or(&channels.null)), FAILED_TREE_FD));
    // The source is read here, with the caller's privileges, and sent to the sandbox's
    // init (see source.rs): all of it now when it fits the pipe, else by a thread while
    // init unpacks it.
    let mut source_to_stream = None;
    let mut source_left_out = Vec::new();
    let source_read = match &spec.source {
        Some(dir) => {
            let (read, write) = pipe().map_err(|source| SandboxError::Protocol {
                step: "create the source pipe",
                source,
            })?;
            let write = File::from(write);
            match send_if_it_fits(dir, spec.variation.reverse_source_order, &write)
                .map_err(source_failed)?
            {
                Some(left_out) => source_left_out = left_out,
                None => source_to_stream = Some((dir.clone(), write)),
            }
            fds.push((raw(&read), SOURCE_FD));
            Some(read)
        }
        None => None,
    };
    let Channels {
        spec_write,
        message_read,
        provision,
        ..
    } = channels;
    let helper = HelperGuard::new(start_helper(&fds, spec, File::from(spec_write))?);
    // The helper's ends, which it has copies of now.
    drop((channels.null, channels.spec_read, channels.message_write));
    drop((channels.provision_for_build, source_read));
    Ok(Started {
        helper,
        message_read,
        provision,
        source_to_stream,
        source_left_out,
    })
}

/// Starts the helper with `fds` (source → target) in place, as a child of this process:
/// through the daemon's zygote when there is one; else by forking this process when it is
/// single-threaded (the CLI), which saves an exec and the spec's encoding (the child has it
/// in memory); else by exec'ing this binary again. A helper that is not forked from here
/// reads the spec from `spec_pipe`.
fn start_helper(
    fds: &[(RawFd, RawFd)],
    spec: &SandboxSpec,
    spec_pipe: File,
) -> Result<Pid, SandboxError> {
    let spawn_failed = |source| SandboxError::SpawnHelper {
        program: "/proc/self/exe".into(),
        source,
    };
    let zygote = crate::sandbox::zygote::running();
    if zygote.is_none() {
        // SAFETY: the child goes straight into the helper and ends in `exit_now`, never
        // returning into this launcher's frames or touching their descriptor objects.
        match unsafe { fork_with_fds(fds) }.map_err(spawn_failed)? {
            Some(Forked::Child) => {
                // SAFETY: a single-threaded child of fork_with_fds, which placed the
                // helper's descriptors; the launcher's objects that own descriptors are
                // never used or dropped in it, as it ends the process with the status.
                let status = unsafe {
                    crate::sandbox::helper::helper_main(crate::sandbox::helper::Start::ForkedWith(
                        spec,
                    ))
                };
                crate::sys::process::exit_now(status)
            }
            Some(Forked::Parent { child }) => return Ok(child),
            None => {}
        }
    }
    let spec_sender = SpecSender::start(spec, spec_pipe)?;
    if let Some(zygote) = zygote {
        match zygote.start_helper(fds) {
            Ok(helper) => {
                spec_sender.finish();
                return Ok(helper);
            }
            // The zygote answered: its fork failed, as any other would (a pids limit).
            Err(err) if crate::sandbox::zygote::running().is_some() => {
                return Err(spawn_failed(err))
            }
            Err(err) => {
                tracing::warn!(
                    "the sandbox zygote failed, exec'ing helpers from now on: {}",
                    Chain(&err)
                )
            }
        }
    }
    let mut command = Command::new("/proc/self/exe");
    command.arg(HELPER_ARG).env_clear();
    let helper = spawn_with_fds(&mut command, fds).map_err(spawn_failed)?;
    spec_sender.finish();
    Ok(Pid::from_raw(helper.id() as i32))
}

pub(super) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}
