//! The policy file format (seccompiler's JSON): what parses, what a policy must not be,
//! and the program it compiles to. Free of the rest of the library, so that the build
//! script compiles the built-in policies with this same code (see engine/build.rs).
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::bpf::{self, BpfInstruction};
use crate::syscalls;

pub const ALLOWLIST: &str = "allowlist";
pub const DENYLIST: &str = "denylist";
/// The filters of every policy, in install order.
pub const FILTER_NAMES: [&str; 2] = [ALLOWLIST, DENYLIST];

/// Why a policy file gives no program.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("not a policy")]
    Parse(#[source] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Compile(String),
}

/// Validates a policy (see [`validate`]) and compiles it for x86_64 into one program that
/// starts with [`bpf::ABI_CHECK`].
pub fn program(source_json: &[u8]) -> Result<Vec<BpfInstruction>, ProgramError> {
    if std::env::consts::ARCH != "x86_64" {
        return Err(ProgramError::Invalid(format!(
            "policies use x86_64 syscall numbers and this build targets {}",
            std::env::consts::ARCH
        )));
    }
    let sources: BTreeMap<String, FilterSource> =
        serde_json::from_slice(source_json).map_err(ProgramError::Parse)?;
    let (allowlist, denylist) = validate(&sources).map_err(ProgramError::Invalid)?;
    let compile_failed = ProgramError::Compile;
    let mut rules: BTreeMap<u32, bpf::SyscallRules> = BTreeMap::new();
    for (filter, denies) in [(denylist, true), (allowlist, false)] {
        for rule in &filter.filter {
            let number = syscalls::number(&rule.syscall).ok_or_else(|| {
                compile_failed(format!("unknown x86_64 syscall `{}`", rule.syscall))
            })?;
            let conditions = rule
                .args
                .iter()
                .flatten()
                .map(ConditionSource::compiled)
                .collect();
            let syscall = rules.entry(number).or_default();
            if denies {
                syscall.deny.push(conditions);
            } else {
                syscall.allow.push(conditions);
            }
        }
    }
    let errno = |action: &ActionSource| match action {
        ActionSource::Errno(errno) => libc::SECCOMP_RET_ERRNO | errno,
        ActionSource::Allow => libc::SECCOMP_RET_ALLOW,
    };
    let actions = bpf::Actions {
        denied: errno(&denylist.match_action),
        unlisted: errno(&allowlist.mismatch_action),
    };
    bpf::compile(&rules, actions).map_err(compile_failed)
}

/// A filter of a policy file. Actions are limited to the two a policy may use, so KILL or
/// TRAP fails to parse; unknown fields (comments) are ignored.
#[derive(Deserialize)]
struct FilterSource {
    #[serde(alias = "default_action")]
    mismatch_action: ActionSource,
    #[serde(alias = "filter_action")]
    match_action: ActionSource,
    filter: Vec<RuleSource>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum ActionSource {
    Allow,
    Errno(u32),
}

#[derive(Deserialize)]
struct RuleSource {
    syscall: String,
    args: Option<Vec<ConditionSource>>,
}

#[derive(Deserialize)]
struct ConditionSource {
    index: u8,
    #[serde(rename = "type")]
    width: ArgWidth,
    op: bpf::Op,
    val: u64,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
enum ArgWidth {
    Dword,
    Qword,
}

impl ConditionSource {
    fn compiled(&self) -> bpf::Condition {
        bpf::Condition {
            index: self.index,
            qword: self.width == ArgWidth::Qword,
            op: self.op,
            value: self.val,
        }
    }
}

/// Checks what parses but a policy must not be, and returns its allowlist and denylist:
/// - exactly the filters `allowlist` (default errno, match allow) and `denylist` (default
///   allow, match errno), errnos between 1 and 4095;
/// - no syscall listed twice with the same conditions in one filter;
/// - no syscall listed both with and without conditions in one filter (the conditions
///   would be pointless: a sign of a mistake);
/// - nothing allowed and denied unconditionally at once.
fn validate(
    sources: &BTreeMap<String, FilterSource>,
) -> Result<(&FilterSource, &FilterSource), String> {
    if let Some(unknown) = sources
        .keys()
        .find(|name| !FILTER_NAMES.contains(&name.as_str()))
    {
        return Err(format!(
            "unknown filter `{unknown}`: a policy holds exactly `{ALLOWLIST}` and `{DENYLIST}`"
        ));
    }
    let filter = |name: &str| {
        sources
            .get(name)
            .ok_or_else(|| format!("missing filter `{name}`"))
    };
    let allowlist = filter(ALLOWLIST)?;
    let denylist = filter(DENYLIST)?;
    if !(matches!(allowlist.mismatch_action, ActionSource::Errno(_))
        && allowlist.match_action == ActionSource::Allow)
    {
        return Err(format!(
            "`{ALLOWLIST}` needs mismatch_action {{\"errno\": N}} and match_action \"allow\""
        ));
    }
    if !(denylist.mismatch_action == ActionSource::Allow
        && matches!(denylist.match_action, ActionSource::Errno(_)))
    {
        return Err(format!(
            "`{DENYLIST}` needs mismatch_action \"allow\" and match_action {{\"errno\": N}}"
        ));
    }
    for action in [&allowlist.mismatch_action, &denylist.match_action] {
        if let ActionSource::Errno(errno) = action {
            if !(1..=4095).contains(errno) {
                return Err(format!("errno {errno} is not between 1 and 4095"));
            }
        }
    }
    let allowed = rules_by_syscall(ALLOWLIST, allowlist)?;
    let denied = rules_by_syscall(DENYLIST, denylist)?;
    let unconditional = |rules: &Vec<Vec<bpf::Condition>>| rules.iter().any(Vec::is_empty);
    if let Some(syscall) = allowed
        .iter()
        .find(|(syscall, rules)| {
            unconditional(rules) && denied.get(*syscall).is_some_and(unconditional)
        })
        .map(|(syscall, _)| syscall)
    {
        return Err(format!(
            "{syscall} is both allowed and denied without conditions"
        ));
    }
    Ok((allowlist, denylist))
}

fn rules_by_syscall<'a>(
    filter_name: &str,
    filter: &'a FilterSource,
) -> Result<BTreeMap<&'a str, Vec<Vec<bpf::Condition>>>, String> {
    let mut by_syscall: BTreeMap<&str, Vec<Vec<bpf::Condition>>> = BTreeMap::new();
    for rule in &filter.filter {
        // The conditions of a rule are and-ed: rules are the same when their sorted
        // conditions are.
        let mut conditions: Vec<bpf::Condition> = rule
            .args
            .iter()
            .flatten()
            .map(ConditionSource::compiled)
            .collect();
        conditions.sort();
        let rules = by_syscall.entry(&rule.syscall).or_default();
        if rules.contains(&conditions) {
            return Err(format!(
                "`{filter_name}` lists {} twice with the same conditions",
                rule.syscall
            ));
        }
        if !rules.is_empty() && (conditions.is_empty() || rules.iter().any(Vec::is_empty)) {
            return Err(format!(
                "`{filter_name}` lists {} both with and without conditions (the conditions would be pointless)",
                rule.syscall
            ));
        }
        rules.push(conditions);
    }
    Ok(by_syscall)
}
