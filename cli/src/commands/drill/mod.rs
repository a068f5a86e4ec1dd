//! `hermetic drill`: determinism drills (`run`), their history (`history`, `record`), the
//! freshness gate (`status`) and rebuilds from provenance (`rebuild`). `report` renders
//! any drill report, of either kind.
mod fleet;
mod history;
mod plan;
mod rebuild;
pub mod report;
mod run;

use crate::args::DrillCommand;
use crate::Failure;

pub fn drill(command: DrillCommand) -> Result<i32, Failure> {
    match command {
        DrillCommand::Run(args) => run::run(args),
        DrillCommand::History(args) => history::history(args),
        DrillCommand::Status(args) => history::status(args),
        DrillCommand::Record(args) => history::record(args),
        DrillCommand::Rebuild(args) => rebuild::rebuild(args),
    }
}
