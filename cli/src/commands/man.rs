//! `hermetic man [--dir DIR]`: man pages made from the command definitions.
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;

use crate::args::{Cli, ManArgs};
use crate::exit;
use crate::Failure;

pub fn man(args: ManArgs) -> Result<i32, Failure> {
    // Without this, hermetic.1 would list a `hermetic help` that has no page.
    let mut command = Cli::command().disable_help_subcommand(true);
    // Builds the deferred subcommands and names each page (`hermetic-cache-gc`).
    command.build();
    match args.dir {
        Some(dir) => std::fs::create_dir_all(&dir)
            .and_then(|()| write_pages(&command, &dir))
            .with_context(|| format!("write man pages into {}", dir.display()))
            .map_err(|err| Failure::new(exit::USAGE, err))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            page(&command)
                .render(&mut stdout)
                .and_then(|()| stdout.flush())
                .context("print the man page")
                .map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?
        }
    }
    Ok(exit::SUCCESS)
}

/// `command`'s page and those of its visible subcommands, as `clap_mangen::generate_to`
/// writes them but with `page`'s footer.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    for subcommand in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(subcommand, dir)?;
    }
    page(command).generate_to(dir)?;
    Ok(())
}

/// Subcommands have no version of their own, so clap_mangen's footer would name only
/// the subcommand (`gc`); instead every page's footer names the hermetic it documents.
fn page(command: &clap::Command) -> Man {
    Man::new(command.clone()).source(format!("hermetic {}", env!("CARGO_PKG_VERSION")))
}
