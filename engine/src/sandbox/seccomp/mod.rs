//! Seccomp policies: JSON data in seccomp/, compiled to one BPF program (see [`bpf`]).
//!
//! A policy is a JSON file with two rule lists, in seccompiler's format:
//! - `allowlist`: every syscall a build needs; anything else fails with its errno (ENOSYS,
//!   which probing code such as glibc's clone3 → clone fallback understands);
//! - `denylist`: calls that must fail with EPERM, even where the allowlist allows them.
//!
//! seccomp/README.md describes the format and the reason for every denial; the format and
//! its compiler are the `hermetic-seccomp` crate beside the policies.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sys;

pub use hermetic_seccomp::BpfInstruction;
use hermetic_seccomp::{source, ProgramError};

/// The policies shipped with hermetic, by name.
pub const BUILTIN_POLICIES: &[(&str, &str)] =
    &[("default", include_str!("../../../../seccomp/default.json"))];

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("unknown seccomp policy `{name}` (built in: {builtin}); a path needs a '/' or a .json suffix")]
    UnknownPolicy { name: String, builtin: String },
    #[error("failed to read seccomp policy {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to parse seccomp policy {name}")]
    Parse {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid seccomp policy {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("failed to compile seccomp policy {name}: {reason}")]
    Compile { name: String, reason: String },
    #[error("refusing to install seccomp policy {name}: no_new_privs is not set on this thread (set PR_SET_NO_NEW_PRIVS first)")]
    NoNewPrivs { name: String },
    #[error("failed to install seccomp policy {name}: {step}")]
    Install {
        name: String,
        step: String,
        #[source]
        source: io::Error,
    },
}

/// A policy compiled to BPF, ready to send to the sandbox helper and install there.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "PolicyOnTheWire", try_from = "PolicyOnTheWire")]
pub struct CompiledPolicy {
    pub name: String,
    /// SHA-256 of the source JSON bytes, lowercase hex, for provenance records.
    pub sha256: String,
    /// Both lists as one program ([`bpf`]).
    pub program: Vec<BpfInstruction>,
}

/// How a policy travels to the helper. A built-in policy as this binary precompiled it
/// goes by name and digest alone: the helper is this same binary and has the same program,
/// which is most of a spec (6.5 KB of its 8), and encoding, sending and parsing it cost
/// ~50 us of every launch through the daemon's zygote. Any other policy carries its
/// program as one hex string of the instructions' bytes (struct sock_filter,
/// little-endian): one string parses far faster than hundreds of arrays.
#[derive(Serialize, Deserialize)]
struct PolicyOnTheWire {
    name: String,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    program: Option<HexProgram>,
}

impl From<CompiledPolicy> for PolicyOnTheWire {
    fn from(policy: CompiledPolicy) -> Self {
        let built_in = PRECOMPILED.iter().any(|(name, sha256, program)| {
            *name == policy.name && *sha256 == policy.sha256 && *program == policy.program
        });
        PolicyOnTheWire {
            name: policy.name,
            sha256: policy.sha256,
            program: (!built_in).then_some(HexProgram(policy.program)),
        }
    }
}

impl TryFrom<PolicyOnTheWire> for CompiledPolicy {
    type Error = String;

    fn try_from(wire: PolicyOnTheWire) -> Result<Self, String> {
        match wire.program {
            Some(HexProgram(program)) => Ok(CompiledPolicy {
                name: wire.name,
                sha256: wire.sha256,
                program,
            }),
            None => precompiled(&wire.name)
                .filter(|policy| policy.sha256 == wire.sha256)
                .ok_or_else(|| {
                    format!(
                        "seccomp policy {} (sha256 {}) comes without its program and is not \
                         built into this binary",
                        wire.name, wire.sha256
                    )
                }),
        }
    }
}

struct HexProgram(Vec<BpfInstruction>);

impl HexProgram {
    const BYTES: usize = 8;
}

impl Serialize for HexProgram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * Self::BYTES);
        for instruction in &self.0 {
            bytes.extend_from_slice(&instruction.code.to_le_bytes());
            bytes.extend_from_slice(&[instruction.jt, instruction.jf]);
            bytes.extend_from_slice(&instruction.k.to_le_bytes());
        }
        serializer.serialize_str(&hex::encode(bytes))
    }
}

impl<'de> Deserialize<'de> for HexProgram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let bytes = hex::decode(text.as_bytes()).map_err(D::Error::custom)?;
        if bytes.len() % Self::BYTES != 0 {
            return Err(D::Error::custom(
                "BPF program bytes are not whole instructions",
            ));
        }
        Ok(HexProgram(
            bytes
                .chunks_exact(Self::BYTES)
                .map(|b| BpfInstruction {
                    code: u16::from_le_bytes([b[0], b[1]]),
                    jt: b[2],
                    jf: b[3],
                    k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                })
                .collect(),
        ))
    }
}

