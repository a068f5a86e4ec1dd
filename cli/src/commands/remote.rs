//! `run` and `build` through the daemon: make the request's paths absolute (the daemon
//! does not share the caller's working directory), submit it, relay its log as it is
//! written, and return the finished job. A signal to the client cancels the job, as it
//! would kill an in-process run.
use std::io::Write;
use std::path::{Path, PathBuf};

use hermetic_contract::wire::{Job, JobRequest};
use hermetic_daemon::queue::log::Stream;

use crate::client::{autostart, Followed};
use crate::Failure;

/// Where a stream of the job's log goes on this side.
pub enum Relay {
    /// `run`: stdout to stdout, stderr to stderr.
    Separate,
    /// `build`: everything the build writes is a log, on stderr.
    AllToStderr,
    /// `drill run`: the builds' logs stay in the daemon (`hermetic logs ID`).
    Nowhere,
}

/// `path` made absolute against the current directory.
pub fn absolute(flag: &str, path: &Path) -> Result<PathBuf, anyhow::Error> {
    std::path::absolute(path).map_err(|err| anyhow::anyhow!("{flag} {}: {err}", path.display()))
}

/// A profile argument as the daemon must see it: a path made absolute, a name unchanged
/// (the rule of `hermetic::sandbox::profile::load`).
pub fn absolute_profile(profile: &str) -> Result<String, anyhow::Error> {
    if profile.contains('/') || profile.ends_with(".toml") {
        return Ok(absolute("--profile", Path::new(profile))?
            .to_string_lossy()
            .into_owned());
    }
    Ok(profile.to_owned())
}

/// Submits `request` to the daemon (started if needed) and relays its log until it ends.
/// Failing to reach the daemon is `setup_code`.
pub fn execute(request: &JobRequest, relay: Relay, setup_code: i32) -> Result<Job, Failure> {
    let failed = |err: anyhow::Error| Failure::new(setup_code, err);
    let mut sink = |stream: Stream, bytes: &[u8]| {
        // A closed stdout (`| head`) must not stop the job or the relay of stderr.
        let _ = match (stream, &relay) {
            (_, Relay::Nowhere) => Ok(()),
            (Stream::Stdout, Relay::Separate) => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            (Stream::Stdout | Stream::Stderr, _) => std::io::stderr().write_all(bytes),
            // The daemon's notes repeat the job's error, which the caller reports itself.
            (Stream::Daemon, _) => Ok(()),
        };
    };
    let (client, (id, followed)) =
        autostart::submit_with(|client| client.submit_and_follow(request, &mut sink))
            .map_err(failed)?;
    match followed {
        Followed::Ended(Some(finished)) => Ok(*finished),
        Followed::Ended(None) => client
            .job(id)
            .map_err(|err| failed(anyhow::Error::from(err).context(format!("job {id}")))),
        Followed::Signal(signal) => {
            let outcome = match client.cancel(id) {
                Ok(_) => "cancelled it".to_owned(),
                Err(err) => format!("could not cancel it: {}", hermetic::errors::Chain(&err)),
            };
            Err(Failure::new(
                128 + signal,
                anyhow::anyhow!("interrupted while job {id} ran; {outcome}"),
            ))
        }
    }
}
