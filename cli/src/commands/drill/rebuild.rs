//! `hermetic drill rebuild`: a released archive built again from its signed provenance,
//! as a daemon job, and compared with the statement's subject.
use std::path::Path;

use hermetic::build::BuildRequest;
use hermetic::errors::Chain;
use hermetic::exit_code as exit;
use hermetic::provenance::rebuild::{archive_manifest, recipe, Recipe};
use hermetic_contract::report::{BuildVerdict, Difference};
use hermetic_contract::wire::JobRequest;
use serde::Serialize;

use crate::args::drill::DrillRebuildArgs;
use crate::commands::remote::{self, Relay};
use crate::Failure;

/// What `--json` prints.
#[derive(Serialize)]
struct Outcome<'a> {
    /// `good` or `bad`.
    verdict: &'a str,
    subject: &'a str,
    expected: Digest<'a>,
    rebuilt: Option<Digest<'a>>,
    job: u64,
    reason: Option<String>,
    differences: Vec<Difference>,
}

#[derive(Serialize)]
struct Digest<'a> {
    sha256: &'a str,
    blake3: &'a str,
}

pub fn rebuild(args: DrillRebuildArgs) -> Result<i32, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    let trusted = crate::commands::verify::trusted_keys(&args.trust_keys)?;
    let src = remote::absolute("--src", &args.src).map_err(usage)?;
    let recipe = match recipe(&args.bundle, &src, args.profile.as_deref(), &trusted) {
        Ok(recipe) => recipe,
        Err(refusal) => {
            if args.json {
                let report = serde_json::json!({
                    "verdict": "refused",
                    "reason": refusal.reason(),
                    "error": hermetic::errors::error_chain(&refusal),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            eprintln!(
                "hermetic: rebuild refused ({}): {}",
                refusal.reason(),
                Chain(&refusal)
            );
            return Ok(exit::DRILL_REBUILD_REFUSED);
        }
    };
    if let Some(artifact) = &args.artifact {
        check_artifact(artifact, &recipe)?;
    }
    let work = tempfile::Builder::new()
        .prefix("hermetic-rebuild-")
        .tempdir()
        .map_err(|err| Failure::new(exit::SANDBOX_FAILED, anyhow::anyhow!("work dir: {err}")))?;
    let rebuilt_path = match &args.keep {
        Some(path) => remote::absolute("--keep", path).map_err(usage)?,
        None => work.path().join(&recipe.subject),
    };
    let profile = remote::absolute_profile(&recipe.profile).map_err(usage)?;
    let request = BuildRequest {
        profile,
        src,
        outputs: recipe.outputs.clone(),
        artifact: rebuilt_path.clone(),
        extract: None,
        single: false,
        explain: false,
        source_date_epoch: Some(recipe.source_date_epoch),
        command: recipe.command.clone(),
        image: recipe.image.clone(),
        cache: None,
    };
    let job = remote::execute(
        &JobRequest::Build(request),
        Relay::AllToStderr,
        exit::SANDBOX_FAILED,
    )?;
    let expected = Digest {
        sha256: &recipe.sha256,
        blake3: &recipe.blake3,
    };
    let report = job.report.as_deref();
    let output = report.and_then(|report| report.output.as_ref());
    let (Some(report), Some(output)) = (report, output) else {
        let reason = report
            .and_then(|report| report.error.clone())
            .or(job.error.clone())
            .unwrap_or_else(|| format!("job {} gave no archive", job.id));
        return Err(Failure::new(
            exit::DRILL_CASE_FAILED,
            anyhow::anyhow!("the rebuild (job {}) failed: {reason}", job.id),
        ));
    };
    let good = output.digest.sha256 == recipe.sha256 && output.digest.blake3 == recipe.blake3;
    let mut outcome = Outcome {
        verdict: if good { "good" } else { "bad" },
        subject: &recipe.subject,
        expected,
        rebuilt: Some(Digest {
            sha256: &output.digest.sha256,
            blake3: &output.digest.blake3,
        }),
        job: job.id,
        reason: None,
        differences: Vec::new(),
    };
    if !good {
        if report.verdict == BuildVerdict::Nondeterministic {
            outcome.differences = report.differences.clone().unwrap_or_default();
            outcome.reason = Some(format!(
                "the rebuild is itself nondeterministic: {} path(s) differ between its runs",
                outcome.differences.len()
            ));
        } else if let Some(artifact) = &args.artifact {
            let released = manifest(artifact)?;
            let rebuilt = manifest(&rebuilt_path)?;
            outcome.differences = hermetic::repro::compare::compare(&released, &rebuilt);
            outcome.reason = Some(format!(
                "{} path(s) differ from the released archive",
                outcome.differences.len()
            ));
        } else {
            outcome.reason = Some(
                "the archive differs from the subject (give --artifact with the released archive \
                 for the files that differ)"
                    .into(),
            );
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        );
    } else {
        println!(
            "{}: {} (job {}), expected sha256 {}, rebuilt {}",
            outcome.verdict, recipe.subject, job.id, recipe.sha256, output.digest.sha256
        );
        if let Some(reason) = &outcome.reason {
            println!("  {reason}");
        }
        for difference in &outcome.differences {
            println!("  {:<8} {}", difference.kind, difference.path);
        }
    }
    Ok(if good {
        exit::DRILL_PASSED
    } else {
        exit::DRILL_NOT_REPRODUCIBLE
    })
}

/// `--artifact` must be the subject: comparing with anything else would name differences
/// that say nothing about the release.
fn check_artifact(artifact: &Path, recipe: &Recipe) -> Result<(), Failure> {
    let sha256 = hermetic::digest::sha256_file(artifact).map_err(|err| {
        Failure::new(
            exit::USAGE,
            anyhow::anyhow!("--artifact {}: {err}", artifact.display()),
        )
    })?;
    if sha256 != recipe.sha256 {
        return Err(Failure::new(
            exit::USAGE,
            anyhow::anyhow!(
                "--artifact {}: sha256 {sha256} is not the statement's subject {}",
                artifact.display(),
                recipe.sha256
            ),
        ));
    }
    Ok(())
}

fn manifest(path: &Path) -> Result<hermetic::archive::manifest::Manifest, Failure> {
    archive_manifest(path).map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))
}
