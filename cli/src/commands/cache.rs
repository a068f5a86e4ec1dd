//! `hermetic cache`: list, verify, restore, quarantine and gc over a cache directory, and
//! push, pull, list and scrub the remote cache (`remote_cache.rs`).
use std::path::{Path, PathBuf};

use hermetic::build::RemoteCacheOptions;
use hermetic::cache::quarantine;
use hermetic::cache::store::{EntryInfo, DEFAULT_SCOPE};
use hermetic::cache::{restore, signed_by, CacheKey, Lookup, RestoreTargets, Scope, Store, Trust};
use hermetic::exit_code as exit;
use hermetic_contract::build::DEFAULT_REMOTE_TIMEOUT_SECS;
use hermetic_daemon::config::{CacheConfig, Config};
use serde_json::json;

use super::remote_cache;
use crate::args::{
    CacheCommand, CacheDirArgs, CacheKeysArgs, CacheRemoteArgs, CacheTrustArgs, QuarantineCommand,
};
use crate::Failure;

pub fn cache(command: CacheCommand) -> Result<i32, Failure> {
    match command {
        CacheCommand::Ls {
            cache,
            keys,
            remote: true,
            cache_scope,
            remote_cache,
        } => remote_cache::ls(&cache, &keys, cache_scope.as_deref(), &remote_cache),
        CacheCommand::Ls { cache, keys, .. } => ls(&cache, &keys),
        CacheCommand::Show { cache, trust, key } => show(&cache, &trust, &key),
        CacheCommand::Verify {
            cache,
            trust,
            key,
            remote: true,
            remote_cache,
        } => remote_cache::verify(&cache, &trust, key.as_deref(), &remote_cache),
        CacheCommand::Verify {
            cache, trust, key, ..
        } => verify(&cache, &trust, key.as_deref()),
        CacheCommand::Push {
            cache,
            trust,
            remote_cache,
            sign_key,
            key,
        } => remote_cache::push(&cache, &trust, &remote_cache, sign_key.as_deref(), &key),
        CacheCommand::Pull {
            cache,
            trust,
            remote_cache,
            key,
        } => remote_cache::pull(&cache, &trust, &remote_cache, &key),
        CacheCommand::Restore {
            cache,
            trust,
            key,
            dest,
        } => restore_to(&cache, &trust, &key, &dest),
        CacheCommand::Quarantine(QuarantineCommand::Ls { cache, keys }) => {
            quarantine_ls(&cache, &keys)
        }
        CacheCommand::Gc {
            cache,
            keys,
            max_size,
            drop_untrusted,
        } => gc(&cache, &keys, max_size, drop_untrusted),
    }
}

pub(super) fn usage(err: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::USAGE, err)
}

/// The configuration `[cache]` defaults come from (see `hermetic_daemon::config::load_effective`).
pub(super) fn config() -> Result<Config, Failure> {
    hermetic_daemon::config::load_effective(None).map_err(usage)
}

/// The remote cache from the flags over the config file's `[cache]` table: None when
/// neither names one. `push` is `--cache-push` (the config's `push` counts too).
pub(super) fn remote_options(
    flags: &CacheRemoteArgs,
    push: bool,
    config: &CacheConfig,
) -> Result<Option<RemoteCacheOptions>, Failure> {
    let Some(url) = flags.cache_remote.clone().or(config.remote.clone()) else {
        return Ok(None);
    };
    hermetic::cache::remote::parse_url(&url).map_err(usage)?;
    let registry_ca = match flags.registry_ca.clone().or(config.registry_ca.clone()) {
        Some(ca) => Some(super::remote::absolute("--registry-ca", &ca).map_err(usage)?),
        None => None,
    };
    Ok(Some(RemoteCacheOptions {
        url,
        push: push || config.push,
        timeout_secs: flags
            .cache_remote_timeout
            .or(config.remote_timeout_secs)
            .unwrap_or(DEFAULT_REMOTE_TIMEOUT_SECS),
        registry_ca,
        plain_http: flags.registry_plain_http,
    }))
}

pub(super) fn open(cache: &CacheDirArgs, config: &Config) -> Result<Store, Failure> {
    match &cache.cache_dir {
        Some(dir) => Store::open(dir).map_err(usage),
        None => open_configured(config),
    }
}

