//! Checks of the deployment itself (docs/cache-format.md "Keys and trust", "Scopes"):
//! trusted keys that cannot be read, trusted scopes that accept the key untrusted builds
//! sign with, and cache directories that users other than their owner can write. They
//! only read: the real cache and state dir are never written.
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hermetic_contract::report::Finding;

use crate::cache::store::UNTRUSTED_PREFIX;
use crate::errors::Chain;
use crate::signing::VerifyingKey;

/// `check` names of the findings.
pub const TRUSTED_KEY_UNREADABLE: &str = "trusted-key-unreadable";
pub const TRUSTED_SCOPE_WRITABLE_BY_UNTRUSTED_KEY: &str = "trusted-scope-writable-by-untrusted-key";
pub const CACHE_DIR_WRITABLE_BY_OTHERS: &str = "cache-dir-writable-by-others";
pub const CACHE_DIR_OWNED_BY_ANOTHER_USER: &str = "cache-dir-owned-by-another-user";

/// The trusted keys that could be read, and a finding for each that could not.
pub(super) fn trusted_keys(paths: &[PathBuf], findings: &mut Vec<Finding>) -> Vec<VerifyingKey> {
    let mut keys = Vec::new();
    for path in paths {
        let read = fs::read_to_string(path)
            .map_err(|error| format!("cannot be read: {error}"))
            .and_then(|pem| {
                VerifyingKey::from_pem(&pem)
                    .map_err(|error| format!("is not a public key: {}", Chain(&error)))
            });
        match read {
            Ok(key) => keys.push(key),
            Err(problem) => findings.push(Finding {
                check: TRUSTED_KEY_UNREADABLE.to_owned(),
                path: Some(path.display().to_string()),
                detail: format!(
                    "the trusted key {} {problem}: entries it signed are refused, and with \
                     no other --trust-key the local key counts for trusted scopes again",
                    path.display()
                ),
            }),
        }
    }
    keys
}

