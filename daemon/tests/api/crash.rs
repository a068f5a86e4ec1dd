//! The real `hermeticd`, killed with SIGKILL while a job runs, then restarted.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::support::{eventually, marker, processes_with, request, POLL_ATTEMPTS, POLL_INTERVAL};

/// A started `hermeticd`, killed on drop: a failing test leaves no daemon behind.
struct Hermeticd(Child);

impl Drop for Hermeticd {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start(dir: &std::path::Path) -> Hermeticd {
    let config = dir.join("config.toml");
    std::fs::write(&config, "version = 1\nmax_concurrent = 2\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_hermeticd"))
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(dir.join("hermeticd.sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("HERMETICD_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .map(Hermeticd)
        .expect("start hermeticd")
}

async fn get(socket: &std::path::Path, path: &str) -> Option<Value> {
    tokio::net::UnixStream::connect(socket).await.ok()?;
    let (status, body) = request(socket, "GET", path, None).await;
    (status == 200).then(|| serde_json::from_slice(&body).unwrap())
}

async fn wait_job(socket: &std::path::Path, id: u64, state: &str) -> Value {
    for _ in 0..POLL_ATTEMPTS {
        if let Some(job) = get(socket, &format!("/v1/jobs/{id}")).await {
            if job["state"] == state {
                return job;
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("job {id} never became {state}");
}

/// A daemon answering in a directory of its own: (the directory, its socket, an empty
/// source directory, the daemon).
async fn started() -> (tempfile::TempDir, PathBuf, PathBuf, Hermeticd) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hermeticd.sock");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let daemon = start(dir.path());
    assert!(eventually(|| std::os::unix::net::UnixStream::connect(&socket).is_ok()).await);
    (dir, socket, src, daemon)
}

/// Submits `sleep MARKER` (the marker is a duration of over 1000 s that only this test's
/// processes carry) and waits until it runs; returns its id.
async fn start_sleeping_job(socket: &std::path::Path, src: &std::path::Path, marker: &str) -> u64 {
    let body =
        json!({"kind": "run", "profile": "default", "src": src, "command": ["sleep", marker]});
    let (status, job) = request(
        socket,
        "POST",
        "/v1/jobs",
        Some(body.to_string().as_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&job));
    let id = serde_json::from_slice::<Value>(&job).unwrap()["id"]
        .as_u64()
        .unwrap();
    wait_job(socket, id, "running").await;
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemon_leaves_no_sandbox_and_its_job_is_interrupted_after_a_restart() {
    let (dir, socket, src, mut daemon) = started().await;

    let marker = marker("crash");
    let id = start_sleeping_job(&socket, &src, &marker).await;
    // A build that has written its outputs when the daemon dies: its archive must not
    // appear where the user would take it for a result.
    let build_marker = crate::support::marker("crash-build");
    let artifact = dir.path().join("out.tar.zst");
    let build = json!({
        "kind": "build", "profile": "default", "src": src, "outputs": ["out"],
        "artifact": artifact, "extract": null, "single": false, "explain": false,
        "source_date_epoch": null,
        "command": ["sh", "-c", format!("mkdir -p out && echo half > out/f && sleep {build_marker}")],
    });
    let (status, job) = request(
        &socket,
        "POST",
        "/v1/jobs",
        Some(build.to_string().as_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&job));
    let build_id = serde_json::from_slice::<Value>(&job).unwrap()["id"]
        .as_u64()
        .unwrap();
    assert!(eventually(|| !processes_with(&marker).is_empty()).await);
    assert!(eventually(|| processes_with(&build_marker).len() >= 2).await);
    // A running job has no scratch directory (it builds in its sandbox's tmpfs).
    let scratch = dir.path().join(format!("state/scratch/{id}"));
    assert!(!scratch.exists());

    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    assert!(
        eventually(
            || processes_with(&marker).is_empty() && processes_with(&build_marker).is_empty()
        )
        .await,
        "the sandboxes outlived their daemon: {:?} {:?}",
        processes_with(&marker),
        processes_with(&build_marker)
    );
    assert!(!artifact.exists(), "a killed build left its archive");

    let mut restarted = start(dir.path());
    let job = wait_job(&socket, id, "interrupted").await;
    assert!(
        job["error"].as_str().unwrap().contains("daemon stopped"),
        "{job}"
    );
    let build = wait_job(&socket, build_id, "interrupted").await;
    assert!(build.get("digests").is_none(), "{build}");
    assert!(!artifact.exists(), "a killed build left its archive");
    // Its half-written runs stay hidden until the next build of the same artifact, which
    // sweeps them.
    let partials = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
            .filter(|name| name.contains(".partial-"))
            .collect()
    };
    assert!(
        !partials().is_empty(),
        "expected the killed build's partial archives"
    );
    let rebuild = json!({
        "kind": "build", "profile": "default", "src": src, "outputs": ["out"],
        "artifact": artifact, "extract": null, "single": true, "explain": false,
        "source_date_epoch": null, "command": ["sh", "-c", "mkdir -p out && echo whole > out/f"],
    });
    let (status, job) = request(
        &socket,
        "POST",
        "/v1/jobs",
        Some(rebuild.to_string().as_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&job));
    let rebuild_id = serde_json::from_slice::<Value>(&job).unwrap()["id"]
        .as_u64()
        .unwrap();
    wait_job(&socket, rebuild_id, "succeeded").await;
    assert!(artifact.exists());
    assert_eq!(partials(), Vec::<String>::new());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(restarted.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = restarted.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket was left behind");
}

/// An older daemon kept a running job's log in the job's scratch directory. A daemon
/// started after it died moves that log to the log directory, where `hermetic logs` reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_an_older_daemon_left_in_a_scratch_dir_is_moved_to_the_log_dir_on_restart() {
    let (dir, socket, src, mut daemon) = started().await;
    let marker = marker("legacy-log");
    let id = start_sleeping_job(&socket, &src, &marker).await;
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    assert!(eventually(|| processes_with(&marker).is_empty()).await);

    // The older layout: the log and its index inside the scratch directory.
    let state = dir.path().join("state");
    let final_log = state.join(format!("logs/{id}.log"));
    for name in ["log", "log.streams"] {
        let _ = std::fs::remove_file(state.join(format!("logs/{id}.{name}")));
    }
    std::fs::create_dir_all(state.join(format!("scratch/{id}"))).unwrap();
    std::fs::write(
        state.join(format!("scratch/{id}/log")),
        "written by an older daemon\n",
    )
    .unwrap();
    std::fs::write(state.join(format!("scratch/{id}/log.streams")), []).unwrap();
    assert!(!final_log.exists());

    let _restarted = start(dir.path());
    wait_job(&socket, id, "interrupted").await;
    assert_eq!(
        std::fs::read_to_string(&final_log).unwrap(),
        "written by an older daemon\n"
    );
    assert!(!state.join(format!("scratch/{id}")).exists());
}
