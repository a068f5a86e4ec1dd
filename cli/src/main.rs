//! `hermetic`: run builds in a hardened sandbox and archive their outputs reproducibly.
mod args;
mod client;
mod commands;
mod exit;
mod stdio;

use clap::Parser;

/// An error that ends the program with a specific exit code; everything else is an
/// internal error.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: i32, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }
}

fn main() {
    // Must come first: when this process is the sandbox helper it never returns.
    hermetic::sandbox::run_helper_if_requested();
    let cli = args::Cli::parse();
    // The daemon's output is its log file: it says more, with times.
    let serving = matches!(
        cli.command,
        args::Command::Daemon(args::DaemonCommand::Serve)
    );
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERMETIC_LOG")
        .unwrap_or_else(|_| if serving { "info" } else { "warn" }.into());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if serving {
        subscriber.with_ansi(false).init();
    } else {
        subscriber.without_time().init();
    }
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(Failure { code, error }) => {
            eprintln!("hermetic: error: {error:#}");
            code
        }
    };
    std::process::exit(code);
}
