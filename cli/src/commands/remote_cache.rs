//! `hermetic cache push|pull KEY`, `cache ls --remote` and `cache verify --remote`: the
//! remote cache (an OCI registry) from the command line, in this process.
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hermetic::cache::remote::{
    self, ListedSignature, Remote, RemoteLookup, ScrubbedOutcome, Unusable,
};
use hermetic::cache::trust::signing_key;
use hermetic::cache::{signed_by, CacheKey, Scope};
use hermetic::exit_code as exit;
use hermetic::signing::Password;
use hermetic_contract::report::RemotePush;
use hermetic_daemon::config::Config;
use serde_json::json;

use super::cache::{config, load_trust, open, print_json, remote_options, scope_of, usage};
use crate::args::{CacheDirArgs, CacheKeysArgs, CacheRemoteArgs, CacheTrustArgs};
use crate::Failure;

/// Archives at least this large show progress while they are pushed or pulled.
const PROGRESS_FROM_BYTES: u64 = 8 << 20;

/// The remote cache of `scope`, from the flags over the config file.
fn connect(flags: &CacheRemoteArgs, config: &Config, scope: &Scope) -> Result<Remote, Failure> {
    let options = remote_options(flags, false, &config.cache)?.ok_or_else(|| {
        usage(anyhow::anyhow!(
            "no remote cache: give --cache-remote or set `remote` in the [cache] table of the \
             config file"
        ))
    })?;
    Remote::connect(&options, scope).map_err(|error| {
        let code = if error.is_usage_error() {
            exit::USAGE
        } else {
            exit::SANDBOX_FAILED
        };
        Failure::new(code, error)
    })
}

/// An outage or a refusal by the registry: the command could not do its work (exit 5).
fn unusable(unusable: Unusable) -> Failure {
    Failure::new(exit::SANDBOX_FAILED, anyhow::anyhow!("{unusable}"))
}

fn parse_key(key: &str) -> Result<CacheKey, Failure> {
    CacheKey::parse(key).map_err(usage)
}

pub fn ls(
    cache: &CacheDirArgs,
    keys: &CacheKeysArgs,
    scope: Option<&str>,
    flags: &CacheRemoteArgs,
) -> Result<i32, Failure> {
    let config = config()?;
    let scope = scope_of(scope, &config)?;
    let trusted = load_trust(&config, keys)?.keys_for(&scope);
    let remote = connect(flags, &config, &scope)?;
    let listed = remote::list(&remote, &trusted).map_err(unusable)?;
    if cache.json {
        let entries: Vec<_> = listed
            .iter()
            .map(|entry| {
                let signature = match &entry.signature {
                    ListedSignature::Trusted {
                        signer,
                        verdict,
                        created_at,
                    } => json!({
                        "trusted": true, "signer": signer, "verdict": verdict,
                        "created_at": created_at,
                    }),
                    ListedSignature::Untrusted { reason, error } => {
                        json!({ "trusted": false, "reason": reason, "error": error })
                    }
                };
                json!({ "key": entry.key, "manifest": entry.manifest, "signature": signature })
            })
            .collect();
        print_json(&json!({
            "repository": remote.repository().to_string(),
            "scope": scope,
            "entries": entries,
        }));
    } else {
        for entry in &listed {
            let signature = match &entry.signature {
                ListedSignature::Trusted { signer, .. } => format!("trusted {signer}"),
                ListedSignature::Untrusted {
                    reason: Some(reason),
                    ..
                } => format!("untrusted ({reason})"),
                ListedSignature::Untrusted {
                    reason: None,
                    error,
                } => format!("untrusted ({error})"),
            };
            println!(
                "{} {} {}  {signature}",
                remote.scope().as_str(),
                entry.key,
                entry.manifest.as_deref().unwrap_or("-"),
            );
        }
    }
    Ok(exit::SUCCESS)
}

