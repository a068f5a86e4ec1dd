//! One module per command; `dispatch` maps the parsed arguments to them.
mod build;
mod profile;
mod run;

use crate::args::{Cli, Command};
use crate::Failure;

pub fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Build(args) => build::build(args),
        Command::Profile(command) => profile::profile(command),
    }
}
