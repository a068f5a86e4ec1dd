//! `hermetic drill run PLAN`: each case as daemon build jobs (a dual build, and
//! `extra_runs` more), never through the cache; a verdict from the runs, the history of
//! the same inputs and the plan's pin; the drill recorded in the daemon's history, then
//! the reports written.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use hermetic::build::BuildRequest;
use hermetic::exit_code as exit;
use hermetic::timestamp::rfc3339;
use hermetic_contract::report::{
    BuildReport, BuildVerdict, CaseResult, CaseVerdict, DriftRecord, DrillKind, DrillReport,
    DRILL_REPORT_SCHEMA,
};
use hermetic_contract::wire::{Job, JobRequest};

use super::fleet::{self, FleetContext};
use super::plan::{self, Case, Source};
use crate::args::drill::DrillRunArgs;
use crate::client::{autostart, Client};
use crate::commands::remote::{self, Relay};
use crate::Failure;

/// How many earlier drills of the same inputs are searched for the last digest.
const HISTORY_LOOKBACK: usize = 50;

pub fn run(args: DrillRunArgs) -> Result<i32, Failure> {
    let plan = plan::load(&args.plan).map_err(|err| Failure::new(exit::USAGE, err))?;
    let runner = match args.runner {
        Some(runner) => runner,
        None => nix::unistd::gethostname()
            .map_err(|err| {
                Failure::new(
                    exit::USAGE,
                    anyhow::anyhow!("the host name (give --runner NAME): {err}"),
                )
            })?
            .to_string_lossy()
            .into_owned(),
    };
    let fleet = fleet::connect(
        args.fleet.publish.as_deref(),
        &args.fleet.trust_keys,
        args.sign_key.as_deref(),
        true,
        args.fleet.registry_plain_http,
    )?;
    let client =
        autostart::connect_or_start().map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?;
    let work = tempfile::Builder::new()
        .prefix("hermetic-drill-")
        .tempdir()
        .map_err(|err| {
            Failure::new(
                exit::SANDBOX_FAILED,
                anyhow::anyhow!("failed to create the drill's work dir: {err}"),
            )
        })?;
    let started = SystemTime::now();
    let mut cases = Vec::with_capacity(plan.cases.len());
    for (index, case) in plan.cases.iter().enumerate() {
        let dir = work.path().join(format!("case-{index}"));
        let result = run_case(&client, fleet.as_ref(), &runner, case, &dir)?;
        eprintln!(
            "hermetic: drill case {}: {}{}",
            result.name,
            result.verdict,
            result
                .reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        );
        cases.push(result);
    }
    let exit_code = drill_exit_code(&cases);
    let finished = SystemTime::now();
    let drill = DrillReport {
        schema: DRILL_REPORT_SCHEMA.into(),
        kind: DrillKind::Determinism,
        id: drill_id(&runner, started),
        runner,
        started: rfc3339(started),
        finished: rfc3339(finished),
        passed: exit_code == exit::DRILL_PASSED,
        exit_code,
        cases,
        attacks: Vec::new(),
        findings: Vec::new(),
    };
    if let Some(fleet) = &fleet {
        fleet.publish(&drill);
    }
    super::record_and_report(&client, &drill, &args.reports, args.history_limit)?;
    print_summary(&drill);
    Ok(exit_code)
}

/// 1 when a case failed to build, else 3 when one is not reproducible, else 0.
fn drill_exit_code(cases: &[CaseResult]) -> i32 {
    if cases.iter().any(|case| case.verdict == CaseVerdict::Failed) {
        exit::DRILL_CASE_FAILED
    } else if cases
        .iter()
        .all(|case| case.verdict == CaseVerdict::Reproducible)
    {
        exit::DRILL_PASSED
    } else {
        exit::DRILL_NOT_REPRODUCIBLE
    }
}

/// Unique per drill: the runner, the time, and this process (two drills of one runner in
/// the same second are two processes).
fn drill_id(runner: &str, started: SystemTime) -> String {
    let nanos = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let runner: String = runner
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "{runner}-{}-{}-{nanos:09}",
        rfc3339(started).replace([':', '-'], ""),
        std::process::id()
    )
}