fn open_configured(config: &Config) -> Result<Store, Failure> {
    let dir = config.cache.dir.as_ref().ok_or_else(|| {
        usage(anyhow::anyhow!(
            "no cache directory: give --cache-dir or set `dir` in the [cache] table of the config file"
        ))
    })?;
    Store::open(dir).map_err(usage)
}

pub(super) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// The keys trusted from the config and the command line (the local key made on first
/// use), for any scope.
pub(super) fn load_trust(config: &Config, keys: &CacheKeysArgs) -> Result<Trust, Failure> {
    let state_dir = keys.state_dir.as_ref().unwrap_or(&config.state_dir);
    let trusted: Vec<PathBuf> = config
        .cache
        .trust_keys
        .iter()
        .chain(&keys.trust_keys)
        .cloned()
        .collect();
    Trust::load(state_dir, &trusted).map_err(usage)
}

/// Why no key trusted for its scope vouches for an entry.
struct Untrusted {
    /// The stable reason, when the signature itself was refused.
    reason: Option<&'static str>,
    error: String,
}

/// The entry (or quarantined entry) at `dir` of `scope` and its signer's key id, when a
/// key trusted for the scope signed it.
fn trusted_signer(
    store: &Store,
    trust: &Trust,
    scope: &str,
    dir: &Path,
) -> Result<(hermetic::cache::EntryManifest, String), Untrusted> {
    let scope = Scope::parse(scope).map_err(|err| Untrusted {
        reason: None,
        error: hermetic::errors::error_chain(&err),
    })?;
    signed_by(store, dir, &trust.keys_for(&scope)).map_err(|err| Untrusted {
        reason: Some(err.reason()),
        error: err.message(),
    })
}

/// Who vouches for an entry, for the listings.
struct Signature(Result<(hermetic::cache::EntryManifest, String), Untrusted>);

impl Signature {
    fn of(store: &Store, trust: &Trust, scope: &str, dir: &Path) -> Signature {
        Signature(trusted_signer(store, trust, scope, dir))
    }

    fn to_json(&self) -> serde_json::Value {
        match &self.0 {
            Ok((entry, signer)) => json!({
                "trusted": true, "signer": signer, "verdict": entry.verdict,
                "created_at": entry.created_at,
            }),
            Err(Untrusted {
                reason: Some(reason),
                error,
            }) => json!({ "trusted": false, "reason": reason, "error": error }),
            Err(Untrusted {
                reason: None,
                error,
            }) => json!({ "trusted": false, "error": error }),
        }
    }

    /// `trusted KEYID` or `untrusted (REASON)`, for the text listings.
    fn summary(&self) -> String {
        match &self.0 {
            Ok((_, signer)) => format!("trusted {signer}"),
            Err(untrusted) => format!(
                "untrusted ({})",
                untrusted.reason.unwrap_or(&untrusted.error)
            ),
        }
    }
}

fn ls(cache: &CacheDirArgs, keys: &CacheKeysArgs) -> Result<i32, Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let trust = load_trust(&config, keys)?;
    let entries = store.list().map_err(usage)?;
    let signatures: Vec<Signature> = entries
        .iter()
        .map(|entry| Signature::of(&store, &trust, &entry.scope, &entry.path))
        .collect();
    if cache.json {
        #[derive(serde::Serialize)]
        struct Listed<'a> {
            #[serde(flatten)]
            entry: &'a EntryInfo,
            signature: serde_json::Value,
        }
        let listed: Vec<Listed> = entries
            .iter()
            .zip(&signatures)
            .map(|(entry, signature)| Listed {
                entry,
                signature: signature.to_json(),
            })
            .collect();
        print_json(&json!({ "entries": listed }));
    } else {
        for (entry, signature) in entries.iter().zip(&signatures) {
            println!(
                "{:<20} {} {:>12} bytes  {}",
                entry.scope,
                entry.key,
                entry.bytes,
                signature.summary()
            );
        }
    }
    Ok(exit::SUCCESS)
}

