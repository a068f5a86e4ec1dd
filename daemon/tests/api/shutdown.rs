//! Graceful shutdown: running jobs may finish up to the timeout, then their sandboxes are
//! killed; queued jobs never start.
use std::time::Duration;

use crate::support::{marker, processes_with, Daemon};

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_a_short_job_finish() {
    let daemon = Daemon::start(|config| config.shutdown_timeout = Duration::from_secs(60)).await;
    let id = daemon.submit(&["sh", "-c", "sleep 1; echo done"]).await;
    daemon.wait_for(id, |job| job["state"] == "running").await;
    let restarted = Daemon::start_in(daemon.stop().await, |_| {}).await;
    let job = restarted.wait_finished(id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_kills_jobs_past_the_timeout_and_interrupts_queued_ones() {
    let daemon = Daemon::start(|config| {
        config.max_concurrent = 1;
        config.shutdown_timeout = Duration::from_millis(200);
    })
    .await;
    let marker = marker("shutdown");
    let running = daemon.submit(&["sleep", &marker]).await;
    let queued = daemon.submit(&["/bin/true"]).await;
    daemon
        .wait_for(running, |job| job["state"] == "running")
        .await;
    let dir = daemon.stop().await;
    // `stop` returns once every job has ended: nothing is left to wait for.
    assert!(processes_with(&marker).is_empty());
    // Nor did they leave a scratch directory (a job has one only when kept failed).
    let scratch = dir.path().join("state/scratch");
    assert!(!scratch.exists(), "{:?}", std::fs::read_dir(&scratch));
    let restarted = Daemon::start_in(dir, |_| {}).await;
    for id in [running, queued] {
        let (_, job) = restarted.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(job["state"], "interrupted", "{job}");
    }
    restarted.stop().await;
}
