//! One module per command; `dispatch` maps the parsed arguments to them.
mod build;
mod cache;
mod completions;
mod daemon;
mod drill;
mod image;
mod jobs;
mod keygen;
mod man;
mod profile;
mod remote;
mod remote_cache;
mod run;
mod verify;

use crate::args::{Cli, Command};
use crate::Failure;

pub fn dispatch(cli: Cli) -> Result<i32, Failure> {
    let in_process = crate::client::autostart::in_process(cli.no_daemon);
    match cli.command {
        Command::Run(args) => run::run(args, in_process),
        Command::Build(args) => build::build(args, in_process),
        Command::Daemon(command) => daemon::daemon(command),
        Command::Jobs(args) => jobs::jobs(args),
        Command::Logs(args) => jobs::logs(args),
        Command::Cancel(args) => jobs::cancel(args),
        Command::Profile(command) => profile::profile(command),
        Command::Keygen(args) => keygen::keygen(args),
        Command::Verify(args) => verify::verify(args),
        Command::Cache(command) => cache::cache(command),
        Command::Image(command) => image::image(command),
        Command::Drill(command) => drill::drill(command),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => man::man(args),
    }
}
