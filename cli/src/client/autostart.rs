//! Finding the daemon, and starting one for the user when none answers (as sccache
//! does): the CLI re-executes itself as `hermetic daemon serve`, detached, with its output
//! going to `hermeticd.log` in the state directory, and waits until the socket answers.
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use hermetic_daemon::config::{self, Config};

use super::{Client, ClientError};

/// How long a started daemon may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// Polling interval while waiting for the socket.
const POLL: Duration = Duration::from_millis(5);

/// `--no-daemon`, or `HERMETIC_NO_DAEMON=1`.
pub fn in_process(no_daemon_flag: bool) -> bool {
    no_daemon_flag || std::env::var("HERMETIC_NO_DAEMON").is_ok_and(|value| value == "1")
}

/// The configuration the client and the daemon it would start share: the socket and the
/// state directory (`$HERMETIC_CONFIG`, or the daemon's default config file).
pub fn config() -> anyhow::Result<Config> {
    config::load_effective(None).context("failed to read the daemon's configuration")
}

/// Submits a job with `attempt` to the daemon on the configured socket, which is started
/// when none answers. Submitting first saves a round trip when the daemon runs.
pub fn submit_with<T>(
    mut attempt: impl FnMut(&Client) -> Result<T, ClientError>,
) -> anyhow::Result<(Client, T)> {
    let config = config()?;
    let client = Client::new(&config.socket)?;
    let failed = |err: ClientError| anyhow::Error::from(err).context("failed to submit the job");
    match attempt(&client) {
        Ok(answer) => return Ok((client, answer)),
        Err(ClientError::Connect { .. }) => {}
        // A daemon stopping (retiring because its program was replaced, or told to stop):
        // the job goes to the next one, started once this one is gone.
        Err(ClientError::Api { code, .. }) if code == "shutting-down" => {
            wait_until_gone(&config, &client)?;
        }
        Err(err) => return Err(failed(err)),
    }
    start_and_wait(&config, &client)?;
    let answer = attempt(&client).map_err(failed)?;
    Ok((client, answer))
}

/// A client of the daemon on the configured socket, which is started when none answers.
pub fn connect_or_start() -> anyhow::Result<Client> {
    let config = config()?;
    let client = Client::new(&config.socket)?;
    match client.health() {
        Ok(_) => return Ok(client),
        Err(ClientError::Connect { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    start_and_wait(&config, &client)?;
    Ok(client)
}

/// Starts a daemon and waits until `client` gets an answer from it (or from another
/// daemon that won the socket).
fn start_and_wait(config: &Config, client: &Client) -> anyhow::Result<()> {
    let log = log_path(config);
    let mut daemon = start(config, &log)?;
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        match client.health() {
            Ok(_) => return Ok(()),
            Err(ClientError::Connect { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        // A daemon that exited lost the race for the socket to another one just started
        // (which then answers soon), or failed: its log says why.
        let exited = daemon.try_wait().ok().flatten();
        if Instant::now() >= deadline || exited.is_some_and(|status| !status.success()) {
            anyhow::bail!(
                "started a daemon for {}, but it did not answer{}; see its log {}",
                config.socket.display(),
                exited.map_or_else(String::new, |status| format!(" ({status})")),
                log.display()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until the daemon on the socket has exited: it no longer answers and no longer
/// holds the lock beside the socket (which a new daemon needs).
fn wait_until_gone(config: &Config, client: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + config.shutdown_timeout + START_DEADLINE;
    let lock = config.socket.with_extension("lock");
    loop {
        let answers = !matches!(client.health(), Err(ClientError::Connect { .. }));
        if !answers && !locked(&lock) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the daemon on {} is stopping but did not exit in time",
                config.socket.display()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Whether a daemon holds the lock file (one we can't open is not ours to wait for).
fn locked(lock: &Path) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(lock) else {
        return false;
    };
    Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err()
}

/// Where an autostarted daemon's output goes.
fn log_path(config: &Config) -> PathBuf {
    config.state_dir.join("hermeticd.log")
}

fn start(config: &Config, log: &Path) -> anyhow::Result<std::process::Child> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.state_dir)
        .with_context(|| format!("failed to create {}", config.state_dir.display()))?;
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .with_context(|| format!("failed to open the daemon's log {}", log.display()))?;
    let exe = std::env::current_exe().context("failed to find this program to start the daemon")?;
    // `daemon serve` starts a session of its own; "/" as its directory keeps it from
    // pinning the caller's. The environment carries HERMETIC_CONFIG through.
    Command::new(&exe)
        .args(["daemon", "serve"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(
            log_file
                .try_clone()
                .context("failed to share the daemon's log")?,
        )
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("failed to start {} daemon serve", exe.display()))
}