impl CompiledPolicy {
    fn sock_filters(&self) -> Vec<libc::sock_filter> {
        self.program
            .iter()
            .map(|instruction| libc::sock_filter {
                code: instruction.code,
                jt: instruction.jt,
                jf: instruction.jf,
                k: instruction.k,
            })
            .collect()
    }
}

impl CompiledPolicy {
    /// Installs the program on the calling thread. Requires no_new_privs: root could
    /// install a filter without it, but then a setuid exec would keep its privileges.
    pub fn install(&self) -> Result<(), SeccompError> {
        if self.program.is_empty() {
            return Err(SeccompError::Invalid {
                name: self.name.clone(),
                reason: "the compiled policy is empty".into(),
            });
        }
        let program = self.sock_filters();
        match sys::seccomp::no_new_privs() {
            Ok(true) => {}
            Ok(false) => {
                return Err(SeccompError::NoNewPrivs {
                    name: self.name.clone(),
                })
            }
            Err(source) => {
                return Err(SeccompError::Install {
                    name: self.name.clone(),
                    step: "prctl(PR_GET_NO_NEW_PRIVS)".into(),
                    source,
                })
            }
        }
        sys::seccomp::install_filter(&program).map_err(|source| SeccompError::Install {
            name: self.name.clone(),
            step: "seccomp(SECCOMP_SET_MODE_FILTER)".into(),
            source,
        })
    }
}

