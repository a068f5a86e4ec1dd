//! Runs one job on the calling (blocking) thread, and kills a job's sandbox.
//!
//! `launch::run` and `build::execute` spawn the sandbox helper themselves, with a
//! parent-death signal tied to the spawning thread; the thread blocks until the job ends.
//! Killing a job therefore means killing the helpers that thread (or, for dual builds,
//! the threads it started) spawned: the sandbox's init dies with its helper and takes the
//! whole pid namespace with it.
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use crate::api::wire::{Digests, JobRequest, RunRequest};
use crate::build::{self, BuildRequest};
use crate::exit_code as exit;
use crate::sandbox::helper::HELPER_ARG;
use crate::sandbox::launch::{self, BuildStatus, Launch};
use crate::sandbox::plan::{self, Request};
use crate::sandbox::profile;
use crate::store::Finish;

use super::log::JobLog;

/// What a finished job reports back to the scheduler.
pub struct Outcome {
    pub finish: Finish,
    /// Time until the build's command was exec'd.
    pub setup: Option<Duration>,
}

/// Runs `request`, its output going to `log`. `thread` holds the running thread's id
/// while the job runs, for `kill_sandboxes_of_thread`.
pub fn execute(request: &JobRequest, log: &JobLog, thread: &AtomicI32) -> Outcome {
    thread.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
    let outcome = match request {
        JobRequest::Run(run) => execute_run(run, log),
        JobRequest::Build(build) => execute_build(build, log),
    };
    thread.store(0, Ordering::SeqCst);
    if let Some(error) = &outcome.finish.error {
        log.note(error);
    }
    outcome
}

fn execute_run(request: &RunRequest, log: &JobLog) -> Outcome {
    let failed = |verdict: &str, code: i32, error: String| Outcome {
        finish: Finish {
            verdict: Some(verdict.into()),
            exit_code: Some(code),
            error: Some(error),
            ..Finish::default()
        },
        setup: None,
    };
    // As `hermetic run`: anything that stops the sandbox from being set up is 125.
    let profile = match profile::load(&request.profile) {
        Ok(profile) => profile,
        Err(err) => return failed("sandbox-failed", exit::RUN_SANDBOX_FAILED, err.to_string()),
    };
    let plan = match plan::plan(
        &profile,
        &Request {
            command: &request.command,
            source: Some(&request.src),
            outputs: None,
            source_date_epoch: request.source_date_epoch,
        },
    ) {
        Ok(plan) => plan,
        Err(err) => return failed("sandbox-failed", exit::RUN_SANDBOX_FAILED, err.to_string()),
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(err) => {
            let error = format!("failed to create the log pipe: {err}");
            return failed("sandbox-failed", exit::RUN_SANDBOX_FAILED, error);
        }
    };
    let relay = log.relay(reader);
    let streams = writer
        .try_clone()
        .map(|stdout| (Stdio::from(stdout), Stdio::from(writer)));
    let outcome = match streams {
        Ok((stdout, stderr)) => launch::run(Launch {
            spec: &plan.spec,
            cgroup_policy: profile.cgroup,
            stdout,
            stderr,
            artifact: None,
        })
        .map_err(|err| err.to_string()),
        Err(err) => Err(format!("failed to create the log pipe: {err}")),
    };
    let _ = relay.join();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return failed("sandbox-failed", exit::RUN_SANDBOX_FAILED, error),
    };
    if let Some((program, errno)) = &outcome.exec_failure {
        let (verdict, code) = if *errno == libc::ENOENT {
            ("not-found", exit::RUN_NOT_FOUND)
        } else {
            ("cannot-execute", exit::RUN_CANNOT_EXECUTE)
        };
        let error = std::io::Error::from_raw_os_error(*errno);
        let mut result = failed(
            verdict,
            code,
            format!("cannot execute `{program}` in the sandbox: {error}"),
        );
        result.setup = outcome.setup;
        return result;
    }
    let (verdict, error) = match outcome.status {
        BuildStatus::Exited(_) => ("exited", None),
        BuildStatus::Signaled(_) => ("signaled", None),
        BuildStatus::TimedOut => (
            "timed-out",
            Some("the command exceeded the profile's timeout and was killed".to_owned()),
        ),
    };
    Outcome {
        finish: Finish {
            verdict: Some(verdict.into()),
            exit_code: Some(outcome.status.shell_code()),
            error,
            ..Finish::default()
        },
        setup: outcome.setup,
    }
}

fn execute_build(request: &BuildRequest, log: &JobLog) -> Outcome {
    let sink = || -> std::io::Result<Box<dyn Write + Send>> { Ok(Box::new(log.clone())) };
    match build::execute(request, &sink) {
        Ok(report) => Outcome {
            setup: report
                .runs
                .first()
                .and_then(|run| run.setup_ms)
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            finish: Finish {
                verdict: Some(report.verdict.into()),
                exit_code: Some(report.exit_code),
                error: report.error.clone(),
                digests: report.output.as_ref().map(|output| Digests {
                    sha256: output.digest.sha256.clone(),
                    blake3: output.digest.blake3.clone(),
                }),
                report: serde_json::to_value(&report).ok(),
            },
        },
        Err(err) => Outcome {
            finish: Finish {
                verdict: Some("failed".into()),
                exit_code: Some(exit::USAGE),
                error: Some(err.to_string()),
                ..Finish::default()
            },
            setup: None,
        },
    }
}

/// SIGKILLs the sandbox helpers spawned by thread `tid` of this process; returns how many.
/// A listed child is not reaped until its spawner waits for it, so its pid cannot have
/// been reused.
pub fn kill_sandboxes_of_thread(tid: i32) -> usize {
    let Ok(children) = std::fs::read_to_string(format!("/proc/self/task/{tid}/children")) else {
        return 0;
    };
    children
        .split_whitespace()
        .filter_map(|pid| pid.parse::<i32>().ok())
        .filter(|&pid| is_helper(pid))
        .filter(|&pid| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        })
        .count()
}

/// SIGKILLs every sandbox helper of this process (any thread's); returns how many.
pub fn kill_all_sandboxes() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse::<i32>().ok())
        .map(kill_sandboxes_of_thread)
        .sum()
}

fn is_helper(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|&byte| byte == 0)
            .nth(1)
            .is_some_and(|arg| arg == HELPER_ARG.as_bytes())
    })
}
