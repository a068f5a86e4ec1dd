//! `--single`: the canonical run alone; its outputs are kept when its command succeeds.
use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{BuildReport, BuildVerdict, RunName};

use super::log_relay::LogRelay;
use super::outcome::{judge, run_report};
use super::output::keep_archive;
use super::partial::PartialArtifact;
use super::{BuildError, LogSink};
use crate::errors::error_chain;
use crate::exit_code as exit;
use crate::repro::dual::kept_tree_name;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::keep_failed::FailedTrees;
use crate::sandbox::launch::{self, Launch};
use crate::sandbox::plan::Plan;
use crate::sandbox::profile::Profile;

pub(super) fn build(
    request: &BuildRequest,
    profile: &Profile,
    plan: &Plan,
    mut report: BuildReport,
    log: LogSink<'_>,
    cancel: Option<&Cancel>,
    keep_failed: Option<&FailedTrees>,
) -> Result<BuildReport, BuildError> {
    let partial = PartialArtifact::create(&request.artifact, "")?;
    let artifact = partial.file.try_clone().map_err(|err| partial.error(err))?;
    let relay = LogRelay::start(log()).map_err(BuildError::Streams)?;
    let (stdout, stderr) = relay.streams().map_err(BuildError::Streams)?;
    let outcome = launch::run(Launch {
        spec: &plan.spec,
        cgroup_policy: profile.cgroup,
        stdout,
        stderr,
        artifact: Some(artifact),
        cancel,
        keep_failed: keep_failed.map(|trees| (trees, kept_tree_name(RunName::A))),
        early: None,
    });
    report.log = Some(relay.finish());
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            report.error = Some(error_chain(&err));
            return Ok(report);
        }
    };
    report.sandbox = Some(outcome.layers.clone());
    report.source_left_out = super::outcome::source_left_out(&outcome);
    report.runs.push(run_report(RunName::A, Ok(&outcome)));
    match judge(&outcome) {
        Err(message) => {
            report.exit_code = exit::BUILD_FAILED;
            report.error = Some(message);
        }
        Ok(packed) => keep_archive(
            request,
            partial,
            packed,
            None,
            BuildVerdict::Built,
            exit::SUCCESS,
            &mut report,
        ),
    }
    Ok(report)
}
