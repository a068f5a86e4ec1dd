//! One module per command; `dispatch` maps the parsed arguments to them.
mod build;
mod keygen;
mod profile;
mod run;
mod verify;

use crate::args::{Cli, Command};
use crate::Failure;

pub use keygen::KeygenArgs;

pub fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Build(args) => build::build(args),
        Command::Profile(command) => profile::profile(command),
        Command::Keygen(args) => keygen::keygen(args),
        Command::Verify(args) => verify::verify(args),
    }
}
