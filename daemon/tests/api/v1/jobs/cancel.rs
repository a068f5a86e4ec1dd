//! `POST /v1/jobs/{id}/cancel`
use crate::support::{eventually, marker, processes_with, Daemon};

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_job_kills_its_sandbox() {
    let daemon = Daemon::start(|_| {}).await;
    let marker = marker("cancel-running");
    let id = daemon.submit(&["sleep", &marker]).await;
    daemon.wait_for(id, |job| job["state"] == "running").await;
    assert!(eventually(|| !processes_with(&marker).is_empty()).await);
    let (status, job) = daemon.post(&format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(status, 202, "{job}");
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(processes_with(&marker).is_empty());
    assert!(!daemon.state_dir.join(format!("scratch/{id}")).exists());
    daemon.stop().await;
}

/// A dual build's runs are launched by threads of their own; cancel reaches them all.
#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_dual_build_kills_both_runs() {
    let daemon = Daemon::start(|_| {}).await;
    let marker = marker("cancel-dual");
    let artifact = daemon.dir.path().join("out.tar.zst");
    let request = daemon.build_request(&artifact, false, &["sleep", &marker]);
    let (status, job) = daemon.post("/v1/jobs", &request).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_u64().unwrap();
    // Both runs are sleeping: one process with the marker in each sandbox.
    assert!(eventually(|| processes_with(&marker).len() == 2).await);
    let (status, job) = daemon.post(&format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(status, 202, "{job}");
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(processes_with(&marker).is_empty());
    assert!(!artifact.exists(), "a cancelled build left an artifact");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_queued_job_means_it_never_runs() {
    let daemon = Daemon::start(|config| config.max_concurrent = 1).await;
    let running = daemon.submit(&["sleep", "1000"]).await;
    let queued = daemon.submit(&["/bin/true"]).await;
    let (status, job) = daemon.post(&format!("/v1/jobs/{queued}/cancel"), "").await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "cancelled");
    assert!(job.get("started_at_ms").is_none());
    daemon.post(&format!("/v1/jobs/{running}/cancel"), "").await;
    assert_eq!(daemon.wait_finished(running).await["state"], "cancelled");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_finished_job_is_a_conflict() {
    let daemon = Daemon::start(|_| {}).await;
    let id = daemon.submit(&["/bin/true"]).await;
    daemon.wait_finished(id).await;
    let (status, error) = daemon.post(&format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "not-cancellable");
    daemon.stop().await;
}

/// The scheduler itself on a current-thread runtime, where the job's task cannot run
/// between `submit` and `cancel`: the cancel arrives after the job left the queue and
/// before its task started, and must still stop it (it used to be lost, and the job ran).
#[test]
fn a_cancel_right_after_the_job_left_the_queue_stops_it() {
    use hermetic_contract::wire::{JobRequest, JobState, RunRequest};
    use hermetic_daemon::queue::{Caller, Scheduler};

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut config = hermetic_daemon::config::Config::defaults();
    config.state_dir = dir.path().join("state");
    std::fs::create_dir_all(&config.state_dir).unwrap();
    let store = hermetic_daemon::store::Store::open(&config.state_dir.join("jobs.sqlite")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let scheduler = Scheduler::start(config, store).unwrap();
        let marker = crate::support::marker("cancel-race");
        let request = JobRequest::Run(RunRequest {
            profile: "default".into(),
            src,
            source_date_epoch: None,
            command: vec!["sleep".into(), marker.clone()],
            image: None,
        });
        let caller = Caller {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        let job = scheduler.submit(request, caller).unwrap();
        scheduler.cancel(job.id).unwrap();
        let job_end = || async {
            loop {
                let ended = scheduler.job_ended();
                tokio::pin!(ended);
                ended.as_mut().enable();
                let job = scheduler.store().get(job.id).unwrap().unwrap();
                if job.state.is_terminal() {
                    return job;
                }
                ended.await;
            }
        };
        let limit = std::time::Duration::from_secs(20);
        let Ok(ended) = tokio::time::timeout(limit, job_end()).await else {
            // Stopped for good now, so that the runtime's end does not wait for the job.
            let _ = scheduler.cancel(job.id);
            let _ = tokio::time::timeout(limit, job_end()).await;
            panic!("the job ran on: the cancel sent as it left the queue was lost");
        };
        assert_eq!(ended.state, JobState::Cancelled, "{ended:?}");
        assert!(crate::support::processes_with(&marker).is_empty());
    });
}
