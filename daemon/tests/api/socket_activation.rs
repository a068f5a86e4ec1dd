//! `hermeticd` started by systemd socket activation serves the socket it is passed.
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::request;

/// systemd's side of the protocol: the socket on fd 3, and LISTEN_PID naming the daemon
/// (exec keeps python's pid).
const ACTIVATE: &str = "import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')
os.execv(sys.argv[2], sys.argv[2:])";

#[tokio::test(flavor = "multi_thread")]
async fn hermeticd_serves_the_socket_systemd_passes_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let passed = dir.path().join("activated.sock");
    let configured = dir.path().join("configured.sock");
    let listener = std::os::unix::net::UnixListener::bind(&passed).unwrap();
    // Inheritable, so that python (and, through its fd 3, hermeticd) gets it.
    fcntl(&listener, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "version = 1\n").unwrap();
    let mut daemon = Command::new("python3")
        .args(["-c", ACTIVATE])
        .arg(std::os::fd::AsRawFd::as_raw_fd(&listener).to_string())
        .arg(env!("CARGO_BIN_EXE_hermeticd"))
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&configured)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("HERMETICD_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start hermeticd through python3");
    drop(listener);

    // The socket already listens, so the request waits in its backlog until the daemon
    // serves it; if the daemon failed instead, the timeout says so.
    let (status, body) = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        request(&passed, "GET", "/v1/health", None),
    )
    .await
    .expect("the activated daemon never answered");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        !configured.exists(),
        "the daemon bound the configured socket instead of the passed one"
    );

    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM).unwrap();
    let status = daemon.wait().unwrap();
    assert!(
        status.success(),
        "{status:?} (signal {:?})",
        status.signal()
    );
    assert!(passed.exists(), "the daemon removed systemd's socket");
}
