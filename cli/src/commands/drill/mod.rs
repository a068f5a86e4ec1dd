//! `hermetic drill`: drills a platform team schedules (docs/drills.md).
pub mod poison;

use crate::args::drill::DrillCommand;
use crate::Failure;

pub fn drill(command: DrillCommand) -> Result<i32, Failure> {
    match command {
        DrillCommand::Poison(args) => poison::poison(args),
    }
}
