//! One sandboxed command without outputs: what `hermetic run` does, in the CLI's process
//! or as a daemon job. The result carries the documented `run` exit code and a verdict
//! naming how it ended, so both callers report it the same way.
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::errors::error_chain;
use crate::exit_code as exit;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::keep_failed::{FailedTrees, KEPT_TREE_NAME};
use crate::sandbox::launch::{self, BuildStatus, EarlyHelper, Launch};
use crate::sandbox::plan::{self, Request};
use crate::sandbox::profile;
use hermetic_contract::wire::RunRequest;

pub use hermetic_contract::report::RunVerdict;

/// How a run ended.
#[derive(Debug)]
pub struct RunResult {
    pub verdict: RunVerdict,
    /// The command's status (128 + signal when killed), or 125, 126 or 127.
    pub code: i32,
    /// Why, when it did not simply exit or die of a signal.
    pub error: Option<String>,
    /// Time until the command was exec'd.
    pub setup: Option<Duration>,
}

/// Runs `request`'s command in a sandbox with `stdout` and `stderr` as its streams;
/// `keep_failed`, when given, gets the build dir if the command fails.
pub fn execute(
    request: &RunRequest,
    stdout: OwnedFd,
    stderr: OwnedFd,
    cancel: Option<&Cancel>,
    keep_failed: Option<&FailedTrees>,
) -> RunResult {
    // Anything that stops the sandbox from being set up, configuration included, is 125:
    // any other code could be mistaken for the command's own status.
    let sandbox_failed = |error: String| RunResult {
        verdict: RunVerdict::SandboxFailed,
        code: exit::RUN_SANDBOX_FAILED,
        error: Some(error),
        setup: None,
    };
    // With nothing to cancel or keep (the CLI's case), the helper creates the namespaces
    // while the profile loads and the plan is made.
    let early = if cancel.is_none() && keep_failed.is_none() {
        match EarlyHelper::start(&stdout, &stderr) {
            Ok(early) => early,
            Err(err) => return sandbox_failed(error_chain(&err)),
        }
    } else {
        None
    };
    let profile = match profile::load(&request.profile) {
        Ok(profile) => profile,
        Err(err) => return sandbox_failed(error_chain(&err)),
    };
    // Held until the run is over: `image rm` refuses the image meanwhile.
    let image = match crate::image::root::hold_for(request.image.as_deref(), profile.root.image()) {
        Ok(image) => image,
        // A bare tag, or an image not stored: the request's mistake, exit 2 as for a build.
        Err(err) if err.is_usage() => {
            return RunResult {
                code: exit::USAGE,
                ..sandbox_failed(error_chain(&err))
            }
        }
        Err(err) => return sandbox_failed(error_chain(&err)),
    };
    let image_root = image.as_ref().map(crate::build::image_root);
    let plan = match plan::plan(
        &profile,
        &Request {
            command: &request.command,
            source: Some(&request.src),
            outputs: None,
            source_date_epoch: request.source_date_epoch,
            image: image_root.as_ref(),
        },
    ) {
        Ok(plan) => plan,
        Err(err) => return sandbox_failed(error_chain(&err)),
    };
    let outcome = match launch::run(Launch {
        spec: &plan.spec,
        cgroup_policy: profile.cgroup,
        stdout,
        stderr,
        artifact: None,
        cancel,
        keep_failed: keep_failed.map(|trees| (trees, KEPT_TREE_NAME)),
        early,
    }) {
        Ok(outcome) => outcome,
        Err(err) => return sandbox_failed(error_chain(&err)),
    };
    crate::sandbox::source::say_left_out(&outcome.source_left_out);
    if let Some((program, errno)) = &outcome.exec_failure {
        let (verdict, code) = if *errno == libc::ENOENT {
            (RunVerdict::NotFound, exit::RUN_NOT_FOUND)
        } else {
            (RunVerdict::CannotExecute, exit::RUN_CANNOT_EXECUTE)
        };
        let error = std::io::Error::from_raw_os_error(*errno);
        return RunResult {
            verdict,
            code,
            error: Some(format!(
                "cannot execute `{program}` in the sandbox: {error}"
            )),
            setup: outcome.setup,
        };
    }
    let (verdict, error) = match outcome.status {
        BuildStatus::Exited(_) => (RunVerdict::Exited, None),
        BuildStatus::Signaled(_) => (RunVerdict::Signaled, None),
        BuildStatus::TimedOut => (
            RunVerdict::TimedOut,
            Some("the command exceeded the profile's timeout and was killed".to_owned()),
        ),
    };
    RunResult {
        verdict,
        code: outcome.status.shell_code(),
        error,
        setup: outcome.setup,
    }
}