/// The scope `--cache-scope` names, else the config's, else `local`.
pub(super) fn scope_of(flag: Option<&str>, config: &Config) -> Result<Scope, Failure> {
    let scope = flag
        .or(config.cache.scope.as_deref())
        .unwrap_or(DEFAULT_SCOPE);
    Scope::parse(scope).map_err(usage)
}

/// The store, the scope and the keys trusted for it (the config file read once).
fn open_trusted(
    cache: &CacheDirArgs,
    trust: &CacheTrustArgs,
) -> Result<(Store, Scope, Vec<hermetic::signing::VerifyingKey>), Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let scope = scope_of(trust.cache_scope.as_deref(), &config)?;
    let keys = load_trust(&config, &trust.keys)?.keys_for(&scope);
    Ok((store, scope, keys))
}

fn verify(cache: &CacheDirArgs, trust: &CacheTrustArgs, key: Option<&str>) -> Result<i32, Failure> {
    let (store, scope, keys) = open_trusted(cache, trust)?;
    let wanted: Vec<CacheKey> = match key {
        Some(key) => vec![CacheKey::parse(key).map_err(usage)?],
        None => store
            .list()
            .map_err(usage)?
            .into_iter()
            .filter(|entry| entry.scope == scope.as_str())
            .filter_map(|entry| CacheKey::parse(&entry.key).ok())
            .collect(),
    };
    let mut code = exit::SUCCESS;
    let mut results = Vec::new();
    for key in wanted {
        let lookup = restore(&store, &scope, &key, &keys, true, RestoreTargets::default());
        let described = describe(&key, &lookup);
        if !described.verified {
            code = exit::NOT_VERIFIED;
        }
        if !cache.json {
            println!("{}", described.summary);
        }
        results.push(described.json);
    }
    if cache.json {
        print_json(&json!({ "scope": scope, "entries": results }));
    }
    Ok(code)
}

/// What a lookup found, for the listings.
pub(super) struct Described {
    pub(super) verified: bool,
    /// One line.
    pub(super) summary: String,
    /// The details, the summary among them.
    pub(super) json: serde_json::Value,
}