fn print_summary(drill: &DrillReport) {
    println!("drill {} ({}, {})", drill.id, drill.runner, drill.finished);
    for case in &drill.cases {
        println!(
            "  {:<16} {:<24} {:>8} ms  {}",
            case.verdict,
            case.name,
            case.duration_ms,
            case.digest.as_deref().unwrap_or("-")
        );
    }
    println!(
        "{}: exit {}",
        if drill.passed { "passed" } else { "failed" },
        drill.exit_code
    );
}

/// One case: its source ready, its key, its runs, then its verdict. Only what stops the
/// whole drill (the daemon gone, a signal) is an error; anything about the case is its
/// result.
fn run_case(
    client: &Client,
    fleet: Option<&FleetContext>,
    runner: &str,
    case: &Case,
    dir: &Path,
) -> Result<CaseResult, Failure> {
    let started = Instant::now();
    let mut result = CaseResult {
        name: case.name.clone(),
        verdict: CaseVerdict::Failed,
        digest: None,
        cache_key: None,
        duration_ms: 0,
        reason: None,
        differences: Vec::new(),
        drifted_from: None,
        jobs: Vec::new(),
    };
    let finish = |mut result: CaseResult| {
        result.duration_ms = started.elapsed().as_millis() as u64;
        Ok(result)
    };
    if let Err(err) = std::fs::create_dir_all(dir) {
        result.reason = Some(format!("creating {}: {err}", dir.display()));
        return finish(result);
    }
    let (src, epoch) = match &case.source {
        Source::Dir(src) => (src.clone(), case.source_date_epoch),
        Source::Git { url, rev } => match checkout(url, rev, dir) {
            Ok((src, commit_time)) => (src, case.source_date_epoch.or(Some(commit_time))),
            Err(reason) => {
                result.reason = Some(reason);
                return finish(result);
            }
        },
    };
    let request = |run: u32| BuildRequest {
        profile: case.profile.clone(),
        src: src.clone(),
        outputs: case.outputs.clone(),
        artifact: dir.join(format!("run-{run}.tar.zst")),
        extract: None,
        single: false,
        explain: false,
        source_date_epoch: epoch,
        command: case.command.clone(),
        image: case.image.clone(),
        cache: None,
    };
    let key = match hermetic::build::inputs_key(&request(0)) {
        Ok(key) => key.to_string(),
        Err(err) => {
            result.reason = Some(format!("{:#}", anyhow::Error::from(err)));
            return finish(result);
        }
    };
    result.cache_key = Some(key.clone());
    let mut digests: Vec<String> = Vec::new();
    for run in 0..=case.extra_runs {
        let job = remote::execute(
            &JobRequest::Build(request(run)),
            Relay::Nowhere,
            exit::SANDBOX_FAILED,
        )?;
        result.jobs.push(job.id.to_string());
        match job_outcome(&job) {
            Outcome::Failed(reason) => {
                result.reason = Some(format!("job {}: {reason}", job.id));
                return finish(result);
            }
            Outcome::Nondeterministic(report) => {
                result.verdict = CaseVerdict::Nondeterministic;
                result.digest = report
                    .output
                    .as_ref()
                    .map(|o| format!("sha256:{}", o.digest.sha256));
                let differences = report.differences.clone().unwrap_or_default();
                result.reason = Some(format!(
                    "job {}: {} path(s) differ between the canonical and the varied run",
                    job.id,
                    differences.len()
                ));
                result.differences = differences;
                return finish(result);
            }
            Outcome::Reproducible(digest) => digests.push(digest),
        }
    }
    let digest = digests[0].clone();
    result.digest = Some(digest.clone());
    if let Some((run, other)) = digests.iter().enumerate().find(|(_, d)| **d != digest) {
        result.verdict = CaseVerdict::Nondeterministic;
        result.reason = Some(format!(
            "run {} (job {}) gave {other}, the first gave {digest}",
            run + 1,
            result.jobs[run]
        ));
        return finish(result);
    }
    // This history first, then the fleet's other runners, then the plan's pin.
    let short_key = &key[..16];
    if let Some(last) = last_recorded(client, &key)?.filter(|last| last.digest != digest) {
        result.verdict = CaseVerdict::Drifted;
        result.reason = Some(format!(
            "{digest} differs from {} recorded {} by {} for the same inputs (cache key \
             {short_key})",
            last.digest, last.recorded, last.runner
        ));
        result.drifted_from = Some(last);
    } else if let Some(theirs) = fleet.and_then(|fleet| fleet.drift(&key, &digest, runner)) {
        result.verdict = CaseVerdict::Drifted;
        result.reason = Some(format!(
            "{digest} differs from {} recorded {} by {} on the fleet for the same inputs \
             (cache key {short_key})",
            theirs.digest, theirs.recorded, theirs.runner
        ));
        result.drifted_from = Some(theirs);
    } else if let Some(expected) = case.expect_sha256.as_ref().filter(|e| **e != digest) {
        result.verdict = CaseVerdict::Drifted;
        result.reason = Some(format!(
            "{digest} differs from the plan's expect_sha256 {expected}"
        ));
        result.drifted_from = Some(DriftRecord {
            digest: expected.clone(),
            recorded: "expect_sha256".into(),
            runner: "the plan".into(),
        });
    } else {
        result.verdict = CaseVerdict::Reproducible;
    }
    finish(result)
}