pub fn verify(
    cache: &CacheDirArgs,
    trust: &CacheTrustArgs,
    key: Option<&str>,
    flags: &CacheRemoteArgs,
) -> Result<i32, Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let scope = scope_of(trust.cache_scope.as_deref(), &config)?;
    let trusted = load_trust(&config, &trust.keys)?.keys_for(&scope);
    let keys = match key {
        Some(key) => Some(vec![parse_key(key)?]),
        None => None,
    };
    let remote = connect(flags, &config, &scope)?;
    let progress = Progress::new("verifying");
    let scrubbed = remote::verify(
        &remote,
        &store,
        keys,
        &trusted,
        Some(&|done, total| progress.show(done, total)),
    )
    .map_err(unusable)?;
    let mut code = exit::SUCCESS;
    let mut results = Vec::new();
    for entry in &scrubbed {
        let key = &entry.key;
        let (verified, summary, details) = match &entry.outcome {
            ScrubbedOutcome::Verified {
                manifest,
                signer,
                bytes,
            } => (
                true,
                format!("verified: {key} ({manifest}, {bytes} bytes, signed by {signer})"),
                json!({ "manifest": manifest, "signer": signer, "bytes": bytes }),
            ),
            ScrubbedOutcome::Unverified { reason } => (
                false,
                format!("missing: {key} ({reason})"),
                json!({ "reason": "missing", "error": reason }),
            ),
            ScrubbedOutcome::Refused { error, quarantined } => (
                false,
                format!(
                    "refused: {key}: {}{}",
                    error.message(),
                    quarantined
                        .as_ref()
                        .map(|q| format!(" (quarantined in {})", q.display()))
                        .unwrap_or_default()
                ),
                json!({
                    "step": error.step(), "reason": error.reason(), "error": error.message(),
                    "quarantine": quarantined,
                }),
            ),
        };
        if !verified {
            code = exit::NOT_VERIFIED;
        }
        if !cache.json {
            println!("{summary}");
        }
        let mut result = json!({ "key": key, "verified": verified, "summary": summary });
        if let (Some(result), Some(details)) = (result.as_object_mut(), details.as_object()) {
            result.extend(details.clone());
        }
        results.push(result);
    }
    if cache.json {
        print_json(&json!({
            "repository": remote.repository().to_string(),
            "scope": scope,
            "entries": results,
        }));
    }
    Ok(code)
}

pub fn pull(
    cache: &CacheDirArgs,
    trust: &CacheTrustArgs,
    flags: &CacheRemoteArgs,
    key: &str,
) -> Result<i32, Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let scope = scope_of(trust.cache_scope.as_deref(), &config)?;
    let trusted = load_trust(&config, &trust.keys)?.keys_for(&scope);
    let key = parse_key(key)?;
    let remote = connect(flags, &config, &scope)?;
    let progress = Progress::new("pulling");
    let lookup = remote::pull(
        &remote,
        &store,
        &key,
        &trusted,
        Some(&|done, total| progress.show(done, total)),
    );
    let reference = remote.reference(&key);
    let (verified, summary, json) = match lookup {
        RemoteLookup::Hit { restored, manifest } => {
            let summary = format!(
                "pulled: {reference} ({manifest}, {} entries, {} bytes, signed by {}) into {}",
                restored.files,
                restored.bytes,
                restored.signer,
                restored.entry_dir.display()
            );
            let json = json!({
                "key": key, "verified": true, "reference": reference, "manifest": manifest,
                "signer": restored.signer, "entry": restored.entry_dir,
                "files": restored.files, "bytes": restored.bytes, "summary": summary,
            });
            (true, summary, json)
        }
        RemoteLookup::Miss { reason } => {
            let summary = format!("missing: {reference} ({reason})");
            let json = json!({
                "key": key, "verified": false, "reference": reference, "reason": "missing",
                "error": reason, "summary": summary,
            });
            (false, summary, json)
        }
        RemoteLookup::Refused { error, quarantined } => {
            let summary = format!(
                "refused: {reference}: {}{}",
                error.message(),
                quarantined
                    .as_ref()
                    .map(|q| format!(" (quarantined in {})", q.display()))
                    .unwrap_or_default()
            );
            let json = json!({
                "key": key, "verified": false, "reference": reference, "step": error.step(),
                "reason": error.reason(), "error": error.message(), "quarantine": quarantined,
                "summary": summary,
            });
            (false, summary, json)
        }
        RemoteLookup::Unusable(trouble) => return Err(unusable(trouble)),
    };
    if cache.json {
        print_json(&json);
    } else if verified {
        println!("{summary}");
    } else {
        eprintln!("hermetic: {summary}");
    }
    Ok(if verified {
        exit::SUCCESS
    } else {
        exit::NOT_VERIFIED
    })
}

