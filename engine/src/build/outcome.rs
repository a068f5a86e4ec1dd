//! What the end of one run means for the report: its outputs or why it failed, and its
//! line in `runs`.
use std::path::PathBuf;

use hermetic_contract::report::{RunName, RunReport};

use crate::errors::error_chain;
use crate::sandbox::launch::{BuildStatus, PackedOutputs, RunOutcome};
use crate::sandbox::SandboxError;

/// The build's outputs when it succeeded, else why it failed.
pub(super) fn judge(outcome: &RunOutcome) -> Result<&PackedOutputs, String> {
    if let Some((program, errno)) = &outcome.exec_failure {
        return Err(format!(
            "cannot execute `{program}` in the sandbox: {}",
            std::io::Error::from_raw_os_error(*errno)
        ));
    }
    match outcome.status {
        BuildStatus::Exited(0) => {}
        BuildStatus::Exited(code) => {
            return Err(format!("the build command exited with status {code}"))
        }
        BuildStatus::Signaled(signal) => {
            return Err(format!("the build command was killed by signal {signal}"))
        }
        BuildStatus::TimedOut => {
            return Err("the build exceeded the profile's timeout and was killed".into())
        }
    }
    match &outcome.outputs {
        Some(Ok(packed)) => Ok(packed),
        Some(Err(message)) => Err(message.clone()),
        None => Err("the sandbox reported no outputs".into()),
    }
}

pub(super) fn run_report(name: RunName, outcome: Result<&RunOutcome, &SandboxError>) -> RunReport {
    match outcome {
        Err(err) => RunReport {
            name,
            exit_status: None,
            signal: None,
            timed_out: false,
            duration_ms: 0,
            setup_ms: None,
            error: Some(error_chain(&err)),
            output_digest: None,
        },
        Ok(outcome) => RunReport {
            name,
            exit_status: Some(outcome.status.shell_code()),
            signal: match outcome.status {
                BuildStatus::Signaled(signal) => Some(signal),
                _ => None,
            },
            timed_out: outcome.status == BuildStatus::TimedOut,
            duration_ms: outcome.duration.as_millis() as u64,
            setup_ms: outcome.setup.map(|d| d.as_secs_f64() * 1000.0),
            error: judge(outcome).err(),
            output_digest: None,
        },
    }
}

/// What the run's source left out, said on the way and returned for the report.
pub(super) fn source_left_out(outcome: &RunOutcome) -> Vec<PathBuf> {
    crate::sandbox::source::say_left_out(&outcome.source_left_out);
    outcome.source_left_out.clone()
}
