//! `hermetic drill`: determinism drills (`run`), their history (`history`, `record`), the
//! freshness gate (`status`), rebuilds from provenance (`rebuild`) and the
//! cache-poisoning drill (`poison`). `report` renders any drill report, of either kind.
mod fleet;
mod history;
mod plan;
mod poison;
mod rebuild;
pub mod report;
mod run;

use hermetic::exit_code as exit;
use hermetic_contract::report::DrillReport;

use crate::args::drill::{DrillCommand, DrillReportArgs};
use crate::client::Client;
use crate::Failure;

pub fn drill(command: DrillCommand) -> Result<i32, Failure> {
    match command {
        DrillCommand::Run(args) => run::run(args),
        DrillCommand::History(args) => history::history(args),
        DrillCommand::Status(args) => history::status(args),
        DrillCommand::Record(args) => history::record(args),
        DrillCommand::Rebuild(args) => rebuild::rebuild(args),
        DrillCommand::Poison(args) => poison::poison(args),
    }
}

/// The end of any drill, of either kind: kept in the daemon's history, then each report
/// asked for written (the HTML page's charts over the last `history_limit` drills of its
/// kind). The reports are written even when the history could not keep the drill; that
/// failure is the result (exit 5).
pub fn record_and_report(
    client: &Client,
    drill: &DrillReport,
    reports: &DrillReportArgs,
    history_limit: usize,
) -> Result<(), Failure> {
    let recorded = client.record_drill(drill).map_err(|err| {
        Failure::new(
            exit::SANDBOX_FAILED,
            anyhow::Error::from(err)
                .context(format!("recording drill {} in the history", drill.id)),
        )
    });
    let history = match &reports.html {
        Some(_) => client
            .drills(&[("kind", Some(drill.kind.as_str()))], history_limit)
            .map(|list| list.drills)
            .map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?,
        None => Vec::new(),
    };
    report::write_all(reports, drill, &history)?;
    recorded.map(drop)
}
