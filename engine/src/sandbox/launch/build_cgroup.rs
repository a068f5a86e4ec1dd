//! The build's cgroup: made by the launcher while the sandbox is being built, and handed to
//! the build child over the provision socket.
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::errors::Chain;
use crate::sandbox::cgroup::{BuildCgroup, CgroupLimits};
use crate::sandbox::error::SandboxError;
use crate::sandbox::message::Provision;
use crate::sandbox::profile::CgroupPolicy;
use crate::sandbox::spec::SandboxSpec;

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

fn launcher_started_ns() -> u128 {
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos())
    })
}

/// The build's cgroup, or none when the profile allows that and the host has none.
pub(super) fn build_cgroup(
    spec: &SandboxSpec,
    policy: CgroupPolicy,
) -> Result<Option<BuildCgroup>, SandboxError> {
    // The launcher's start time tells apart two launchers that got the same pid.
    let name = format!(
        "hermetic-{}-{:x}-{}",
        std::process::id(),
        launcher_started_ns(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let limits = CgroupLimits {
        pids: spec.limits.pids,
        memory_bytes: spec.limits.memory_bytes,
        cpus: spec.cpu_set.len(),
    };
    match BuildCgroup::create(&name, limits) {
        Ok(cgroup) => Ok(Some(cgroup)),
        Err(err) if policy == CgroupPolicy::Optional => {
            tracing::warn!("running without cgroup limits: {}", Chain(&err));
            Ok(None)
        }
        Err(err) => Err(SandboxError::setup(&err)),
    }
}

/// Sends the build child its cgroup's join files (none without a cgroup).
pub(super) fn hand_over(
    cgroup: Option<&BuildCgroup>,
    provision: &OwnedFd,
) -> Result<(), SandboxError> {
    let files = match cgroup {
        Some(cgroup) => cgroup
            .open_join_files()
            .map_err(|err| SandboxError::setup(&err))?,
        None => Vec::new(),
    };
    // A sandbox that failed already has closed its end; its report explains why.
    let _ = Provision { cgroup: files }.send(provision);
    Ok(())
}
