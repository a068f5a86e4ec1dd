//! `GET /metrics`
use crate::support::Daemon;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_jobs_by_state_and_verdict() {
    let daemon = Daemon::start(|_| {}).await;
    let ok = daemon.submit(&["/bin/true"]).await;
    let failed = daemon.submit(&["/bin/false"]).await;
    daemon.wait_finished(ok).await;
    daemon.wait_finished(failed).await;
    let (status, text) = daemon.text("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "hermeticd_jobs{state=\"succeeded\",verdict=\"exited\"} 1",
        "hermeticd_jobs{state=\"failed\",verdict=\"exited\"} 1",
        "hermeticd_jobs{state=\"running\",verdict=\"none\"} 0",
        "hermeticd_queue_depth 0",
        "hermeticd_jobs_submitted_total 2",
        "hermeticd_job_duration_seconds_count 2",
        "hermeticd_job_queue_wait_seconds_count 2",
        "hermeticd_sandbox_setup_seconds_count 2",
        "# TYPE hermeticd_sandbox_setup_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    daemon.stop().await;
}
