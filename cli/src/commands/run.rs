//! `hermetic run`: one sandboxed command, its output streamed, its status returned.
use hermetic::sandbox::launch::{self, BuildStatus, Launch};
use hermetic::sandbox::plan::{self, Request};
use hermetic::sandbox::profile;

use crate::args::RunArgs;
use crate::exit;
use crate::stdio::{self, Target};
use crate::Failure;

pub fn run(args: RunArgs) -> Result<i32, Failure> {
    // Anything that stops the sandbox from being set up, configuration included, is 125:
    // any other code could be mistaken for the command's own status.
    let setup_failed = |err: anyhow::Error| Failure::new(exit::RUN_SANDBOX_FAILED, err);
    let profile = profile::load(&args.sandbox.profile).map_err(|e| setup_failed(e.into()))?;
    let plan = plan::plan(
        &profile,
        &Request {
            command: &args.command,
            source: Some(&args.sandbox.src),
            outputs: None,
            source_date_epoch: args.sandbox.source_date_epoch,
        },
    )
    .map_err(|e| setup_failed(e.into()))?;

    let (stdout, stdout_relay) =
        stdio::for_build(Target::Stdout).map_err(|e| setup_failed(e.into()))?;
    let (stderr, stderr_relay) =
        stdio::for_build(Target::Stderr).map_err(|e| setup_failed(e.into()))?;
    let outcome = launch::run(Launch {
        spec: &plan.spec,
        cgroup_policy: profile.cgroup,
        stdout,
        stderr,
        artifact: None,
    });
    for relay in [stdout_relay, stderr_relay].into_iter().flatten() {
        let _ = relay.join();
    }
    let outcome = outcome.map_err(|e| setup_failed(e.into()))?;

    if let Some((program, errno)) = &outcome.exec_failure {
        let error = std::io::Error::from_raw_os_error(*errno);
        let code = if *errno == libc_enoent() {
            exit::RUN_NOT_FOUND
        } else {
            exit::RUN_CANNOT_EXECUTE
        };
        return Err(Failure::new(
            code,
            anyhow::anyhow!("cannot execute `{program}` in the sandbox: {error}"),
        ));
    }
    if outcome.status == BuildStatus::TimedOut {
        eprintln!("hermetic: the command exceeded the profile's timeout and was killed");
    }
    Ok(outcome.status.shell_code())
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}
