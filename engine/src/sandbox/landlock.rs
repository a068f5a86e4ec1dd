//! Landlock: the second wall behind the mount namespace. The build may read and execute
//! what its mounts show, write only its writable tmpfs mounts and device files, and
//! (ABI 6+) neither reach abstract unix sockets nor signal processes outside its domain.
//!
//! The profile names the Landlock ABI it was written for. The ruleset is created with
//! `CompatLevel::HardRequirement`, so a kernel older than that ABI makes the sandbox refuse
//! to start instead of silently dropping rights (hakoniwa's fail-open bug, Nix's best
//! effort). Operators of old kernels lower `landlock.abi` in their profile explicitly.
use landlock::{
    path_beneath_rules, Access, AccessFs, CompatLevel, Compatible, RestrictionStatus, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::sandbox::error::{Layer, StepError};
use crate::sandbox::spec::SandboxSpec;

/// The lowest ABI a profile may name: file-system rules need ABI 1.
pub const MIN_ABI: u8 = 1;
/// The newest ABI this code has rules for.
pub const MAX_ABI: u8 = 7;
/// Scopes (abstract unix sockets, signals) arrived in ABI 6.
const SCOPES_ABI: u8 = 6;

pub(crate) fn restrict(spec: &SandboxSpec) -> Result<RestrictionStatus, StepError> {
    let abi = ABI::from(i32::from(spec.landlock_abi));
    let fail = |what: &'static str| {
        move |err: landlock::RulesetError| {
            StepError::new(
                Layer::Landlock,
                what,
                "landlock",
                None,
                std::io::Error::other(crate::errors::error_chain(&err)),
            )
        }
    };
    let all = AccessFs::from_all(abi);
    let read_exec = AccessFs::from_read(abi);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let device = device & all;

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .map_err(fail("handle file-system access"))?;
    if spec.landlock_abi >= SCOPES_ABI {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(fail("scope abstract unix sockets and signals"))?;
    }
    let writable = [&spec.paths.build_dir, &spec.paths.home, &spec.paths.tmp];
    let status = ruleset
        .create()
        .map_err(fail("create the ruleset"))?
        .add_rules(path_beneath_rules(["/"], read_exec))
        .map_err(fail("allow reading the sandbox root"))?
        .add_rules(path_beneath_rules(writable, all))
        .map_err(fail("allow writing the build, home and tmp dirs"))?
        .add_rules(path_beneath_rules(["/dev/shm"], all))
        .map_err(fail("allow writing /dev/shm"))?
        .add_rules(path_beneath_rules(["/dev", "/proc"], device))
        .map_err(fail("allow device files"))?
        .restrict_self()
        .map_err(fail("restrict the build"))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(StepError::refused(
            Layer::Landlock,
            "enforce the ruleset",
            format!(
                "the kernel enforced it only partly ({:?}) for ABI {}",
                status.ruleset, spec.landlock_abi
            ),
        ));
    }
    Ok(status)
}