/// A built-in policy by name, or a policy file when the argument contains a '/' or ends
/// with .json (the same rule the profiles use).
pub fn load_policy(name_or_path: &str) -> Result<CompiledPolicy, SeccompError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".json") {
        let path = Path::new(name_or_path);
        let source = std::fs::read(path).map_err(|source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        return compiled(name_or_path, &source);
    }
    let (name, source) = BUILTIN_POLICIES
        .iter()
        .find(|(name, _)| *name == name_or_path)
        .ok_or_else(|| SeccompError::UnknownPolicy {
            name: name_or_path.to_string(),
            builtin: BUILTIN_POLICIES
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    match precompiled(name) {
        Some(policy) => Ok(policy),
        None => compiled(name, source.as_bytes()),
    }
}

include!(concat!(env!("OUT_DIR"), "/builtin_seccomp.rs"));

/// A built-in policy as the build compiled it.
fn precompiled(name: &str) -> Option<CompiledPolicy> {
    PRECOMPILED
        .iter()
        .find(|(known, _, _)| *known == name)
        .map(|(name, sha256, program)| CompiledPolicy {
            name: name.to_string(),
            sha256: sha256.to_string(),
            program: program.to_vec(),
        })
}

/// [`compile_policy`], remembered per process by name and content: a daemon loads the
/// same few policies for every job, and a dual build for every run.
fn compiled(name: &str, source_json: &[u8]) -> Result<CompiledPolicy, SeccompError> {
    const REMEMBERED: usize = 16;
    static CACHE: std::sync::Mutex<Vec<CompiledPolicy>> = std::sync::Mutex::new(Vec::new());
    let sha256 = hex::encode(Sha256::digest(source_json));
    let cache = || {
        CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(hit) = cache()
        .iter()
        .find(|policy| policy.name == name && policy.sha256 == sha256)
    {
        return Ok(hit.clone());
    }
    let policy = compile_with_digest(name, source_json, sha256)?;
    let mut cache = cache();
    if cache.len() == REMEMBERED {
        cache.remove(0);
    }
    cache.push(policy.clone());
    Ok(policy)
}

/// Validates a policy (see [`validate`]) and compiles it for x86_64 into one program that
/// starts with [`ABI_CHECK`].
pub fn compile_policy(name: &str, source_json: &[u8]) -> Result<CompiledPolicy, SeccompError> {
    compile_with_digest(name, source_json, hex::encode(Sha256::digest(source_json)))
}

/// [`compile_policy`] for a source whose SHA-256 (`sha256`, lowercase hex) is known.
fn compile_with_digest(
    name: &str,
    source_json: &[u8],
    sha256: String,
) -> Result<CompiledPolicy, SeccompError> {
    let instructions = source::program(source_json).map_err(|err| match err {
        ProgramError::Parse(source) => SeccompError::Parse {
            name: name.to_string(),
            source,
        },
        ProgramError::Invalid(reason) => SeccompError::Invalid {
            name: name.to_string(),
            reason,
        },
        ProgramError::Compile(reason) => SeccompError::Compile {
            name: name.to_string(),
            reason,
        },
    })?;
    Ok(CompiledPolicy {
        name: name.to_string(),
        sha256,
        program: instructions,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::{Command, Output, Stdio};

    use super::*;
    use hermetic_seccomp::bpf::{self, reference};
    use hermetic_seccomp::source::{ALLOWLIST, DENYLIST, FILTER_NAMES};
    use hermetic_seccomp::syscalls;

    fn default_policy() -> CompiledPolicy {
        load_policy("default").expect("the default policy compiles")
    }

    fn policy_with(allow_rules: &str, deny_rules: &str) -> String {
        format!(
            r#"{{
                "allowlist": {{"mismatch_action": {{"errno": 38}}, "match_action": "allow",
                               "filter": [{{"syscall": "seccomp"}}{allow_rules}]}},
                "denylist": {{"mismatch_action": "allow", "match_action": {{"errno": 1}},
                              "filter": [{deny_rules}]}}
            }}"#
        )
    }

    fn invalid_reason(source: &str) -> String {
        match compile_policy("test", source.as_bytes()) {
            Err(SeccompError::Invalid { reason, .. }) => reason,
            other => panic!("expected an invalid-policy error, got {other:?}"),
        }
    }

    #[test]
    fn every_builtin_policy_compiles_to_one_program_behind_the_abi_check() {
        for (name, source) in BUILTIN_POLICIES {
            let policy =
                compile_policy(name, source.as_bytes()).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(
                policy.sha256,
                hex::encode(Sha256::digest(source.as_bytes()))
            );
            let program = &policy.program;
            assert!(program.starts_with(&bpf::ABI_CHECK), "{name}");
            for instruction in program.iter().filter(|i| i.code == bpf::RETURN) {
                let action = instruction.k & libc::SECCOMP_RET_ACTION_FULL;
                assert!(
                    action == libc::SECCOMP_RET_ALLOW || action == libc::SECCOMP_RET_ERRNO,
                    "{name} returns {:#x}",
                    instruction.k
                );
            }
        }
    }

    /// The build compiled every built-in policy with this same compiler, from the same
    /// bytes that are embedded.
    #[test]
    fn every_builtin_policy_is_precompiled_as_it_would_compile_now() {
        let names = |list: Vec<&str>| -> Vec<String> {
            let mut names: Vec<String> = list.into_iter().map(str::to_string).collect();
            names.sort();
            names
        };
        assert_eq!(
            names(PRECOMPILED.iter().map(|(name, _, _)| *name).collect()),
            names(BUILTIN_POLICIES.iter().map(|(name, _)| *name).collect())
        );
        for (name, source) in BUILTIN_POLICIES {
            let now = compile_policy(name, source.as_bytes()).unwrap();
            let built = precompiled(name).unwrap();
            assert_eq!(built.sha256, now.sha256, "{name}");
            assert_eq!(built.program, now.program, "{name}");
        }
    }

    /// Binary search: any syscall number is decided in a few dozen instructions (a linear
    /// chain took hundreds), and calls listed without conditions get their list's answer.
    #[test]
    fn the_default_policy_decides_every_call_quickly_and_as_listed() {
        let source: serde_json::Value = serde_json::from_str(BUILTIN_POLICIES[0].1).unwrap();
        let unconditional = |filter: &str| -> Vec<u32> {
            source[filter]["filter"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|rule| rule.get("args").is_none())
                .map(|rule| syscalls::number(rule["syscall"].as_str().unwrap()).unwrap())
                .collect()
        };
        let (allowed, denied) = (unconditional(ALLOWLIST), unconditional(DENYLIST));
        let listed: Vec<u32> = FILTER_NAMES
            .iter()
            .flat_map(|filter| source[*filter]["filter"].as_array().unwrap())
            .map(|rule| syscalls::number(rule["syscall"].as_str().unwrap()).unwrap())
            .collect();
        let unlisted = libc::SECCOMP_RET_ERRNO
            | source[ALLOWLIST]["mismatch_action"]["errno"]
                .as_u64()
                .unwrap() as u32;
        let policy = default_policy();
        let program = &policy.program;
        let mut longest = 0;
        for number in (0..600).chain([1000, 0x3fff_ffff]) {
            let (action, steps) = reference::run(program, bpf::AUDIT_ARCH_X86_64, number, [0; 6]);
            longest = longest.max(steps);
            if !listed.contains(&number) {
                assert_eq!(action, unlisted, "{number} is in no list");
            } else if denied.contains(&number) {
                assert_eq!(
                    action,
                    libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                    "{number}"
                );
            } else if allowed.contains(&number) {
                assert_eq!(action, libc::SECCOMP_RET_ALLOW, "{number}");
            }
        }
        assert!(
            longest <= 60,
            "a call took {longest} instructions to decide ({} in all)",
            program.len()
        );
        // The search is over runs of numbers with one answer (843 instructions when it
        // was over single numbers; 406 now).
        assert!(program.len() < 450, "{} instructions", program.len());
    }

    #[test]
    fn every_builtin_rule_and_condition_says_who_needs_it() {
        for (name, source) in BUILTIN_POLICIES {
            let policy: serde_json::Value = serde_json::from_str(source).unwrap();
            for filter_name in FILTER_NAMES {
                for rule in policy[filter_name]["filter"].as_array().unwrap() {
                    let has_comment = |value: &serde_json::Value| {
                        value["comment"].as_str().is_some_and(|c| !c.is_empty())
                    };
                    assert!(has_comment(rule), "{name}/{filter_name}: {rule}");
                    for condition in rule["args"].as_array().into_iter().flatten() {
                        assert!(has_comment(condition), "{name}/{filter_name}: {rule}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_policy_file_loads_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.json");
        std::fs::write(&path, BUILTIN_POLICIES[0].1).unwrap();
        let policy = load_policy(path.to_str().unwrap()).unwrap();
        assert_eq!(policy.name, path.to_str().unwrap());
        assert_eq!(policy.sha256, default_policy().sha256);
    }

    #[test]
    fn a_compiled_policy_survives_its_trip_to_the_helper() {
        // A policy from a file carries its program.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.json");
        std::fs::write(&path, BUILTIN_POLICIES[0].1).unwrap();
        let policy = load_policy(path.to_str().unwrap()).unwrap();
        let json = serde_json::to_string(&policy).unwrap();
        assert!(json.contains("\"program\":\""), "{json}");
        let back: CompiledPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back.program, policy.program);
        let odd = json.replacen("\"program\":\"", "\"program\":\"00", 1);
        assert!(serde_json::from_str::<CompiledPolicy>(&odd).is_err());
    }

    #[test]
    fn a_built_in_policy_travels_by_name_and_digest_and_arrives_whole() {
        for (name, _) in BUILTIN_POLICIES {
            let policy = load_policy(name).unwrap();
            let json = serde_json::to_string(&policy).unwrap();
            assert!(!json.contains("program"), "{json}");
            let back: CompiledPolicy = serde_json::from_str(&json).unwrap();
            assert_eq!((&back.name, &back.sha256), (&policy.name, &policy.sha256));
            assert_eq!(back.program, policy.program);
        }
        // A name or digest this binary does not have built in, without a program, is
        // refused rather than installed as something else.
        let policy = default_policy();
        for json in [
            format!(
                r#"{{"name":"no-such-policy","sha256":"{}"}}"#,
                policy.sha256
            ),
            format!(
                r#"{{"name":"{}","sha256":"{}"}}"#,
                policy.name,
                "0".repeat(64)
            ),
        ] {
            let err = serde_json::from_str::<CompiledPolicy>(&json).unwrap_err();
            assert!(
                err.to_string().contains("not built into this binary"),
                "{err}"
            );
        }
        // A built-in name whose program differs (a policy file named like one) keeps it.
        let mut changed = policy.clone();
        changed.program.pop();
        let json = serde_json::to_string(&changed).unwrap();
        let back: CompiledPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back.program, changed.program);
    }

    #[test]
    fn a_policy_file_changed_on_disk_is_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        let path_str = path.to_str().unwrap();
        std::fs::write(&path, policy_with(r#", {"syscall": "read"}"#, "")).unwrap();
        let first = load_policy(path_str).unwrap();
        assert_eq!(load_policy(path_str).unwrap().sha256, first.sha256);
        std::fs::write(&path, policy_with(r#", {"syscall": "write"}"#, "")).unwrap();
        let second = load_policy(path_str).unwrap();
        assert_ne!(second.sha256, first.sha256);
        let program = &second.program;
        let write = syscalls::number("write").unwrap();
        let read = syscalls::number("read").unwrap();
        assert_eq!(
            reference::run(program, bpf::AUDIT_ARCH_X86_64, write, [0; 6]).0,
            libc::SECCOMP_RET_ALLOW
        );
        assert_ne!(
            reference::run(program, bpf::AUDIT_ARCH_X86_64, read, [0; 6]).0,
            libc::SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn a_malformed_policy_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{\"allowlist\": {").unwrap();
        let err = load_policy(path.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, SeccompError::Parse { .. }), "{err:?}");
        let message = crate::errors::error_chain(&err);
        assert!(
            message.contains(path.to_str().unwrap()) && message.contains("line 1"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_policy_file_or_unknown_name_is_reported() {
        let err = load_policy("/nonexistent/policy.json").unwrap_err();
        assert!(matches!(err, SeccompError::Read { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/policy.json"),
            "{err}"
        );
        let err = load_policy("no-such-policy").unwrap_err();
        assert!(matches!(err, SeccompError::UnknownPolicy { .. }), "{err:?}");
        assert!(err.to_string().contains("default"), "{err}");
    }

    #[test]
    fn a_policy_without_both_filters_is_refused() {
        let only_allowlist = r#"{"allowlist": {"mismatch_action": {"errno": 38}, "match_action": "allow", "filter": [{"syscall": "seccomp"}]}}"#;
        assert!(invalid_reason(only_allowlist).contains("missing filter `denylist`"));
        let extra = policy_with("", "").replacen('{', r#"{"other": {"mismatch_action": "allow", "match_action": {"errno": 1}, "filter": []},"#, 1);
        assert!(invalid_reason(&extra).contains("unknown filter `other`"));
    }

    #[test]
    fn filters_with_the_wrong_actions_are_refused() {
        let allow_by_default = policy_with("", "").replacen(r#"{"errno": 38}"#, r#""allow""#, 1);
        assert!(invalid_reason(&allow_by_default).contains("`allowlist` needs"));
        let deny_by_default = policy_with("", "").replacen(
            r#""mismatch_action": "allow""#,
            r#""mismatch_action": {"errno": 1}"#,
            1,
        );
        assert!(invalid_reason(&deny_by_default).contains("`denylist` needs"));
        let kill = policy_with("", "").replacen(r#"{"errno": 38}"#, r#""kill_process""#, 1);
        let err = compile_policy("test", kill.as_bytes()).unwrap_err();
        assert!(matches!(err, SeccompError::Parse { .. }), "{err:?}");
    }

    #[test]
    fn redundant_or_contradictory_rules_are_refused() {
        let ne_tiocsti = r#"{"index": 1, "type": "dword", "op": "ne", "val": 21522}"#;
        let ne_tioclinux = r#"{"index": 1, "type": "dword", "op": "ne", "val": 21532}"#;
        let same_conditions_reordered = format!(
            r#", {{"syscall": "ioctl", "args": [{ne_tiocsti}, {ne_tioclinux}]}}, {{"syscall": "ioctl", "args": [{ne_tioclinux}, {ne_tiocsti}]}}"#
        );
        assert!(invalid_reason(&policy_with(&same_conditions_reordered, ""))
            .contains("twice with the same conditions"));
        assert!(invalid_reason(&policy_with(
            r#", {"syscall": "read"}, {"syscall": "read"}"#,
            ""
        ))
        .contains("lists read twice"));
        let with_and_without =
            format!(r#", {{"syscall": "ioctl"}}, {{"syscall": "ioctl", "args": [{ne_tiocsti}]}}"#);
        assert!(invalid_reason(&policy_with(&with_and_without, ""))
            .contains("both with and without conditions"));
        let contradiction = policy_with(r#", {"syscall": "bpf"}"#, r#"{"syscall": "bpf"}"#);
        assert!(invalid_reason(&contradiction).contains("bpf is both allowed and denied"));
        let errno_out_of_range =
            policy_with("", "").replacen(r#"{"errno": 38}"#, r#"{"errno": 5000}"#, 1);
        assert!(invalid_reason(&errno_out_of_range).contains("between 1 and 4095"));
        let conditional_overlap = format!(r#", {{"syscall": "ioctl", "args": [{ne_tiocsti}]}}"#);
        let deny_tiocsti = r#"{"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq", "val": 21522}]}"#;
        compile_policy(
            "test",
            policy_with(&conditional_overlap, deny_tiocsti).as_bytes(),
        )
        .unwrap();
    }

    #[test]
    fn an_unknown_syscall_name_fails_to_compile() {
        let err = compile_policy(
            "test",
            policy_with(r#", {"syscall": "no_such_call"}"#, "").as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(err, SeccompError::Compile { .. }), "{err:?}");
        assert!(err.to_string().contains("no_such_call"), "{err}");
    }

    #[test]
    fn install_refuses_without_no_new_privs() {
        if sys::seccomp::no_new_privs().unwrap() {
            // Already confined (a test run inside a sandbox): installing would succeed, which
            // is the correct behaviour there, and would filter this test thread.
            eprintln!("no_new_privs is already set; nothing to check");
            return;
        }
        let err = default_policy().install().unwrap_err();
        assert!(matches!(err, SeccompError::NoNewPrivs { .. }), "{err:?}");
        assert!(err.to_string().contains("no_new_privs"), "{err}");
    }

    /// Runs `command` with `policy` installed; stdin is /dev/null.
    fn run_filtered(policy: &CompiledPolicy, command: &mut Command) -> Output {
        let programs = vec![policy.sock_filters()];
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = sys::seccomp::spawn_filtered(command, programs)
            .unwrap_or_else(|err| panic!("spawning {command:?}: {err}"));
        child.wait_with_output().unwrap()
    }

    /// A command with a scrubbed environment, working in `dir`.
    fn tool(program: &str, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", dir)
            .env("LC_ALL", "C")
            .current_dir(dir);
        command
    }

    fn stdout_of_successful(policy: &CompiledPolicy, command: &mut Command) -> String {
        let output = run_filtered(policy, command);
        assert!(
            output.status.success(),
            "{command:?} under the filter: {}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Each probe makes one raw syscall with harmless arguments (null pointers, missing
    /// paths, /dev/null instead of a tty), so that a broken filter cannot hurt the machine
    /// running the tests, and prints "<name> <errno>" (0 on success).
    const PROBE_SOURCE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *name, long ret) {
    printf("%s %d\n", name, ret < 0 ? errno : 0);
    fflush(stdout);
}

static long clone_with(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    return pid;
}

static long socket_of(int family, int type, int protocol) {
    long fd = syscall(SYS_socket, family, type, protocol);
    if (fd >= 0) close(fd);
    return fd;
}

/* int 0x80 enters the i386 ABI even from a 64-bit process; 20 is getpid there. */
static long i386_getpid(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    if (ret < 0 && ret > -4096) { errno = -ret; return -1; }
    return ret;
}

int main(int argc, char **argv) {
    if (argc != 2 || chdir(argv[1]) != 0) return 2;
    int devnull = open("/dev/null", O_RDWR);
    int scratch = open("scratch", O_CREAT | O_WRONLY, 0644);
    if (devnull < 0 || scratch < 0) return 2;
    char c = 'x';
    struct winsize size;
    report("getpid", syscall(SYS_getpid));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    report("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
    report("ioctl_tiocsti", syscall(SYS_ioctl, devnull, TIOCSTI, &c));
    report("ioctl_tiocsti_high_bits", syscall(SYS_ioctl, devnull, 0x100000000UL | TIOCSTI, &c));
    report("ioctl_tioclinux", syscall(SYS_ioctl, devnull, TIOCLINUX, &c));
    report("ioctl_tiocgwinsz", syscall(SYS_ioctl, devnull, TIOCGWINSZ, &size));
    report("unshare_newuser", syscall(SYS_unshare, CLONE_NEWUSER));
    report("setns", syscall(SYS_setns, -1, 0));
    report("clone_plain", clone_with(0));
    report("clone_newuser", clone_with(CLONE_NEWUSER));
    report("clone_newnet", clone_with(CLONE_NEWNET));
    report("clone_newuser_high_bits", clone_with(0x100000000UL | CLONE_NEWUSER));
    report("clone3", syscall(SYS_clone3, NULL, 0));
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("ptrace", syscall(SYS_ptrace, 0x7fff, 0, 0, 0));
    report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0));
    report("mount", syscall(SYS_mount, "none", "/nonexistent-probe", "tmpfs", 0, NULL));
    report("umount2", syscall(SYS_umount2, "/nonexistent-probe", 0));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
    report("chroot", syscall(SYS_chroot, "/nonexistent-probe"));
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    report("syslog", syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
    report("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, NULL));
    report("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
    report("socket_unix", socket_of(AF_UNIX, SOCK_STREAM, 0));
    report("socket_inet", socket_of(AF_INET, SOCK_STREAM, 0));
    report("socket_inet6", socket_of(AF_INET6, SOCK_DGRAM, 0));
    report("socket_netlink_route", socket_of(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
    report("socket_netlink_audit", socket_of(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT));
    report("socket_vsock", socket_of(AF_VSOCK, SOCK_STREAM, 0));
    report("socket_packet", socket_of(AF_PACKET, SOCK_RAW, 0));
    report("socket_alg", socket_of(AF_ALG, SOCK_SEQPACKET, 0));
    report("chmod_plain", syscall(SYS_chmod, "scratch", 0755));
    report("chmod_setuid", syscall(SYS_chmod, "scratch", 04755));
    report("chmod_setgid", syscall(SYS_chmod, "scratch", 02755));
    report("fchmod_setuid", syscall(SYS_fchmod, scratch, 04755));
    report("fchmodat_setgid", syscall(SYS_fchmodat, AT_FDCWD, "scratch", 02755));
    report("openat_create_setuid", syscall(SYS_openat, AT_FDCWD, "created", O_CREAT | O_WRONLY, 04755));
    report("openat_tmpfile_setgid", syscall(SYS_openat, AT_FDCWD, ".", O_TMPFILE | O_WRONLY, 02755));
    report("openat_read_garbage_mode", syscall(SYS_openat, AT_FDCWD, "scratch", O_RDONLY, 04755));
    report("openat2", syscall(SYS_openat2, AT_FDCWD, "scratch", NULL, 0));
    report("personality_query", syscall(SYS_personality, 0xffffffffUL));
    report("personality_linux", syscall(SYS_personality, 0));
    report("personality_no_aslr", syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */));
    report("unlisted_1000", syscall(1000));
    report("x32_getpid", syscall(0x40000000 | SYS_getpid));
    report("i386_getpid", i386_getpid());
    return 0;
}
"#;

    #[derive(Clone, Copy, Debug)]
    enum Expect {
        /// Stopped by the denylist: its errno.
        Denied,
        /// Not in the allowlist: its errno.
        Unlisted,
        /// i386 or x32 ABI: EPERM from [`ABI_CHECK`].
        OtherAbi,
        /// Allowed and works with the probe's arguments.
        Succeeds,
        /// Allowed; the kernel may still refuse the arguments (ENOTTY on /dev/null, no IPv6).
        Passes,
    }

    const EXPECTATIONS: &[(&str, Expect)] = &[
        ("getpid", Expect::Succeeds),
        ("io_uring_setup", Expect::Denied),
        ("io_uring_enter", Expect::Denied),
        ("ioctl_tiocsti", Expect::Denied),
        ("ioctl_tiocsti_high_bits", Expect::Denied),
        ("ioctl_tioclinux", Expect::Denied),
        ("ioctl_tiocgwinsz", Expect::Passes),
        ("unshare_newuser", Expect::Denied),
        ("setns", Expect::Denied),
        ("clone_plain", Expect::Succeeds),
        ("clone_newuser", Expect::Denied),
        ("clone_newnet", Expect::Denied),
        ("clone_newuser_high_bits", Expect::Denied),
        ("clone3", Expect::Unlisted),
        ("keyctl", Expect::Denied),
        ("bpf", Expect::Denied),
        ("perf_event_open", Expect::Denied),
        ("userfaultfd", Expect::Denied),
        ("ptrace", Expect::Denied),
        ("process_vm_readv", Expect::Denied),
        ("mount", Expect::Denied),
        ("umount2", Expect::Denied),
        ("open_by_handle_at", Expect::Denied),
        ("chroot", Expect::Denied),
        ("init_module", Expect::Denied),
        ("reboot", Expect::Denied),
        ("syslog", Expect::Denied),
        ("clock_settime", Expect::Denied),
        ("settimeofday", Expect::Denied),
        ("socket_unix", Expect::Succeeds),
        ("socket_inet", Expect::Succeeds),
        ("socket_inet6", Expect::Passes),
        ("socket_netlink_route", Expect::Succeeds),
        ("socket_netlink_audit", Expect::Denied),
        ("socket_vsock", Expect::Denied),
        ("socket_packet", Expect::Denied),
        ("socket_alg", Expect::Denied),
        ("chmod_plain", Expect::Succeeds),
        ("chmod_setuid", Expect::Denied),
        ("chmod_setgid", Expect::Denied),
        ("fchmod_setuid", Expect::Denied),
        ("fchmodat_setgid", Expect::Denied),
        ("openat_create_setuid", Expect::Denied),
        ("openat_tmpfile_setgid", Expect::Denied),
        ("openat_read_garbage_mode", Expect::Succeeds),
        ("openat2", Expect::Unlisted),
        ("personality_query", Expect::Succeeds),
        ("personality_linux", Expect::Succeeds),
        ("personality_no_aslr", Expect::Denied),
        ("unlisted_1000", Expect::Unlisted),
        ("x32_getpid", Expect::OtherAbi),
        ("i386_getpid", Expect::OtherAbi),
    ];

    /// Compiles the probe, runs it under `policy` and returns errno by probe name.
    fn probe(policy: &CompiledPolicy) -> BTreeMap<String, i32> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("probe.c"), PROBE_SOURCE).unwrap();
        let compiled = tool("gcc", dir.path())
            .args(["-O1", "-o", "probe", "probe.c"])
            .output()
            .unwrap();
        assert!(
            compiled.status.success(),
            "gcc: {}",
            String::from_utf8_lossy(&compiled.stderr)
        );
        let mut command = tool(dir.path().join("probe").to_str().unwrap(), dir.path());
        command.arg(dir.path());
        stdout_of_successful(policy, &mut command)
            .lines()
            .map(|line| {
                let (name, errno) = line.split_once(' ').unwrap();
                (name.to_string(), errno.parse().unwrap())
            })
            .collect()
    }

    fn assert_probes(policy: &CompiledPolicy, denied_errno: i32, unlisted_errno: i32) {
        let results = probe(policy);
        let mut failures = Vec::new();
        for &(name, expect) in EXPECTATIONS {
            let Some(&errno) = results.get(name) else {
                failures.push(format!("{name}: no result"));
                continue;
            };
            let ok = match expect {
                Expect::Denied => errno == denied_errno,
                Expect::Unlisted => errno == unlisted_errno,
                Expect::OtherAbi => errno == libc::EPERM,
                Expect::Succeeds => errno == 0,
                Expect::Passes => ![denied_errno, unlisted_errno, libc::EPERM].contains(&errno),
            };
            if !ok {
                failures.push(format!("{name}: expected {expect:?}, got errno {errno}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_default_policy_answers_probes_with_the_documented_errnos() {
        assert_probes(&default_policy(), libc::EPERM, libc::ENOSYS);
    }

    /// Natural kernel errors can look like the filter's (EPERM for mount as non-root,
    /// ENOSYS for syscall 1000), so this run gives each filter an errno no kernel path
    /// returns. Calls both filters stop (io_uring_*, unlisted in the allowlist) also show
    /// that the errno of the filter installed last wins.
    #[test]
    fn the_errnos_come_from_the_filters_and_the_denylist_wins() {
        const DENIED_MARK: i32 = 200;
        const UNLISTED_MARK: i32 = 201;
        let mut source: serde_json::Value = serde_json::from_str(BUILTIN_POLICIES[0].1).unwrap();
        source[DENYLIST]["match_action"] = serde_json::json!({ "errno": DENIED_MARK });
        source[ALLOWLIST]["mismatch_action"] = serde_json::json!({ "errno": UNLISTED_MARK });
        let marked = compile_policy("marked", &serde_json::to_vec(&source).unwrap()).unwrap();
        assert_probes(&marked, DENIED_MARK, UNLISTED_MARK);
    }

    #[test]
    fn a_shell_pipeline_through_gzip_works() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = tool("sh", dir.path());
        command.args(["-c", "echo hi | gzip | gunzip"]);
        assert_eq!(
            stdout_of_successful(&default_policy(), &mut command),
            "hi\n"
        );
    }

    #[test]
    fn python3_runs_a_subprocess() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = tool("/usr/bin/python3", dir.path());
        command.args([
            "-c",
            "import os, subprocess; print(subprocess.run(['true']).returncode)",
        ]);
        assert_eq!(stdout_of_successful(&default_policy(), &mut command), "0\n");
    }

    #[test]
    fn gcc_builds_and_runs_a_threaded_hello_world() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hello.c"),
            "#include <pthread.h>\n#include <stdio.h>\n\
             static void *greet(void *arg) { puts(arg); return NULL; }\n\
             int main(void) { pthread_t t; pthread_create(&t, NULL, greet, \"hello\"); return pthread_join(t, NULL); }\n",
        )
        .unwrap();
        let mut command = tool("sh", dir.path());
        command.args(["-c", "gcc -O2 -pthread -o hello hello.c && ./hello"]);
        assert_eq!(
            stdout_of_successful(&default_policy(), &mut command),
            "hello\n"
        );
    }

    #[test]
    fn make_reports_its_version_and_runs_a_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let mut version = tool("make", dir.path());
        version.arg("-v");
        assert!(stdout_of_successful(&default_policy(), &mut version).starts_with("GNU Make"));
        std::fs::write(
            dir.path().join("Makefile"),
            "all:\n\t@echo built > out\n\t@cat out\n",
        )
        .unwrap();
        assert_eq!(
            stdout_of_successful(&default_policy(), &mut tool("make", dir.path())),
            "built\n"
        );
    }

    #[test]
    fn tar_find_and_sort_work() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tree")).unwrap();
        for name in ["b", "a", "c"] {
            std::fs::write(dir.path().join("tree").join(name), format!("{name}\n")).unwrap();
        }
        let mut tar = tool("tar", dir.path());
        tar.args(["cf", "tree.tar", "tree"]);
        stdout_of_successful(&default_policy(), &mut tar);
        let mut list = tool("tar", dir.path());
        list.args(["tf", "tree.tar"]);
        assert_eq!(
            stdout_of_successful(&default_policy(), &mut list)
                .lines()
                .count(),
            4
        );
        let mut find = tool("find", dir.path());
        find.args(["tree", "-type", "f"]);
        assert_eq!(
            stdout_of_successful(&default_policy(), &mut find)
                .lines()
                .count(),
            3
        );
        let mut sort = tool("sort", dir.path());
        sort.args(["--parallel=2", "tree/b", "tree/c", "tree/a"]);
        assert_eq!(
            stdout_of_successful(&default_policy(), &mut sort),
            "a\nb\nc\n"
        );
    }
}
