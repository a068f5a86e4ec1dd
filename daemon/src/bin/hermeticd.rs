//! `hermeticd`: the hermetic daemon. Runs `run` and `build` jobs from a queue, for
//! clients on a Unix socket (HTTP/1.1 + JSON, routes under `/v1/`).
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hermetic_daemon::config;
use hermetic_daemon::server;

/// The hermetic daemon: a job queue for sandboxed runs and builds.
#[derive(Debug, Parser)]
#[command(
    name = "hermeticd",
    version,
    after_help = "The CLI (`hermetic`) submits its `run` and `build` jobs here and starts a \
daemon itself when none answers; this binary is the same daemon for systemd \
(contrib/systemd/). Job records, logs and kept failed builds live in the state directory: \
with --keep-failed, a failed job leaves scratch/ID/build (its build dir as it was when the \
command failed or timed out) and scratch/ID/log, until you remove them.\n\n\
Examples:\n  hermeticd --check-config\n  \
hermeticd --socket /run/hermetic/hermeticd.sock --keep-failed\n  \
HERMETICD_LOG=debug hermeticd --config ./config.toml"
)]
struct Args {
    /// Config file (TOML, `version = 1`). Default: $HERMETIC_CONFIG, else
    /// /etc/hermetic/config.toml for root, $XDG_CONFIG_HOME/hermetic/config.toml otherwise;
    /// a missing default file means the built-in defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Socket to listen on (overrides the config's `socket`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Directory for the job database, logs and scratch directories (overrides the
    /// config's `state_dir`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Keep a failed job's scratch directory, `scratch/ID`: a copy of its log and the build
    /// dir of each run whose command failed, in `build` (overrides the config's
    /// `keep_failed`).
    #[arg(long)]
    keep_failed: bool,
    /// Check the configuration, print the effective settings and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> std::process::ExitCode {
    // Must come first: when this process is the sandbox helper it never returns.
    hermetic::sandbox::run_helper_if_requested();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HERMETICD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hermeticd: {err:#}");
            std::process::ExitCode::from(hermetic::exit_code::USAGE as u8)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = config::load_effective(args.config.as_deref())?;
    if let Some(socket) = args.socket {
        config.socket = std::path::absolute(&socket)
            .with_context(|| format!("--socket {}", socket.display()))?;
    }
    if let Some(state_dir) = args.state_dir {
        config.state_dir = std::path::absolute(&state_dir)
            .with_context(|| format!("--state-dir {}", state_dir.display()))?;
    }
    if args.keep_failed {
        config.keep_failed = true;
    }
    if args.check_config {
        println!("{config:#?}");
        return Ok(());
    }
    Ok(server::run_daemon(config)?)
}