pub fn push(
    cache: &CacheDirArgs,
    trust: &CacheTrustArgs,
    flags: &CacheRemoteArgs,
    sign_key: Option<&Path>,
    key: &str,
) -> Result<i32, Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let scope = scope_of(trust.cache_scope.as_deref(), &config)?;
    let trust_config = load_trust(&config, &trust.keys)?;
    let trusted = trust_config.keys_for(&scope);
    let key = parse_key(key)?;
    let sign_key = sign_key
        .map(Path::to_owned)
        .or(config.cache.sign_key.clone())
        .ok_or_else(|| {
            usage(anyhow::anyhow!(
                "cache push needs --sign-key (or `sign_key` in the [cache] table of the config \
                 file): an entry is published signed for the registry"
            ))
        })?;
    let state_dir = trust.keys.state_dir.as_ref().unwrap_or(&config.state_dir);
    let signer = signing_key(state_dir, Some(&sign_key), &Password::from_env()).map_err(usage)?;
    if !trust_config.accepts(&scope, &signer.verifying_key()) {
        return Err(usage(anyhow::anyhow!(
            "--sign-key {}: the key is not trusted for scope {} (pass its public key as \
             --trust-key): readers would refuse the entry",
            sign_key.display(),
            scope.as_str()
        )));
    }
    // The signature is all that is checked here: the upload hashes the archive as it
    // reads it and commits nothing but the signed digest, and every reader verifies the
    // whole entry again. (A full local restore first took longer than the upload.)
    let entry_dir = store.entry_dir(&scope, &key);
    let refused = match signed_by(&store, &entry_dir, &trusted) {
        Ok((entry, _)) if entry.cache_key == key && entry.scope == scope.as_str() => Ok(entry),
        Ok((entry, _)) => Err(format!(
            "the entry is signed for key {} in scope {}, not {key} in {}",
            entry.cache_key,
            entry.scope,
            scope.as_str()
        )),
        Err(error) => Err(error.message()),
    };
    let entry = match refused {
        Ok(entry) => entry,
        Err(reason) => {
            let summary = format!("not pushed: {key}: {reason}");
            if cache.json {
                print_json(&json!({
                    "key": key, "verified": false, "error": reason, "summary": summary,
                }));
            } else {
                eprintln!("hermetic: {summary}");
            }
            return Ok(exit::NOT_VERIFIED);
        }
    };
    let remote = connect(flags, &config, &scope)?;
    let progress = Progress::new("pushing");
    let pushed = remote::push(
        &remote,
        &store,
        &entry,
        &entry_dir,
        &signer,
        &trusted,
        Some(&|done, total| progress.show(done, total)),
    )
    .map_err(|error| Failure::new(exit::SANDBOX_FAILED, error))?;
    let reference = remote.reference(&key);
    if cache.json {
        print_json(&json!({
            "key": key, "reference": reference, "push": pushed.outcome,
            "manifest": pushed.manifest, "conflict": pushed.conflict,
        }));
    } else {
        match &pushed.conflict {
            None => println!("{}: {reference} ({})", pushed.outcome, pushed.manifest),
            Some(conflict) => eprintln!(
                "hermetic: conflict: {reference} names {} (archive {}, signed by {}{}), not \
                 ours {} (archive {}); left as it is",
                conflict.theirs.manifest,
                conflict.theirs.archive.as_deref().unwrap_or("unknown"),
                conflict.theirs.signer.as_deref().unwrap_or("nobody"),
                if conflict.theirs.trusted == Some(true) {
                    ", trusted"
                } else {
                    ", not trusted"
                },
                conflict.ours.manifest,
                conflict.ours.archive.as_deref().unwrap_or("unknown"),
            ),
        }
    }
    Ok(if pushed.outcome == RemotePush::Conflict {
        exit::NOT_VERIFIED
    } else {
        exit::SUCCESS
    })
}

/// A transfer's progress on stderr, when it is a terminal and the archive is large: one
/// line rewritten at most a few times a second, ended when the transfer is.
struct Progress {
    verb: &'static str,
    on_terminal: bool,
    /// Behind a lock: an upload reads (and reports) on a thread of its own.
    last: Mutex<Option<Instant>>,
}

impl Progress {
    fn new(verb: &'static str) -> Self {
        Progress {
            verb,
            on_terminal: std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }

    fn show(&self, done: u64, total: u64) {
        if !self.on_terminal || total < PROGRESS_FROM_BYTES {
            return;
        }
        let finished = done >= total;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = last.is_none_or(|last| last.elapsed() >= Duration::from_millis(200));
        if !(due || finished) {
            return;
        }
        *last = Some(Instant::now());
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        eprint!(
            "\r{} {:.1} / {:.1} MiB ({:>3}%)",
            self.verb,
            mib(done),
            mib(total),
            done.saturating_mul(100) / total.max(1)
        );
        if finished {
            eprintln!();
        }
    }
}
