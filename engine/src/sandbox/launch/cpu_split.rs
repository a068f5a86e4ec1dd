//! Where a launcher and the helper it starts early run, while both are on the run's path.
use nix::unistd::Pid;

/// Where the launcher and its early helper run. A forked child is often queued on its
/// parent's CPU even with another one idle, and then waits for the launcher's planning
/// instead of running beside it (the point of starting it early): in about half the runs
/// here. So the helper is born pinned to the launcher's CPU, warm and about to be free, and
/// the launcher moves to another one, whose wake-up its own slack absorbs; both then take
/// their CPU set back.
pub(super) struct CpuSplit {
    inherited: nix::sched::CpuSet,
    elsewhere: nix::sched::CpuSet,
}

impl CpuSplit {
    /// Pins the launcher to the CPU it runs on, so that the child it forks next starts
    /// there; None (and nothing changed) when it may use only one CPU.
    pub(super) fn pin_here() -> Option<CpuSplit> {
        use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
        let this_process = Pid::from_raw(0);
        let inherited = sched_getaffinity(this_process).ok()?;
        let here = sched_getcpu().ok()?;
        let mut elsewhere = inherited;
        elsewhere.unset(here).ok()?;
        if !(0..CpuSet::count()).any(|cpu| elsewhere.is_set(cpu) == Ok(true)) {
            return None;
        }
        let mut pinned = CpuSet::new();
        pinned.set(here).ok()?;
        sched_setaffinity(this_process, &pinned).ok()?;
        Some(CpuSplit {
            inherited,
            elsewhere,
        })
    }

    /// In the forked child: its CPU set back.
    pub(super) fn release_child(&self) {
        let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &self.inherited);
    }

    /// In the launcher: onto another CPU, then its CPU set back (where it stays).
    pub(super) fn move_launcher(self) {
        let this_process = Pid::from_raw(0);
        let _ = nix::sched::sched_setaffinity(this_process, &self.elsewhere);
        let _ = nix::sched::sched_setaffinity(this_process, &self.inherited);
    }
}
