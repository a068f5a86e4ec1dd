//! `hermetic jobs`, `hermetic logs ID [--follow]`, `hermetic cancel ID`: the daemon's
//! jobs (the daemon is started when none answers, as for `run` and `build`).
use std::io::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use hermetic::timestamp::rfc3339;
use hermetic_contract::wire::{Job, JobRequest, JobState, JobVerdict};
use hermetic_daemon::queue::log::Stream;

use crate::args::{CancelArgs, JobsArgs, LogsArgs};
use crate::client::{autostart, Client, ClientError, Followed};
use crate::exit;
use crate::Failure;

/// How long `cancel` waits for a running job's sandbox to be gone.
const CANCEL_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

fn connect() -> Result<Client, Failure> {
    autostart::connect_or_start().map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))
}

/// An unknown job is the caller's mistake (2); anything else is the daemon's (5).
fn failure(err: ClientError) -> Failure {
    let code = match err.code() {
        Some("not-found" | "not-cancellable") => exit::USAGE,
        _ => exit::SANDBOX_FAILED,
    };
    Failure::new(code, err)
}

pub fn jobs(args: JobsArgs) -> Result<i32, Failure> {
    let list = connect()?.jobs(args.limit).map_err(failure)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(exit::SUCCESS);
    }
    println!(
        "{:>6}  {:<11}  {:<5}  {:<16}  {:>4}  {:<20}  COMMAND",
        "ID", "STATE", "KIND", "VERDICT", "EXIT", "SUBMITTED"
    );
    for job in &list.jobs {
        let command = match &job.request {
            JobRequest::Run(run) => &run.command,
            JobRequest::Build(build) => &build.command,
        };
        let submitted = UNIX_EPOCH + Duration::from_millis(job.submitted_at_ms);
        println!(
            "{:>6}  {:<11}  {:<5}  {:<16}  {:>4}  {:<20}  {}",
            job.id,
            job.state.as_str(),
            job.kind.as_str(),
            job.verdict.map_or("-", JobVerdict::as_str),
            job.exit_code
                .map_or_else(|| "-".to_owned(), |code| code.to_string()),
            rfc3339(submitted),
            command.join(" ")
        );
    }
    Ok(exit::SUCCESS)
}

pub fn logs(args: LogsArgs) -> Result<i32, Failure> {
    let client = connect()?;
    let json = args.json;
    // The log is this command's output: every stream goes to stdout, in order.
    let mut sink = |stream: Stream, bytes: &[u8]| {
        let mut out = std::io::stdout().lock();
        let written = if json {
            let line = serde_json::json!({
                "stream": stream.as_str(),
                "data": String::from_utf8_lossy(bytes),
            });
            writeln!(out, "{line}")
        } else {
            out.write_all(bytes)
        };
        let _ = written.and_then(|()| out.flush());
    };
    match client
        .log(args.id, args.follow, false, &mut sink)
        .map_err(failure)?
    {
        Followed::Ended(job) => {
            if let (true, Some(job)) = (json, job) {
                println!("{}", serde_json::json!({ "job": job }));
            }
            Ok(exit::SUCCESS)
        }
        Followed::Signal(signal) => Ok(128 + signal),
    }
}

pub fn cancel(args: CancelArgs) -> Result<i32, Failure> {
    let client = connect()?;
    let mut job = client.cancel(args.id).map_err(failure)?;
    let deadline = Instant::now() + CANCEL_DEADLINE;
    while !job.state.is_terminal() {
        if Instant::now() >= deadline {
            return Err(Failure::new(
                exit::SANDBOX_FAILED,
                anyhow::anyhow!(
                    "asked the daemon to cancel job {}, but it is still {} after {} s",
                    job.id,
                    job.state.as_str(),
                    CANCEL_DEADLINE.as_secs()
                ),
            ));
        }
        std::thread::sleep(POLL);
        job = client.job(args.id).map_err(failure)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
    } else {
        println!("{}", describe(&job));
    }
    Ok(exit::SUCCESS)
}

fn describe(job: &Job) -> String {
    match (job.state, job.started_at_ms) {
        (JobState::Cancelled, Some(_)) => format!(
            "cancelled job {}: its sandbox was killed, with every process in it",
            job.id
        ),
        (JobState::Cancelled, None) => format!(
            "cancelled job {}: removed from the queue before it started",
            job.id
        ),
        (state, _) => format!(
            "job {} ended as {} before the cancellation took effect",
            job.id,
            state.as_str()
        ),
    }
}
