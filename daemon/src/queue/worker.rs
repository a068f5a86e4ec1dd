//! Runs one job on the calling (blocking) thread.
//!
//! `launch::run` and `build::execute` spawn the sandbox helpers themselves and register
//! each with the job's `Cancel`, so the scheduler can kill every sandbox of the job (the
//! one of a run, the two or three of a dual build): the sandbox's init dies with its
//! helper and takes the whole pid namespace with it.
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use crate::queue::Caller;
use crate::store::Finish;
use hermetic::build::{self, BuildRequest, BuildVerdict};
use hermetic::exit_code as exit;
use hermetic::run::{RunResult, RunVerdict};
use hermetic::sandbox::cancel::Cancel;
use hermetic::sandbox::keep_failed::FailedTrees;
use hermetic::sys::creds::ActingAs;
use hermetic_contract::wire::{JobRequest, JobVerdict, RunRequest};

use super::log::JobLog;

/// What a finished job reports back to the scheduler.
pub struct Outcome {
    pub finish: Finish,
    /// Time until the build's command was exec'd.
    pub setup: Option<Duration>,
}

/// Runs `request`, its output going to `log`; `cancel` kills its sandboxes. With
/// `acting_for`, every file the job opens or creates (source, artifact, cache, keys) is
/// opened with that user's identity. With `keep_failed_in`, the build dir of every run
/// whose command fails is kept there (see `sandbox::keep_failed`).
pub fn execute(
    request: &JobRequest,
    log: &JobLog,
    cancel: &Cancel,
    acting_for: Option<Caller>,
    keep_failed_in: Option<&Path>,
) -> Outcome {
    let failed_trees = keep_failed_in.map(|_| FailedTrees::new());
    // The log's files are the daemon's and are created as the daemon: a build's now (its
    // output is written from several threads, some acting for the caller); a run's by its
    // log relay at the first output, and a run that prints nothing has none (a reader
    // finds it empty), which spares the run two file creations (0.4 ms here).
    if matches!(request, JobRequest::Build(_)) {
        let _ = log.create_files();
    }
    let mut outcome = match acting_for.map(act_as).transpose() {
        Err(error) => Outcome {
            finish: Finish {
                verdict: Some(JobVerdict::Build(BuildVerdict::Failed)),
                exit_code: Some(exit::SANDBOX_FAILED),
                error: Some(error),
                ..Finish::default()
            },
            setup: None,
        },
        // The caller's file access lasts for this arm: the daemon writes its notes below
        // as itself.
        Ok(_acting) => match request {
            JobRequest::Run(run) => execute_run(run, log, cancel, failed_trees.as_ref()),
            JobRequest::Build(build) => execute_build(build, log, cancel, failed_trees.as_ref()),
        },
    };
    // As the daemon: the scratch dir is in its state directory.
    if let (Some(trees), Some(dir)) = (failed_trees, keep_failed_in) {
        for line in trees.extract_into(dir) {
            log.note(&line);
        }
    }
    if let Some(error) = log.failure() {
        // The command ran but its output is lost: the job cannot stand as done.
        let (verdict, code) = match request {
            JobRequest::Run(_) => (
                JobVerdict::Run(RunVerdict::SandboxFailed),
                exit::RUN_SANDBOX_FAILED,
            ),
            JobRequest::Build(_) => (
                JobVerdict::Build(BuildVerdict::Failed),
                exit::SANDBOX_FAILED,
            ),
        };
        outcome.finish.verdict = Some(verdict);
        outcome.finish.exit_code = Some(code);
        outcome.finish.error = Some(error);
        return outcome;
    }
    if let Some(error) = &outcome.finish.error {
        log.note(error);
    }
    outcome
}

fn execute_run(
    request: &RunRequest,
    log: &JobLog,
    cancel: &Cancel,
    keep_failed: Option<&FailedTrees>,
) -> Outcome {
    let finished = |result: RunResult| Outcome {
        finish: Finish {
            verdict: Some(JobVerdict::Run(result.verdict)),
            exit_code: Some(result.code),
            error: result.error,
            ..Finish::default()
        },
        setup: result.setup,
    };
    let not_started = |what: &str, err: std::io::Error| {
        finished(RunResult {
            verdict: RunVerdict::SandboxFailed,
            code: exit::RUN_SANDBOX_FAILED,
            error: Some(format!("failed to {what}: {err}")),
            setup: None,
        })
    };
    // One pipe per stream: the log's index keeps them apart for the client.
    let pipes = std::io::pipe().and_then(|stdout| Ok((stdout, std::io::pipe()?)));
    let ((stdout_reader, stdout), (stderr_reader, stderr)) = match pipes {
        Ok(pipes) => pipes,
        Err(err) => return not_started("create the log pipes", err),
    };
    let relay = match log.relay_streams(stdout_reader, stderr_reader) {
        Ok(relay) => relay,
        Err(err) => return not_started("start the log relay", err),
    };
    let result = hermetic::run::execute(
        request,
        OwnedFd::from(stdout),
        OwnedFd::from(stderr),
        Some(cancel),
        keep_failed,
    );
    let _ = relay.join();
    finished(result)
}

fn execute_build(
    request: &BuildRequest,
    log: &JobLog,
    cancel: &Cancel,
    keep_failed: Option<&FailedTrees>,
) -> Outcome {
    let sink = || -> std::io::Result<Box<dyn Write + Send>> { Ok(Box::new(log.clone())) };
    match build::execute(request, &sink, Some(cancel), keep_failed) {
        Ok(report) => Outcome {
            setup: report
                .runs
                .first()
                .and_then(|run| run.setup_ms)
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            finish: Finish {
                verdict: Some(JobVerdict::Build(report.verdict)),
                exit_code: Some(report.exit_code),
                error: report.error.clone(),
                digests: report.output.as_ref().map(|output| output.digest.clone()),
                report: Some(Box::new(report)),
            },
        },
        Err(err) => Outcome {
            finish: Finish {
                verdict: Some(JobVerdict::Build(BuildVerdict::Failed)),
                exit_code: Some(exit::USAGE),
                error: Some(hermetic::errors::error_chain(&err)),
                ..Finish::default()
            },
            setup: None,
        },
    }
}

/// Takes on `caller`'s file access for this thread: its uid, gid and supplementary groups.
fn act_as(caller: Caller) -> Result<ActingAs, String> {
    let gid = nix::unistd::Gid::from_raw(caller.gid);
    let groups = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(caller.uid))
        .ok()
        .flatten()
        .and_then(|user| {
            let name = std::ffi::CString::new(user.name).ok()?;
            nix::unistd::getgrouplist(&name, gid).ok()
        })
        .unwrap_or_else(|| vec![gid]);
    let groups: Vec<u32> = groups.into_iter().map(|gid| gid.as_raw()).collect();
    hermetic::sys::creds::act_as(caller.uid, caller.gid, &groups)
        .map_err(|err| format!("failed to act as uid {}: {err}", caller.uid))
}
