//! `hermetic drill`: drills a platform team schedules (docs/drills.md).
pub mod poison;

use clap::Subcommand;

use crate::Failure;

/// The drills.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Attack a scratch copy of this deployment's cache with every poisoning attack of the
    /// catalog; exit 0 only when each was refused.
    #[command(after_help = poison::AFTER_HELP)]
    Poison(poison::PoisonArgs),
}

pub fn drill(command: DrillCommand) -> Result<i32, Failure> {
    match command {
        DrillCommand::Poison(args) => poison::poison(args),
    }
}
