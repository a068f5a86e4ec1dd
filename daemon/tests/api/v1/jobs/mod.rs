//! `POST /v1/jobs`, `GET /v1/jobs`, `GET /v1/jobs/{id}`
mod cancel;
mod log;
mod report;

use serde_json::json;

use crate::support::Daemon;

#[tokio::test(flavor = "multi_thread")]
async fn a_run_job_succeeds_and_its_status_says_how() {
    let daemon = Daemon::start(|_| {}).await;
    let id = daemon.submit(&["/bin/true"]).await;
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "run");
    assert_eq!(job["verdict"], "exited");
    assert_eq!(job["exit_code"], 0);
    assert_eq!(job["schema"], "hermetic.daemon/v1");
    assert!(job["started_at_ms"].as_u64() >= job["submitted_at_ms"].as_u64());
    assert!(job["finished_at_ms"].as_u64() >= job["started_at_ms"].as_u64());
    assert_eq!(job["request"]["command"], json!(["/bin/true"]));
    // No scratch directory is left, and a job that printed nothing has no log file: its
    // log reads as empty.
    assert!(!daemon.state_dir.join(format!("scratch/{id}")).exists());
    assert!(!std::path::Path::new(job["log_path"].as_str().unwrap()).exists());
    let (status, log) = daemon.text(&format!("/v1/jobs/{id}/log")).await;
    assert_eq!((status, log.as_str()), (200, ""));
    // One that printed has it, where its record says.
    let id = daemon.submit(&["sh", "-c", "echo kept"]).await;
    let job = daemon.wait_finished(id).await;
    let log_path = std::path::PathBuf::from(job["log_path"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(log_path).unwrap(), "kept\n");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_does_not_see_the_daemon_socket() {
    let daemon = Daemon::start(|_| {}).await;
    let script = format!(
        "test ! -e {} && test ! -e /run/hermetic && test ! -e {}",
        daemon.socket.display(),
        daemon.state_dir.display()
    );
    let id = daemon.submit(&["sh", "-c", &script]).await;
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_command_fails_the_job_with_its_exit_code() {
    let daemon = Daemon::start(|_| {}).await;
    let failing = daemon.submit(&["sh", "-c", "exit 3"]).await;
    let missing = daemon.submit(&["/no/such/program"]).await;
    let job = daemon.wait_finished(failing).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["exit_code"], 3);
    let job = daemon.wait_finished(missing).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["verdict"], "not-found");
    assert_eq!(job["exit_code"], 127);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_keeps_its_build_tree_and_log_with_keep_failed() {
    let daemon = Daemon::start(|config| config.keep_failed = true).await;
    let failing = daemon
        .submit(&[
            "sh",
            "-c",
            "mkdir -p obj/deep && echo half > obj/deep/a.o && ln -s /etc/passwd escape \
             && cp /bin/true obj/tool; chmod 6755 obj/tool 2>/dev/null; echo kept; exit 1",
        ])
        .await;
    // (chmod's refusal goes to /dev/null: stdout and stderr reach the log through two
    // pipes, and its message could land around `kept` mid-line.)
    let ok = daemon.submit(&["sh", "-c", "echo done > result"]).await;
    assert_eq!(daemon.wait_finished(failing).await["state"], "failed");
    assert_eq!(daemon.wait_finished(ok).await["state"], "succeeded");
    let scratch = daemon.state_dir.join(format!("scratch/{failing}"));
    let tree = scratch.join("build");
    assert_eq!(
        std::fs::read_to_string(tree.join("obj/deep/a.o")).unwrap(),
        "half\n"
    );
    // The build's symlink is kept as a symlink: nothing was read or written through it.
    assert_eq!(
        std::fs::read_link(tree.join("escape")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    // The daemon writes the copy as itself (root here): no setuid or setgid bit comes
    // along (seccomp refuses the build's chmod, and the archive keeps only 0644/0755).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tree.join("obj/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "{mode:o}");
    let log = std::fs::read_to_string(scratch.join("log")).unwrap();
    assert!(log.lines().any(|line| line == "kept"), "{log}");
    assert!(
        log.contains(&format!(
            "kept the failed build's tree in {}",
            tree.display()
        )),
        "{log}"
    );
    assert!(!daemon.state_dir.join(format!("scratch/{ok}")).exists());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_job_keeps_its_build_tree_and_leaves_no_process() {
    let daemon = Daemon::start(|config| config.keep_failed = true).await;
    let default = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/default.toml"),
    )
    .unwrap();
    assert!(default.contains("\ntimeout_secs = 3600\n"));
    let profile = daemon.dir.path().join("one-second.toml");
    std::fs::write(
        &profile,
        default.replace("\ntimeout_secs = 3600\n", "\ntimeout_secs = 1\n"),
    )
    .unwrap();
    let marker = format!("{}{}", std::process::id(), line!());
    let script = format!(
        "echo partial > partial; trap '' TERM HUP INT; sleep 86400.{marker} & \
         setsid sleep 86401.{marker} & sleep 86402.{marker}; wait"
    );
    let request = json!({
        "kind": "run",
        "profile": profile,
        "src": daemon.src,
        "command": ["sh", "-c", script],
    });
    let (status, job) = daemon.post("/v1/jobs", &request.to_string()).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_u64().unwrap();
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["verdict"], "timed-out", "{job}");
    assert_eq!(job["exit_code"], 124, "{job}");
    let tree = daemon.state_dir.join(format!("scratch/{id}/build"));
    assert_eq!(
        std::fs::read_to_string(tree.join("partial")).unwrap(),
        "partial\n"
    );
    // Init, not the helper, stopped this build: still, nothing of it outlives the job.
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&format!(".{marker}")))
        .collect();
    assert_eq!(survivors, Vec::<String>::new());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_keep_failed_a_failed_job_leaves_no_scratch_dir() {
    let daemon = Daemon::start(|_| {}).await;
    let failing = daemon
        .submit(&["sh", "-c", "echo half > half.o; exit 1"])
        .await;
    assert_eq!(daemon.wait_finished(failing).await["state"], "failed");
    assert!(!daemon.state_dir.join(format!("scratch/{failing}")).exists());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_dual_build_keeps_the_tree_of_each_failed_run() {
    let daemon = Daemon::start(|config| config.keep_failed = true).await;
    let artifact = daemon.dir.path().join("out.tar.zst");
    let request = daemon.build_request(
        &artifact,
        false,
        &["sh", "-c", "mkdir out && echo partial > out/a; exit 2"],
    );
    let (status, job) = daemon.post("/v1/jobs", &request).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_u64().unwrap();
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(!artifact.exists());
    let scratch = daemon.state_dir.join(format!("scratch/{id}"));
    for run in ["build", "build.run-b"] {
        let kept = scratch.join(run).join("out/a");
        assert_eq!(
            std::fs::read_to_string(&kept).unwrap(),
            "partial\n",
            "{run}"
        );
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_tree_leaves_out_what_no_archive_holds_and_says_so() {
    let daemon = Daemon::start(|config| config.keep_failed = true).await;
    let failing = daemon
        .submit(&["sh", "-c", "mkfifo pipe; echo half > half.o; exit 1"])
        .await;
    assert_eq!(daemon.wait_finished(failing).await["state"], "failed");
    let scratch = daemon.state_dir.join(format!("scratch/{failing}"));
    assert_eq!(
        std::fs::read_to_string(scratch.join("build/half.o")).unwrap(),
        "half\n"
    );
    assert!(!scratch.join("build/pipe").exists());
    let log = std::fs::read_to_string(scratch.join("log")).unwrap();
    assert!(
        log.contains("left out") && log.contains("pipe (fifo)"),
        "{log}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_build_job_writes_its_artifact_and_reports_digests() {
    let daemon = Daemon::start(|_| {}).await;
    let artifact = daemon.dir.path().join("out.tar.zst");
    let request = daemon.build_request(
        &artifact,
        true,
        &[
            "sh",
            "-c",
            "mkdir -p out && echo built > out/a && echo building",
        ],
    );
    let (status, job) = daemon.post("/v1/jobs", &request).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_u64().unwrap();
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "build");
    assert_eq!(job["verdict"], "built");
    assert_eq!(job["exit_code"], 0);
    assert_eq!(
        job["digests"]["sha256"].as_str().unwrap().len(),
        64,
        "{job}"
    );
    assert_eq!(job["report"]["schema"], "hermetic.build/v1");
    assert!(artifact.is_file());
    let (_, log) = daemon.text(&format!("/v1/jobs/{id}/log")).await;
    assert!(log.contains("building"), "{log}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_listed_newest_first() {
    let daemon = Daemon::start(|_| {}).await;
    let first = daemon.submit(&["/bin/true"]).await;
    let second = daemon.submit(&["/bin/false"]).await;
    daemon.wait_finished(first).await;
    daemon.wait_finished(second).await;
    let (status, list) = daemon.get("/v1/jobs").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<u64> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [second, first]);
    assert_eq!(list["jobs"][0]["state"], "failed");
    let (_, list) = daemon.get("/v1/jobs?limit=1").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_survive_a_restart_on_the_same_state_dir() {
    let daemon = Daemon::start(|_| {}).await;
    let id = daemon.submit(&["/bin/true"]).await;
    daemon.wait_finished(id).await;
    let again = Daemon::start_in(daemon.stop().await, |_| {}).await;
    let job = again.wait_finished(id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_job_is_not_found() {
    let daemon = Daemon::start(|_| {}).await;
    for path in ["/v1/jobs/999", "/v1/jobs/nope", "/v1/jobs/999/log"] {
        let (status, error) = daemon.get(path).await;
        assert_eq!(status, 404, "{path}: {error}");
        assert_eq!(error["error"]["code"], "not-found");
    }
    let (status, error) = daemon.post("/v1/jobs/999/cancel", "").await;
    assert_eq!(status, 404, "{error}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_refuses_submissions_as_busy() {
    let daemon = Daemon::start(|config| {
        config.max_concurrent = 1;
        config.queue_limit = 2;
    })
    .await;
    let running = daemon.submit(&["sleep", "1000"]).await;
    let queued = [
        daemon.submit(&["/bin/true"]).await,
        daemon.submit(&["/bin/true"]).await,
    ];
    let (status, error) = daemon
        .post("/v1/jobs", &daemon.run_request(&["/bin/true"]))
        .await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["error"]["code"], "busy");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("queue is full"));
    let (_, metrics) = daemon.text("/metrics").await;
    assert!(
        metrics.contains("hermeticd_jobs_rejected_busy_total 1"),
        "{metrics}"
    );
    // The daemon still answers, and the queue drains in order once the slot is free.
    let (status, _) = daemon.post(&format!("/v1/jobs/{running}/cancel"), "").await;
    assert_eq!(status, 202);
    for id in queued {
        assert_eq!(daemon.wait_finished(id).await["state"], "succeeded");
    }
    let first: u64 = daemon.get(&format!("/v1/jobs/{}", queued[0])).await.1["started_at_ms"]
        .as_u64()
        .unwrap();
    let second: u64 = daemon.get(&format!("/v1/jobs/{}", queued[1])).await.1["started_at_ms"]
        .as_u64()
        .unwrap();
    assert!(first <= second);
    daemon.stop().await;
}
