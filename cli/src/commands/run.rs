//! `hermetic run`: one sandboxed command, its output streamed, its status returned; in
//! this process, or through the daemon with the same streams and exit codes.
use hermetic::api::wire::{JobRequest, JobState, RunRequest};
use hermetic::sandbox::launch::{self, BuildStatus, Launch};
use hermetic::sandbox::plan::{self, Request};
use hermetic::sandbox::profile;

use super::remote::{self, Relay};
use crate::args::RunArgs;
use crate::exit;
use crate::stdio::{self, Target};
use crate::Failure;

pub fn run(args: RunArgs, in_process: bool) -> Result<i32, Failure> {
    if in_process {
        run_in_process(args)
    } else {
        run_via_daemon(args)
    }
}

fn run_via_daemon(args: RunArgs) -> Result<i32, Failure> {
    let setup_failed = |err: anyhow::Error| Failure::new(exit::RUN_SANDBOX_FAILED, err);
    let request = JobRequest::Run(RunRequest {
        profile: remote::absolute_profile(&args.sandbox.profile).map_err(setup_failed)?,
        src: remote::absolute("--src", &args.sandbox.src).map_err(setup_failed)?,
        source_date_epoch: args.sandbox.source_date_epoch,
        command: args.command,
    });
    let job = remote::execute(&request, Relay::Separate, exit::RUN_SANDBOX_FAILED)?;
    let error = job.error.clone().unwrap_or_default();
    match job.state {
        JobState::Cancelled => {
            eprintln!("hermetic: job {} was cancelled", job.id);
        }
        JobState::Interrupted => {
            return Err(setup_failed(anyhow::anyhow!(
                "job {}: {}",
                job.id,
                if error.is_empty() {
                    "the daemon stopped before the job finished"
                } else {
                    &error
                }
            )));
        }
        _ => {}
    }
    let code = job.exit_code.unwrap_or(exit::RUN_SANDBOX_FAILED);
    match job.verdict.as_deref() {
        Some("not-found" | "cannot-execute" | "sandbox-failed") => {
            Err(Failure::new(code, anyhow::anyhow!(error)))
        }
        Some("timed-out") => {
            eprintln!("hermetic: the command exceeded the profile's timeout and was killed");
            Ok(code)
        }
        _ => Ok(code),
    }
}

fn run_in_process(args: RunArgs) -> Result<i32, Failure> {
    // Anything that stops the sandbox from being set up, configuration included, is 125:
    // any other code could be mistaken for the command's own status.
    let setup_failed = |err: anyhow::Error| Failure::new(exit::RUN_SANDBOX_FAILED, err);
    let profile = profile::load(&args.sandbox.profile).map_err(|e| setup_failed(e.into()))?;
    let plan = plan::plan(
        &profile,
        &Request {
            command: &args.command,
            source: Some(&args.sandbox.src),
            outputs: None,
            source_date_epoch: args.sandbox.source_date_epoch,
        },
    )
    .map_err(|e| setup_failed(e.into()))?;

    let (stdout, stdout_relay) =
        stdio::for_build(Target::Stdout).map_err(|e| setup_failed(e.into()))?;
    let (stderr, stderr_relay) =
        stdio::for_build(Target::Stderr).map_err(|e| setup_failed(e.into()))?;
    let outcome = launch::run(Launch {
        spec: &plan.spec,
        cgroup_policy: profile.cgroup,
        stdout,
        stderr,
        artifact: None,
        cancel: None,
    });
    for relay in [stdout_relay, stderr_relay].into_iter().flatten() {
        let _ = relay.join();
    }
    let outcome = outcome.map_err(|e| setup_failed(e.into()))?;

    if let Some((program, errno)) = &outcome.exec_failure {
        let error = std::io::Error::from_raw_os_error(*errno);
        let code = if *errno == libc_enoent() {
            exit::RUN_NOT_FOUND
        } else {
            exit::RUN_CANNOT_EXECUTE
        };
        return Err(Failure::new(
            code,
            anyhow::anyhow!("cannot execute `{program}` in the sandbox: {error}"),
        ));
    }
    if outcome.status == BuildStatus::TimedOut {
        eprintln!("hermetic: the command exceeded the profile's timeout and was killed");
    }
    Ok(outcome.status.shell_code())
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}
