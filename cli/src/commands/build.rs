//! `hermetic build`: runs `hermetic::build::execute` (in this process, or as a daemon
//! job) and prints its report, as JSON (`--json`) or for a human. Both paths have the
//! same `hermetic.build/v1` report, from which provenance is made.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hermetic::build::{
    self, BuildReport, BuildRequest, BuildVerdict, CacheOptions, CacheReport, CacheStatus,
};
use hermetic::exit_code as exit;
use hermetic_contract::wire::{JobRequest, JobState};

use super::remote::{self, Relay};
use crate::args::BuildArgs;
use crate::Failure;

/// The build's report, and when it ran (for provenance).
struct Finished {
    report: BuildReport,
    started_on: SystemTime,
    finished_on: SystemTime,
}

pub fn build(args: BuildArgs, in_process: bool) -> Result<i32, Failure> {
    let request = BuildRequest {
        profile: args.sandbox.profile.clone(),
        src: args.sandbox.src.clone(),
        outputs: args.outputs.clone(),
        artifact: args.artifact.clone(),
        extract: args.extract.clone(),
        single: args.single,
        explain: args.explain,
        source_date_epoch: args.sandbox.source_date_epoch,
        command: args.command.clone(),
        image: args.sandbox.image.clone(),
        cache: cache_options(&args)?,
    };
    // The image store this process's builds read (a daemon job reads the daemon's).
    let state_dir = match &args.cache.state_dir {
        Some(dir) => dir.clone(),
        None => super::cache::config()?.state_dir,
    };
    hermetic::image::root::set_state_dir(state_dir);
    // Absolute in both modes, so both reports name the same paths.
    let request = absolute_paths(request).map_err(|err| Failure::new(exit::USAGE, err))?;
    let finished = if in_process {
        build_in_process(&request)?
    } else {
        build_via_daemon(&request)?
    };
    let report = &finished.report;
    print_cache(&report.cache);
    if args.json {
        let json = report
            .to_published_json()
            .map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print_human(report);
    }
    if let Some(path) = &args.provenance {
        if report.output.is_some() {
            write_provenance(&args, &request, &finished, path)?;
        }
    }
    Ok(report.exit_code)
}

fn build_in_process(request: &BuildRequest) -> Result<Finished, Failure> {
    // The build's own output is a log, not hermetic's result: it goes to stderr, so stdout
    // carries only the report. The build never holds the terminal: its log is relayed.
    let log =
        || -> std::io::Result<Box<dyn std::io::Write + Send>> { Ok(Box::new(std::io::stderr())) };
    let started_on = SystemTime::now();
    let report =
        build::execute(request, &log, None, None).map_err(|err| Failure::new(exit::USAGE, err))?;
    let finished_on = SystemTime::now();
    Ok(Finished {
        report,
        started_on,
        finished_on,
    })
}

/// The cache part of the request: the --cache-* flags and --sign-key, over the config
/// file's `[cache]` table (trusted keys from both count).
fn cache_options(args: &BuildArgs) -> Result<Option<Box<CacheOptions>>, Failure> {
    let flags = &args.cache;
    let config = super::cache::config()?;
    let Some(dir) = flags.cache_dir.clone().or(config.cache.dir.clone()) else {
        let needs_cache = [
            (flags.cache_scope.is_some(), "--cache-scope"),
            (!flags.trust_keys.is_empty(), "--trust-key"),
            (flags.require_cache, "--require-cache"),
            (flags.cache_single_run, "--cache-single-run"),
            (flags.remote.cache_remote.is_some(), "--cache-remote"),
            (flags.cache_push, "--cache-push"),
            (
                flags.remote.cache_remote_timeout.is_some(),
                "--cache-remote-timeout",
            ),
            (flags.remote.registry_ca.is_some(), "--registry-ca"),
            (flags.remote.registry_plain_http, "--registry-plain-http"),
        ];
        if let Some((_, flag)) = needs_cache.into_iter().find(|(given, _)| *given) {
            return Err(Failure::new(
                exit::USAGE,
                anyhow::anyhow!(
                    "{flag} needs a cache: give --cache-dir or set `dir` in the [cache] table of the config file"
                ),
            ));
        }
        if args.sign_key.is_some() && args.provenance.is_none() {
            return Err(Failure::new(
                exit::USAGE,
                anyhow::anyhow!("--sign-key needs --provenance or --cache-dir"),
            ));
        }
        return Ok(None);
    };
    let remote = super::cache::remote_options(&flags.remote, flags.cache_push, &config.cache)?;
    Ok(Some(Box::new(CacheOptions {
        dir,
        scope: flags.cache_scope.clone().or(config.cache.scope),
        trust_keys: config
            .cache
            .trust_keys
            .into_iter()
            .chain(flags.trust_keys.iter().cloned())
            .collect(),
        sign_key: args.sign_key.clone().or(config.cache.sign_key),
        state_dir: Some(flags.state_dir.clone().unwrap_or(config.state_dir)),
        require: flags.require_cache,
        single_run: flags.cache_single_run,
        remote,
    })))
}