pub(super) fn describe(key: &CacheKey, lookup: &Lookup) -> Described {
    match lookup {
        Lookup::Hit(restored) => {
            let summary = format!(
                "verified: {key} ({} entries, {} bytes, signed by {})",
                restored.files, restored.bytes, restored.signer
            );
            Described {
                verified: true,
                json: json!({
                    "key": key, "verified": true, "signer": restored.signer,
                    "files": restored.files, "bytes": restored.bytes, "entry": restored.entry,
                    "summary": summary,
                }),
                summary,
            }
        }
        Lookup::Miss { reason } => {
            let summary = format!(
                "missing: {key}{}",
                reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            Described {
                verified: false,
                json: json!({
                    "key": key, "verified": false, "reason": "missing", "error": reason,
                    "summary": summary,
                }),
                summary,
            }
        }
        Lookup::Refused { error, quarantined } => {
            let summary = format!(
                "refused: {key}: {}{}",
                error.message(),
                quarantined
                    .as_ref()
                    .map(|q| format!(" (quarantined in {})", q.display()))
                    .unwrap_or_default()
            );
            Described {
                verified: false,
                json: json!({
                    "key": key, "verified": false, "step": error.step(), "reason": error.reason(),
                    "error": error.message(), "quarantine": quarantined,
                    "summary": summary,
                }),
                summary,
            }
        }
    }
}

fn show(cache: &CacheDirArgs, trust: &CacheTrustArgs, key: &str) -> Result<i32, Failure> {
    let (store, scope, keys) = open_trusted(cache, trust)?;
    let key = CacheKey::parse(key).map_err(usage)?;
    let lookup = restore(&store, &scope, &key, &keys, true, RestoreTargets::default());
    let Lookup::Hit(restored) = &lookup else {
        eprintln!("hermetic: {}", describe(&key, &lookup).summary);
        return Ok(exit::NOT_VERIFIED);
    };
    let entry = &restored.entry;
    if cache.json {
        print_json(&json!({ "signer": restored.signer, "entry": entry }));
        return Ok(exit::SUCCESS);
    }
    let inputs = &entry.key_inputs;
    println!("key      {}", entry.cache_key);
    println!(
        "scope    {}   verdict {}   signed by {}",
        entry.scope, entry.verdict, restored.signer
    );
    println!(
        "created  {}   builder {}",
        entry.created_at, entry.builder.id
    );
    println!("command  {}", inputs.command.join(" "));
    println!("outputs  {}", inputs.outputs.join(" "));
    println!(
        "archive  {} bytes, sha256 {}, blake3 {}",
        entry.archive.size, entry.archive.sha256, entry.archive.blake3
    );
    for file in &entry.manifest.files {
        println!("  {:o} {:>10} {}", file.mode, file.size, file.path);
    }
    Ok(exit::SUCCESS)
}

fn restore_to(
    cache: &CacheDirArgs,
    trust: &CacheTrustArgs,
    key: &str,
    dest: &Path,
) -> Result<i32, Failure> {
    let (store, scope, keys) = open_trusted(cache, trust)?;
    let key = CacheKey::parse(key).map_err(usage)?;
    if dest.symlink_metadata().is_ok() {
        return Err(usage(anyhow::anyhow!(
            "--dest {}: already exists; name a new directory",
            dest.display()
        )));
    }
    let targets = RestoreTargets {
        artifact: None,
        extract: Some(dest),
    };
    let lookup = restore(&store, &scope, &key, &keys, true, targets);
    let Described {
        verified,
        summary,
        json,
    } = describe(&key, &lookup);
    if cache.json {
        print_json(&json);
    } else if verified {
        println!("restored: {summary} -> {}", dest.display());
    } else {
        eprintln!("hermetic: {summary}");
    }
    Ok(if verified {
        exit::SUCCESS
    } else {
        exit::NOT_VERIFIED
    })
}

fn quarantine_ls(cache: &CacheDirArgs, keys: &CacheKeysArgs) -> Result<i32, Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let trust = load_trust(&config, keys)?;
    let entries = quarantine::list(&store).map_err(usage)?;
    // The scope comes from reason.json; without it nothing says which keys apply.
    let signatures: Vec<Option<Signature>> = entries
        .iter()
        .map(|(path, record)| {
            record
                .as_ref()
                .map(|record| Signature::of(&store, &trust, &record.scope, path))
        })
        .collect();
    if cache.json {
        let entries: Vec<_> = entries
            .iter()
            .zip(&signatures)
            .map(|((path, record), signature)| {
                let signature = signature.as_ref().map(Signature::to_json);
                json!({ "path": path, "record": record, "signature": signature })
            })
            .collect();
        print_json(&json!({ "quarantine": entries }));
    } else {
        for ((path, record), signature) in entries.iter().zip(&signatures) {
            match (record, signature) {
                (Some(record), Some(signature)) => println!(
                    "{} {} {} step {} {}: {}  [{}]",
                    record.time,
                    record.scope,
                    record.key,
                    record.step,
                    record.reason,
                    record.message,
                    signature.summary()
                ),
                _ => println!("{} (no readable reason.json)", path.display()),
            }
        }
    }
    Ok(exit::SUCCESS)
}

fn gc(
    cache: &CacheDirArgs,
    keys: &CacheKeysArgs,
    max_size: Option<u64>,
    drop_untrusted: bool,
) -> Result<i32, Failure> {
    let config = config()?;
    let store = open(cache, &config)?;
    let trust = if drop_untrusted {
        Some(load_trust(&config, keys)?)
    } else {
        None
    };
    let untrusted = |entry: &hermetic::cache::store::EntryInfo| {
        trust
            .as_ref()
            .is_some_and(|trust| trusted_signer(&store, trust, &entry.scope, &entry.path).is_err())
    };
    let report = store
        .gc(max_size.unwrap_or(u64::MAX), untrusted)
        .map_err(usage)?;
    if cache.json {
        print_json(&json!(report));
    } else {
        println!(
            "kept {} entries ({} bytes), evicted {} ({} bytes; {} not signed by a trusted key)",
            report.kept,
            report.kept_bytes,
            report.evicted.len(),
            report.evicted_bytes,
            report.evicted_untrusted
        );
    }
    Ok(exit::SUCCESS)
}
