//! A helper started before its launcher has a spec (`hermetic run`'s), and handing it the
//! spec once there is one.
use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::cpu_split::CpuSplit;
use super::reaping::HelperGuard;
use super::source_failed;
use super::spec_sender::SpecSender;
use super::start::{pipe, Channels, Started};
use crate::sandbox::error::SandboxError;
use crate::sandbox::message::{FAILED_TREE_FD, SOURCE_FD};
use crate::sandbox::source::send_if_it_fits;
use crate::sandbox::spec::SandboxSpec;
use crate::sys::process::{fork_with_fds, raw, Forked};

/// A helper forked before its launcher has a spec: it creates the sandbox's namespaces
/// (0.6-0.9 ms here) while the launcher loads the profile and plans (about 0.4 ms of the
/// CLI's), then waits on its pipe for the spec. [`super::run`] hands it the spec and the
/// source. Dropped unused (the profile did not load, say), it is killed and reaped.
pub struct EarlyHelper {
    helper: HelperGuard,
    pub(super) started: Instant,
    spec_pipe: File,
    message_read: OwnedFd,
    provision: OwnedFd,
    source_pipe: File,
}

impl EarlyHelper {
    /// Forks a helper with `stdout` and `stderr` as the build's streams, when this process
    /// can fork one (single-threaded, no zygote: the CLI); None otherwise, and the launch
    /// starts its helper itself.
    pub fn start(stdout: &OwnedFd, stderr: &OwnedFd) -> Result<Option<EarlyHelper>, SandboxError> {
        if crate::sandbox::zygote::running().is_some() {
            return Ok(None);
        }
        let started = Instant::now();
        let channels = Channels::open()?;
        let (source_read, source_write) = pipe().map_err(|source| SandboxError::Protocol {
            step: "create the source pipe",
            source,
        })?;
        let mut fds = channels.helper_fds(stdout, stderr);
        fds.push((raw(&source_read), SOURCE_FD));
        fds.push((raw(&channels.null), FAILED_TREE_FD));
        // The launcher's planning and the helper's setup are the whole run's path; a short
        // slice keeps them from waiting out a kernel worker's (the previous sandbox's
        // teardown) on a busy CPU. A hint: a kernel without custom slices ignores it, and
        // the build child gives its own back (init.rs).
        let _ = crate::sys::process::set_scheduler_slice(Some(LAUNCH_SLICE));
        let split = CpuSplit::pin_here();
        // SAFETY: the child goes straight into the helper and ends in `exit_now`, never
        // returning into this launcher's frames or touching their descriptor objects.
        let forked = unsafe { fork_with_fds(&fds) };
        if let Ok(Some(Forked::Child)) = forked {
            if let Some(split) = &split {
                split.release_child();
            }
            // SAFETY: a single-threaded child of fork_with_fds, which placed the helper's
            // descriptors; the launcher's objects that own descriptors are never used or
            // dropped in it, as it ends the process with the status.
            let status = unsafe {
                crate::sandbox::helper::helper_main(crate::sandbox::helper::Start::ForkedEarly)
            };
            crate::sys::process::exit_now(status)
        }
        if let Some(split) = split {
            split.move_launcher();
        }
        match forked.map_err(|source| SandboxError::SpawnHelper {
            program: "/proc/self/exe".into(),
            source,
        })? {
            Some(Forked::Parent { child }) => {
                let (spec_pipe, message_read, provision) = channels.launcher_ends();
                Ok(Some(EarlyHelper {
                    helper: HelperGuard::new(child),
                    started,
                    spec_pipe,
                    message_read,
                    provision,
                    source_pipe: File::from(source_write),
                }))
            }
            // No fork: this process runs threads.
            _ => Ok(None),
        }
    }
}

/// The scheduler slice of a launcher that starts its helper early, and of the helper and
/// init (see `sys::process::set_scheduler_slice`): the shortest the kernel takes.
const LAUNCH_SLICE: Duration = Duration::from_micros(100);

/// Sends a helper started early its spec, then the source.
pub(super) fn hand_over_spec(
    early: EarlyHelper,
    spec: &SandboxSpec,
) -> Result<Started, SandboxError> {
    let EarlyHelper {
        helper,
        spec_pipe,
        message_read,
        provision,
        source_pipe,
        ..
    } = early;
    SpecSender::start(spec, spec_pipe)?.finish();
    let sent = match &spec.source {
        Some(dir) => send_if_it_fits(dir, spec.variation.reverse_source_order, &source_pipe)
            .map_err(source_failed)?,
        None => Some(Vec::new()),
    };
    Ok(Started {
        helper,
        message_read,
        provision,
        source_to_stream: match (&spec.source, &sent) {
            (Some(dir), None) => Some((dir.clone(), source_pipe)),
            _ => None,
        },
        source_left_out: sent.unwrap_or_default(),
    })
}