/// The request with its host paths made absolute (the daemon does not share the
/// caller's working directory). A profile path stays as given here: the daemon's copy of
/// the request gets it absolute, so only its messages name it differently.
fn absolute_paths(mut request: BuildRequest) -> anyhow::Result<BuildRequest> {
    request.src = remote::absolute("--src", &request.src)?;
    request.artifact = remote::absolute("--artifact", &request.artifact)?;
    if let Some(dest) = &request.extract {
        request.extract = Some(remote::absolute("--extract", dest)?);
    }
    if let Some(cache) = request.cache.as_deref_mut() {
        cache.dir = remote::absolute("--cache-dir", &cache.dir)?;
        for key in &mut cache.trust_keys {
            *key = remote::absolute("--trust-key", key)?;
        }
        if let Some(key) = &cache.sign_key {
            cache.sign_key = Some(remote::absolute("--sign-key", key)?);
        }
        if let Some(dir) = &cache.state_dir {
            cache.state_dir = Some(remote::absolute("--state-dir", dir)?);
        }
        if let Some(ca) = cache
            .remote
            .as_mut()
            .and_then(|remote| remote.registry_ca.as_mut())
        {
            *ca = remote::absolute("--registry-ca", ca)?;
        }
    }
    Ok(request)
}

fn build_via_daemon(request: &BuildRequest) -> Result<Finished, Failure> {
    let setup_failed = |err: anyhow::Error| Failure::new(exit::SANDBOX_FAILED, err);
    let mut request = request.clone();
    request.profile = remote::absolute_profile(&request.profile).map_err(setup_failed)?;
    let job = remote::execute(
        &JobRequest::Build(request),
        Relay::AllToStderr,
        exit::SANDBOX_FAILED,
    )?;
    let error = job.error.clone().unwrap_or_default();
    match (job.state, job.report) {
        (JobState::Succeeded | JobState::Failed, Some(report)) => {
            let at = |ms: Option<u64>| UNIX_EPOCH + Duration::from_millis(ms.unwrap_or_default());
            Ok(Finished {
                report: *report,
                started_on: at(job.started_at_ms),
                finished_on: at(job.finished_at_ms),
            })
        }
        // No report: the request could not be built as asked (as `build::execute`'s
        // error in process), or the daemon failed to run it.
        (JobState::Succeeded | JobState::Failed, None) => Err(Failure::new(
            job.exit_code.unwrap_or(exit::SANDBOX_FAILED),
            anyhow::anyhow!(error),
        )),
        (state, _) => Err(setup_failed(anyhow::anyhow!(
            "job {} was {}{}",
            job.id,
            state.as_str(),
            if error.is_empty() {
                String::new()
            } else {
                format!(": {error}")
            }
        ))),
    }
}

fn print_human(report: &BuildReport) {
    if let Some(error) = &report.error {
        eprintln!("hermetic: build failed: {error}");
        return;
    }
    let Some(output) = &report.output else {
        return;
    };
    let verdict = report.verdict;
    let archive = output.archive.display();
    if verdict != BuildVerdict::Nondeterministic {
        println!(
            "{verdict}: {archive} ({} entries, {} bytes)",
            output.files.len(),
            output.size
        );
        println!("  sha256 {}", output.digest.sha256);
        println!("  blake3 {}", output.digest.blake3);
        if let Some(dest) = &output.extracted_to {
            println!("  extracted to {}", dest.display());
        }
        return;
    }
    let differences = report.differences.as_deref().unwrap_or_default();
    let causes = report.suspected_causes.as_deref().unwrap_or_default();
    println!(
        "nondeterministic: {} path(s) differ between the canonical and the varied run",
        differences.len()
    );
    for difference in differences {
        let path = &difference.path;
        let suspected: Vec<&str> = causes
            .iter()
            .filter(|cause| cause.path == *path)
            .map(|cause| cause.suspect.cause())
            .collect();
        let suspected = if suspected.is_empty() {
            String::new()
        } else {
            format!("  (suspected: {})", suspected.join(", "))
        };
        println!("  {:<8} {path}{suspected}", difference.kind);
    }
    let varied: Vec<&str> = report
        .varied
        .iter()
        .flatten()
        .map(|varied| varied.what.as_str())
        .collect();
    println!("varied: {}", varied.join(", "));
    match &report.explain_report {
        Some(path) => println!("report: {}", path.display()),
        None => {
            println!("report: rerun with --explain for a per-file explanation (--json for digests)")
        }
    }
    println!("kept for inspection, flagged nondeterministic: {archive}");
}

