//! `hermetic run`: one sandboxed command, its output streamed, its status returned; in
//! this process, or through the daemon with the same streams and exit codes.
use hermetic::run::RunVerdict;
use hermetic_contract::wire::{JobRequest, JobState, JobVerdict, RunRequest};

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
        image: args.sandbox.image,
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
    let verdict = match job.verdict {
        Some(JobVerdict::Run(verdict)) => Some(verdict),
        _ => None,
    };
    finish(verdict, code, job.error)
}

fn run_in_process(args: RunArgs) -> Result<i32, Failure> {
    let setup_failed = |err: std::io::Error| Failure::new(exit::RUN_SANDBOX_FAILED, err);
    let (stdout, stdout_relay) = stdio::for_build(Target::Stdout).map_err(setup_failed)?;
    let (stderr, stderr_relay) = stdio::for_build(Target::Stderr).map_err(setup_failed)?;
    // The image store this process's run reads (the engine checks the image: a bare tag
    // or an image not stored exits 2, in process or through the daemon). The config is
    // read only when an image may be used from it.
    if args.sandbox.image.is_some() || args.state_dir.is_some() {
        let state_dir = match args.state_dir {
            Some(dir) => dir,
            None => super::cache::config()?.state_dir,
        };
        hermetic::image::root::set_state_dir(state_dir);
    }
    let request = RunRequest {
        profile: args.sandbox.profile,
        src: args.sandbox.src,
        source_date_epoch: args.sandbox.source_date_epoch,
        command: args.command,
        image: args.sandbox.image,
    };
    let result = hermetic::run::execute(&request, stdout, stderr, None, None);
    for relay in [stdout_relay, stderr_relay].into_iter().flatten() {
        let _ = relay.join();
    }
    finish(Some(result.verdict), result.code, result.error)
}

/// Ends `hermetic run` the same way in both modes: a command that never ran is an error
/// with its code (125, 126 or 127); a timeout is said on stderr; otherwise the command's
/// own status.
fn finish(verdict: Option<RunVerdict>, code: i32, error: Option<String>) -> Result<i32, Failure> {
    match verdict {
        Some(RunVerdict::SandboxFailed | RunVerdict::NotFound | RunVerdict::CannotExecute) => Err(
            Failure::new(code, anyhow::anyhow!(error.unwrap_or_default())),
        ),
        Some(RunVerdict::TimedOut) => {
            eprintln!("hermetic: the command exceeded the profile's timeout and was killed");
            Ok(code)
        }
        Some(RunVerdict::Exited | RunVerdict::Signaled) | None => Ok(code),
    }
}
