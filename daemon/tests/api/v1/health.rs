//! `GET /v1/health`
use crate::support::Daemon;

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_ok_and_the_limits() {
    let daemon = Daemon::start(|config| config.queue_limit = 7).await;
    let (status, health) = daemon.get("/v1/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["api_version"], 1);
    assert_eq!(health["queue_limit"], 7);
    assert_eq!(health["max_concurrent"], 2);
    daemon.stop().await;
}