/// One line on stderr about what the cache did (nothing when it was not used).
fn print_cache(cache: &CacheReport) {
    if cache.status == CacheStatus::Disabled {
        return;
    }
    let key = cache.key.as_deref().unwrap_or_default();
    let short = &key[..key.len().min(16)];
    let scope = cache.scope.as_deref().unwrap_or_default();
    let mut line = format!(
        "hermetic: cache {} (key {short}…, scope {scope})",
        cache.status
    );
    if let Some(path) = &cache.quarantine {
        line.push_str(&format!("; entry quarantined in {}", path.display()));
    }
    if cache.stored {
        line.push_str("; result stored");
    }
    if let Some(reason) = &cache.reason {
        line.push_str(&format!(": {reason}"));
    }
    eprintln!("{line}");
    if let Some(remote) = &cache.remote {
        let mut line = format!(
            "hermetic: remote cache {} ({})",
            remote.status, remote.repository
        );
        if let Some(push) = remote.push {
            line.push_str(&format!("; push {push}"));
        }
        if let Some(conflict) = &remote.conflict {
            line.push_str(&format!(
                "; the registry holds another entry for this key: {} (archive {}), ours {} \
                 (archive {})",
                conflict.theirs.manifest,
                conflict.theirs.archive.as_deref().unwrap_or("unknown"),
                conflict.ours.manifest,
                conflict.ours.archive.as_deref().unwrap_or("unknown"),
            ));
        }
        if let Some(reason) = &remote.reason {
            line.push_str(&format!(": {reason}"));
        }
        eprintln!("{line}");
    }
}

/// Writes the signed provenance bundle (or, when asked for a non-reproducible build, the
/// unsigned statement). Refuses to attest anything that is not reproducible.
fn write_provenance(
    args: &BuildArgs,
    request: &BuildRequest,
    finished: &Finished,
    path: &std::path::Path,
) -> Result<(), Failure> {
    let report = &finished.report;
    use hermetic::provenance::{statement_for, ProvenanceInputs, BUILDER_ID_PREFIX};
    use hermetic::signing::{dsse::IN_TOTO_PAYLOAD_TYPE, sign_dsse, Password, SigningKey};
    let fail = |code: i32, err: anyhow::Error| Failure::new(code, err);
    let reproducible = report.verdict == BuildVerdict::Reproducible;
    let key = match (&args.sign_key, reproducible || !args.unsigned_provenance) {
        (Some(key_path), true) => {
            let pem = std::fs::read_to_string(key_path).map_err(|e| {
                fail(
                    exit::USAGE,
                    anyhow::anyhow!("--sign-key {}: {e}", key_path.display()),
                )
            })?;
            let password = Password::from_env();
            Some(
                SigningKey::from_pem(&pem, Some(password.as_bytes())).map_err(|e| {
                    fail(
                        exit::USAGE,
                        anyhow::anyhow!("--sign-key {}: {e}", key_path.display()),
                    )
                })?,
            )
        }
        (None, true) => {
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!("--provenance needs --sign-key KEY"),
            ))
        }
        (_, false) => None,
    };
    let builder_id = match (&args.builder_id, &key) {
        (Some(id), _) => id.clone(),
        (None, Some(key)) => format!("{BUILDER_ID_PREFIX}{}", key.verifying_key().key_id()),
        (None, None) => format!("{BUILDER_ID_PREFIX}unsigned"),
    };
    let inputs = ProvenanceInputs {
        request,
        report,
        builder_id,
        started_on: finished.started_on,
        finished_on: finished.finished_on,
    };
    let statement = statement_for(&inputs, args.unsigned_provenance).map_err(|e| {
        fail(
            match report.exit_code {
                exit::SUCCESS => exit::SANDBOX_FAILED,
                code => code,
            },
            e.into(),
        )
    })?;
    let payload =
        serde_json::to_vec(&statement).map_err(|e| fail(exit::SANDBOX_FAILED, e.into()))?;
    let bytes = match &key {
        Some(key) if reproducible => sign_dsse(key, IN_TOTO_PAYLOAD_TYPE, &payload)
            .to_json()
            .into_bytes(),
        _ => serde_json::to_vec_pretty(&statement)
            .map_err(|e| fail(exit::SANDBOX_FAILED, e.into()))?,
    };
    let temp = path.with_extension("partial");
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| {
            fail(
                exit::SANDBOX_FAILED,
                anyhow::anyhow!("--provenance {}: {e}", path.display()),
            )
        })
}