enum Outcome<'a> {
    Failed(String),
    Nondeterministic(&'a BuildReport),
    /// `sha256:<hex>` of the archive.
    Reproducible(String),
}

fn job_outcome(job: &Job) -> Outcome<'_> {
    let Some(report) = job.report.as_deref() else {
        return Outcome::Failed(
            job.error
                .clone()
                .unwrap_or_else(|| format!("the job was {}", job.state.as_str())),
        );
    };
    match (report.verdict, &report.output) {
        (BuildVerdict::Nondeterministic, _) => Outcome::Nondeterministic(report),
        (BuildVerdict::Reproducible | BuildVerdict::Built, Some(output)) => {
            Outcome::Reproducible(format!("sha256:{}", output.digest.sha256))
        }
        // The build says why it failed (`report.error`, set with each failing run's
        // reason); a run's own error, else the verdict, where it did not.
        _ => Outcome::Failed(
            report
                .error
                .clone()
                .or_else(|| {
                    report.runs.iter().find_map(|run| {
                        run.error
                            .as_ref()
                            .map(|error| format!("run {}: {error}", run.name))
                    })
                })
                .unwrap_or_else(|| format!("the build was {}", report.verdict)),
        ),
    }
}

/// The newest stable digest this history holds for `key`
/// ([`CaseVerdict::has_stable_digest`]).
fn last_recorded(client: &Client, key: &str) -> Result<Option<DriftRecord>, Failure> {
    let list = client
        .drills(&[("cache_key", Some(key))], HISTORY_LOOKBACK)
        .map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?;
    Ok(list.drills.iter().find_map(|drill| {
        drill.cases.iter().find_map(|case| {
            case.digest
                .as_ref()
                .filter(|_| case.verdict.has_stable_digest())
                .map(|digest| DriftRecord {
                    digest: digest.clone(),
                    recorded: drill.finished.clone(),
                    runner: drill.runner.clone(),
                })
        })
    }))
}

/// A commit of a git repository, as a plain tree in `dir/src` (no `.git`: the clone's own
/// bookkeeping would change the source digest, and with it the cache key, every drill),
/// and the commit's time for SOURCE_DATE_EPOCH.
fn checkout(url: &str, rev: &str, dir: &Path) -> Result<(PathBuf, u64), String> {
    let repo = dir.join("repo");
    let src = dir.join("src");
    let archive = dir.join("src.tar");
    git(Command::new("git")
        .args(["clone", "--quiet", "--no-checkout", "--", url])
        .arg(&repo))?;
    let commit = git(Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}")))
    .map_err(|_| format!("git {url}: no commit {rev}"))?;
    let commit = commit.trim();
    let time =
        git(Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["show", "-s", "--format=%ct", commit]))?;
    let time = time
        .trim()
        .parse::<u64>()
        .map_err(|err| format!("git {url}: the time of {commit}: {err}"))?;
    git(Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["archive", "--format=tar", "-o"])
        .arg(&archive)
        .arg(commit))?;
    std::fs::create_dir(&src).map_err(|err| format!("creating {}: {err}", src.display()))?;
    let unpacked = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&src)
        .output()
        .map_err(|err| format!("tar: {err}"))?;
    if !unpacked.status.success() {
        return Err(format!(
            "tar -xf {}: {}",
            archive.display(),
            String::from_utf8_lossy(&unpacked.stderr).trim()
        ));
    }
    Ok((src, time))
}

/// Runs a git command; its stdout, or its stderr as the error.
fn git(command: &mut Command) -> Result<String, String> {
    let output = command
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|err| format!("git: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{:?}: {}",
            command,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
