//! The end of a started helper: killed and reaped on every failure (the guard), reaped
//! later when the run succeeded.
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::sandbox::cgroup::BuildCgroup;

/// A started helper that `run` is not finished with. Dropped, which is how every failure
/// before the reports are read ends it (an early helper nobody sent a spec to included),
/// it is killed (its init dies with it) and reaped; the consuming methods end it on the
/// way out of a run instead.
pub(super) struct HelperGuard(Pid);

impl HelperGuard {
    pub(super) fn new(helper: Pid) -> HelperGuard {
        HelperGuard(helper)
    }

    pub(super) fn pid(&self) -> Pid {
        self.0
    }

    /// Reaps the helper, which has exited or is about to; describes how it ended.
    pub(super) fn wait(self) -> std::io::Result<String> {
        wait_for(self.disarm())
    }

    /// Reaps a helper that is exiting, and removes its build's (empty) cgroup, without
    /// making the caller wait for either. Inside the daemon, a thread of its blocking pool
    /// does both: the job's end reaches its client without waiting for a cgroup's rmdir on
    /// every hierarchy. A process without a runtime (the CLI, which exits right after)
    /// removes the cgroup now and starts no thread for the helper, which cost 0.1-0.2 ms of
    /// every `hermetic run`: the helper is reaped by the next launch in the process if it
    /// has exited by then, else inherited by init (or the nearest subreaper) when the
    /// process exits, as any orphan is.
    pub(super) fn reap_in_background(self, cgroup: Option<BuildCgroup>) {
        let helper = self.disarm();
        if !crate::background::in_runtime() {
            drop(cgroup);
            static EXITING_HELPERS: std::sync::Mutex<Vec<Pid>> = std::sync::Mutex::new(Vec::new());
            let mut exiting = EXITING_HELPERS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            exiting.retain(|&pid| {
                matches!(
                    waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive)
                )
            });
            exiting.push(helper);
            return;
        }
        let reaper = crate::background::spawn("hermetic-reap", move || {
            drop(cgroup);
            wait_for(helper)
        });
        if reaper.is_err() {
            // No thread to spare (the work, cgroup included, was dropped, which removed
            // it): wait here rather than leave a zombie behind.
            let _ = wait_for(helper);
        }
    }

    fn disarm(self) -> Pid {
        let helper = self.0;
        std::mem::forget(self);
        helper
    }
}

impl Drop for HelperGuard {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = wait_for(self.0);
    }
}

/// Reaps the helper; describes how it ended.
fn wait_for(helper: Pid) -> std::io::Result<String> {
    let status = loop {
        match waitpid(helper, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    Ok(match status {
        WaitStatus::Exited(_, code) => format!("exit status: {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        other => format!("{other:?}"),
    })
}
