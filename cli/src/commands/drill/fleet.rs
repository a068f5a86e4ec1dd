//! The fleet's side of a drill (`hermetic::repro::fleet`): which registry, which keys sign
//! this runner's results and which are trusted in others', from the flags over the
//! config's `[cache]` table.
use std::path::{Path, PathBuf};

use hermetic::exit_code as exit;
use hermetic::repro::fleet::{Fleet, FleetResult};
use hermetic::signing::{Password, SigningKey, VerifyingKey};
use hermetic_contract::report::{CaseResult, CaseVerdict, DriftRecord, DrillReport};

use crate::args::CacheRemoteArgs;
use crate::Failure;

/// A connected fleet repository and the keys it is read and written with.
pub struct FleetContext {
    pub fleet: Fleet,
    pub trusted: Vec<VerifyingKey>,
    /// Signs this runner's results; without one nothing is published.
    pub signing: Option<SigningKey>,
    /// Set once the registry failed to answer: the other cases do not wait for it again.
    unreachable: std::cell::Cell<bool>,
}

fn usage(err: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::USAGE, err)
}

/// The fleet of `url` (empty: the config's `[cache] remote`), or None when neither names
/// one. `sign_key` (else the config's) signs results; the config's trusted keys, the
/// flags' and the signing key's own are trusted.
pub fn connect(
    url: Option<&str>,
    trust_keys: &[PathBuf],
    sign_key: Option<&Path>,
    want_signing: bool,
    plain_http: bool,
) -> Result<Option<FleetContext>, Failure> {
    let config = crate::commands::cache::config()?;
    let url = match url {
        Some("") | None => config.cache.remote.clone(),
        Some(url) => Some(url.to_owned()),
    };
    let Some(url) = url else {
        return Ok(None);
    };
    let flags = CacheRemoteArgs {
        cache_remote: Some(url),
        cache_remote_timeout: None,
        registry_ca: None,
        registry_plain_http: plain_http,
    };
    let options = crate::commands::cache::remote_options(&flags, false, &config.cache)?
        .expect("a URL was given");
    let fleet = Fleet::connect(&options).map_err(usage)?;
    let mut trusted =
        crate::commands::verify::trusted_keys(config.cache.trust_keys.iter().chain(trust_keys))?;
    let sign_key = sign_key
        .map(Path::to_path_buf)
        .or(config.cache.sign_key.clone());
    let signing = match sign_key.filter(|_| want_signing) {
        Some(path) => {
            let password = Password::from_env();
            let key = std::fs::read_to_string(&path)
                .map_err(anyhow::Error::from)
                .and_then(|pem| {
                    SigningKey::from_pem(&pem, Some(password.as_bytes()))
                        .map_err(anyhow::Error::from)
                })
                .map_err(|err| usage(err.context(format!("--sign-key {}", path.display()))))?;
            trusted.push(key.verifying_key());
            Some(key)
        }
        None => None,
    };
    Ok(Some(FleetContext {
        fleet,
        trusted,
        signing,
        unreachable: std::cell::Cell::new(false),
    }))
}

impl FleetContext {
    /// The newest trusted result of another runner for `key` whose digest is not
    /// `digest`: a drift across the fleet. An unreachable registry is a warning, not a
    /// verdict.
    pub fn drift(&self, key: &str, digest: &str, runner: &str) -> Option<DriftRecord> {
        if self.unreachable.get() {
            return None;
        }
        let results = match self.fleet.results(key, &self.trusted) {
            Ok(results) => results,
            Err(err) => {
                eprintln!(
                    "hermetic: warning: this drill is not compared with the fleet's results: {}",
                    hermetic::errors::Chain(&err)
                );
                self.unreachable.set(true);
                return None;
            }
        };
        let newest = results.trusted.into_iter().find(|result| {
            result.runner != runner
                && CaseVerdict::parse(&result.verdict).is_some_and(CaseVerdict::has_stable_digest)
                && result.digest.is_some()
        })?;
        let theirs = newest.digest?;
        (theirs != digest).then_some(DriftRecord {
            digest: theirs,
            recorded: newest.time,
            runner: newest.runner,
        })
    }

    /// Publishes each case that has inputs to compare by; failures are warnings.
    pub fn publish(&self, drill: &DrillReport) {
        let Some(key) = &self.signing else {
            eprintln!(
                "hermetic: warning: drill results not published to {}: no signing key (--sign-key or [cache] sign_key)",
                self.fleet.repository()
            );
            return;
        };
        let mut published = 0;
        for case in &drill.cases {
            let Some(result) = fleet_result(drill, case) else {
                continue;
            };
            match self.fleet.publish(&result, key) {
                Ok(()) => published += 1,
                Err(err) => eprintln!(
                    "hermetic: warning: case {} not published: {}",
                    case.name,
                    hermetic::errors::Chain(&err)
                ),
            }
        }
        eprintln!(
            "hermetic: published {published} case result(s) to {}",
            self.fleet.repository()
        );
    }
}

fn fleet_result(drill: &DrillReport, case: &CaseResult) -> Option<FleetResult> {
    Some(FleetResult {
        case: case.name.clone(),
        cache_key: case.cache_key.clone()?,
        digest: case
            .digest
            .clone()
            .filter(|_| case.verdict != CaseVerdict::Failed),
        verdict: case.verdict.as_str().to_owned(),
        runner: drill.runner.clone(),
        drill: drill.id.clone(),
        time: drill.finished.clone(),
    })
}
