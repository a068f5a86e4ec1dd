//! `hermetic completions SHELL`: a completion script made from the command definitions.
use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::exit;
use crate::Failure;

pub fn completions(args: CompletionsArgs) -> Result<i32, Failure> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    // clap_complete panics when its writer fails; into memory it can't, and a closed
    // stdout is then reported like any other error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("print the completion script")
        .map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?;
    Ok(exit::SUCCESS)
}