/// Untrusted builds sign with the machine's local key (`<state-dir>/keys/cache-local`). A
/// trusted scope that accepts that key can be written by them: when no operator key is
/// configured while the store has untrusted scopes, or when the local key is itself among
/// the trusted keys.
pub(super) fn scope_trust(
    cache_dir: &Path,
    state_dir: &Path,
    operator_keys: &[VerifyingKey],
    findings: &mut Vec<Finding>,
) {
    // Read only: the drill never makes the deployment a key.
    let local_pub = crate::cache::trust::local_public_key_path(state_dir);
    let local = fs::read_to_string(&local_pub)
        .ok()
        .and_then(|pem| VerifyingKey::from_pem(&pem).ok());
    if let Some(local) = &local {
        if operator_keys.iter().any(|key| key.hint() == local.hint()) {
            findings.push(Finding {
                check: TRUSTED_SCOPE_WRITABLE_BY_UNTRUSTED_KEY.to_owned(),
                path: Some(local_pub.display().to_string()),
                detail: format!(
                    "the local key {} is a --trust-key: every build on this machine, untrusted \
                     ones too, signs entries trusted scopes accept",
                    local_pub.display()
                ),
            });
        }
    }
    let untrusted_scopes: Vec<String> = fs::read_dir(cache_dir.join("scopes"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(UNTRUSTED_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    if operator_keys.is_empty() && !untrusted_scopes.is_empty() {
        findings.push(Finding {
            check: TRUSTED_SCOPE_WRITABLE_BY_UNTRUSTED_KEY.to_owned(),
            path: Some(cache_dir.display().to_string()),
            detail: format!(
                "no --trust-key is configured, so trusted scopes accept the local key, which \
                 the builds of the untrusted scopes here ({}) sign with: they can write entries \
                 trusted builds restore",
                untrusted_scopes.join(", ")
            ),
        });
    }
}

/// The cache dir and the directories entries live in (`scopes/`, each scope,
/// `quarantine/`, `tmp/`): writable by group or others, or owned by another user than
/// the one running the drill.
pub(super) fn cache_dir_permissions(cache_dir: &Path, findings: &mut Vec<Finding>) {
    let me = nix::unistd::geteuid().as_raw();
    let mut dirs = vec![cache_dir.to_owned()];
    for sub in ["scopes", "quarantine", "tmp"] {
        dirs.push(cache_dir.join(sub));
    }
    if let Ok(scopes) = fs::read_dir(cache_dir.join("scopes")) {
        let mut scopes: Vec<PathBuf> = scopes.filter_map(Result::ok).map(|e| e.path()).collect();
        scopes.sort();
        dirs.extend(scopes);
    }
    for dir in dirs {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            let who = if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            };
            findings.push(Finding {
                check: CACHE_DIR_WRITABLE_BY_OTHERS.to_owned(),
                path: Some(dir.display().to_string()),
                detail: format!(
                    "{} has mode {mode:04o}: {who} can plant, swap or remove entries (the \
                     restore refuses what they forge, but they can empty the cache or fill it \
                     with quarantines); make it 0755 or 0700",
                    dir.display()
                ),
            });
        }
        if meta.uid() != me {
            findings.push(Finding {
                check: CACHE_DIR_OWNED_BY_ANOTHER_USER.to_owned(),
                path: Some(dir.display().to_string()),
                detail: format!(
                    "{} belongs to uid {}, not to uid {me} that runs the drill: its owner can \
                     write it",
                    dir.display(),
                    meta.uid()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::SigningKey;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_world_writable_cache_dir_is_a_finding_and_a_private_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        fs::create_dir_all(cache.join("scopes/main")).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).unwrap();
        let mut findings = Vec::new();
        cache_dir_permissions(&cache, &mut findings);
        assert!(findings.is_empty(), "{findings:?}");

        fs::set_permissions(cache.join("scopes/main"), fs::Permissions::from_mode(0o777)).unwrap();
        cache_dir_permissions(&cache, &mut findings);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].check, CACHE_DIR_WRITABLE_BY_OTHERS);
        assert_eq!(
            findings[0].path.as_deref(),
            Some(cache.join("scopes/main").to_str().unwrap())
        );
        assert!(
            findings[0].detail.contains("0777"),
            "{}",
            findings[0].detail
        );
    }

    #[test]
    fn unreadable_and_malformed_trusted_keys_are_findings() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good.pub");
        fs::write(&good, SigningKey::generate().verifying_key().to_pem()).unwrap();
        let garbage = tmp.path().join("garbage.pub");
        fs::write(&garbage, "not a key").unwrap();
        let missing = tmp.path().join("missing.pub");
        let mut findings = Vec::new();
        let keys = trusted_keys(&[good, garbage.clone(), missing.clone()], &mut findings);
        assert_eq!(keys.len(), 1);
        let paths: Vec<_> = findings.iter().map(|f| f.path.clone().unwrap()).collect();
        assert_eq!(
            paths,
            [garbage.display().to_string(), missing.display().to_string()]
        );
        assert!(findings.iter().all(|f| f.check == TRUSTED_KEY_UNREADABLE));
    }

    #[test]
    fn a_trusted_scope_accepting_the_untrusted_builds_key_is_a_finding() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, state) = (tmp.path().join("cache"), tmp.path().join("state"));
        fs::create_dir_all(cache.join("scopes/main")).unwrap();
        let mut findings = Vec::new();
        scope_trust(&cache, &state, &[], &mut findings);
        assert!(
            findings.is_empty(),
            "no untrusted scope, no operator key: {findings:?}"
        );

        fs::create_dir_all(cache.join("scopes/untrusted-pr-1")).unwrap();
        scope_trust(&cache, &state, &[], &mut findings);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].detail.contains("untrusted-pr-1"));

        let local = SigningKey::generate();
        fs::create_dir_all(state.join("keys")).unwrap();
        fs::write(
            state.join("keys/cache-local.pub"),
            local.verifying_key().to_pem(),
        )
        .unwrap();
        let mut findings = Vec::new();
        scope_trust(&cache, &state, &[local.verifying_key()], &mut findings);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].check, TRUSTED_SCOPE_WRITABLE_BY_UNTRUSTED_KEY);
        let other = SigningKey::generate().verifying_key();
        let mut findings = Vec::new();
        scope_trust(&cache, &state, &[other], &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
    }
}
