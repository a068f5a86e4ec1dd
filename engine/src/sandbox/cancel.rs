//! Cancelling sandboxes from another thread: the daemon's `cancel` route, for a job
//! whose runs (one, or the two or three of a dual build) were started on threads it
//! does not control.
//!
//! Each launch registers a pidfd of its helper; cancelling SIGKILLs every registered
//! helper, and any helper registered later is killed as it registers. A helper's death
//! takes its sandbox with it (init has a parent-death signal; the pid namespace dies
//! with init). pidfds make a late kill harmless: they never reach a reused pid.
use std::os::fd::OwnedFd;
use std::sync::Mutex;

#[derive(Default)]
pub struct Cancel {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cancelled: bool,
    helpers: Vec<OwnedFd>,
}

impl Cancel {
    /// Kills every sandbox registered so far and every one registered from now on.
    /// Returns how many running helpers were signalled.
    pub fn cancel(&self) -> usize {
        let mut state = self.lock();
        state.cancelled = true;
        state
            .helpers
            .iter()
            .filter(|pidfd| crate::sys::process::pidfd_kill(pidfd).is_ok())
            .count()
    }

    pub fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }

    /// Called by the launcher right after spawning a helper (before it can be reaped).
    pub(crate) fn register(&self, pidfd: OwnedFd) {
        let mut state = self.lock();
        if state.cancelled {
            let _ = crate::sys::process::pidfd_kill(&pidfd);
        }
        state.helpers.push(pidfd);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding the lock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
