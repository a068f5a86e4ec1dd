//! `hermetic daemon status|stop`, and `daemon serve`, the daemon itself (what autostart
//! runs; the same library entry point as `hermeticd`).
use std::time::{Duration, Instant};

use hermetic_daemon::server::{self, ServeError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::args::DaemonCommand;
use crate::client::{autostart, Client, ClientError};
use crate::exit;
use crate::Failure;

/// How long `daemon stop` waits: the daemon's own shutdown timeout, plus a margin for
/// killing the sandboxes that outlived it.
const STOP_MARGIN: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(10);
/// `daemon status` when no daemon answers (as `systemctl is-active` does).
const NOT_RUNNING: i32 = 1;

pub fn daemon(command: DaemonCommand) -> Result<i32, Failure> {
    match command {
        DaemonCommand::Status { json } => status(json),
        DaemonCommand::Stop { json } => stop(json),
        DaemonCommand::Serve => serve(),
    }
}

fn internal(err: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::SANDBOX_FAILED, err)
}

fn client() -> Result<(Client, hermetic_daemon::config::Config), Failure> {
    let config = autostart::config().map_err(internal)?;
    let client = Client::new(&config.socket).map_err(internal)?;
    Ok((client, config))
}

fn status(json: bool) -> Result<i32, Failure> {
    let (client, config) = client()?;
    match client.health() {
        Ok((health, pid)) => {
            if json {
                let report = json!({
                    "running": true,
                    "socket": config.socket,
                    "pid": pid,
                    "health": health,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!(
                    "hermeticd {} ({}) on {}, pid {}",
                    health.version,
                    health.status,
                    config.socket.display(),
                    pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
                );
                println!(
                    "  {} running, {} queued (at most {} at once, {} waiting)",
                    health.running, health.queued, health.max_concurrent, health.queue_limit
                );
            }
            Ok(exit::SUCCESS)
        }
        Err(ClientError::Connect { source, .. }) => {
            if json {
                let report = json!({
                    "running": false,
                    "socket": config.socket,
                    "error": source.to_string(),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!("no daemon answers on {}", config.socket.display());
            }
            Ok(NOT_RUNNING)
        }
        Err(err) => Err(internal(err)),
    }
}

fn stop(json: bool) -> Result<i32, Failure> {
    let (client, config) = client()?;
    let pid = match client.health() {
        Ok((_, Some(pid))) => pid,
        Ok((_, None)) => {
            return Err(internal(anyhow::anyhow!(
                "the daemon on {} did not tell its pid; stop it with its service manager",
                config.socket.display()
            )))
        }
        Err(ClientError::Connect { .. }) => {
            if json {
                let report =
                    json!({ "stopped": false, "was_running": false, "socket": config.socket });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!(
                    "no daemon answers on {}; nothing to stop",
                    config.socket.display()
                );
            }
            return Ok(exit::SUCCESS);
        }
        Err(err) => return Err(internal(err)),
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(|errno| {
        internal(anyhow::anyhow!(
            "failed to send SIGTERM to the daemon (pid {pid}): {errno}; if systemd runs it, use \
             `systemctl stop hermeticd`"
        ))
    })?;
    let started = Instant::now();
    let deadline = started + config.shutdown_timeout + STOP_MARGIN;
    // An exited daemon may stay a zombie until its parent reaps it: it counts as gone.
    while is_daemon(pid) {
        if Instant::now() >= deadline {
            return Err(internal(anyhow::anyhow!(
                "sent SIGTERM to the daemon (pid {pid}), but it has not exited after {} s",
                started.elapsed().as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
    let waited = started.elapsed();
    if json {
        let report = json!({
            "stopped": true,
            "was_running": true,
            "pid": pid,
            "socket": config.socket,
            "waited_ms": waited.as_millis() as u64,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "stopped the daemon (pid {pid}) on {} after {:.1} s: running jobs finished or were \
             killed, queued jobs were marked interrupted",
            config.socket.display(),
            waited.as_secs_f64()
        );
    }
    Ok(exit::SUCCESS)
}

/// Whether `pid` is still a live process (not a zombie awaiting its parent).
fn is_daemon(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn serve() -> Result<i32, Failure> {
    // Autostarted: leave the caller's session, so its terminal's hangup and job-control
    // signals never reach the daemon. Fails only when already a session leader.
    let _ = nix::unistd::setsid();
    let config = autostart::config().map_err(|err| Failure::new(exit::USAGE, err))?;
    match server::run_daemon(config) {
        Ok(()) => Ok(exit::SUCCESS),
        // Another daemon, started at the same moment, got the socket: the caller uses it.
        Err(ServeError::SocketInUse(socket)) => {
            tracing::info!("another daemon already serves {}", socket.display());
            Ok(exit::SUCCESS)
        }
        Err(err) => Err(Failure::new(exit::USAGE, err)),
    }
}
