//! The sandbox layers a run actually had, as the helper and init report them.
use serde::{Deserialize, Serialize};

/// The sandbox layers actually in force for a run, as the helper and init applied them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AppliedLayers {
    pub namespaces: Vec<String>,
    /// The Landlock ABI the enforced rules were written for.
    pub landlock_abi: u8,
    /// The newest Landlock ABI the kernel offers.
    pub kernel_landlock_abi: u8,
    pub seccomp_policy: String,
    pub seccomp_sha256: String,
    pub cgroup: Option<CgroupReport>,
    pub no_new_privs: bool,
    pub capabilities: String,
}

/// What each cgroup controller ended up on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CgroupReport {
    pub pids: Option<String>,
    pub memory: Option<String>,
    pub cpu: Option<String>,
    pub swap_limited: bool,
}
