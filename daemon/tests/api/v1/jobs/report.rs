//! `GET /v1/jobs/{id}`'s `report`: a build's `hermetic.build/v1` report reads back into the
//! `BuildReport` the engine makes, whatever the verdict, with nothing lost on the way.
use hermetic::build::{self, BuildReport, BuildRequest, BuildVerdict, CacheOptions, CacheStatus};
use hermetic::cache::RestoreStep;
use hermetic_contract::wire::{Job, JobRequest, JobVerdict};

use crate::support::{self, Daemon};

/// Each verdict's build, through the daemon and in this process: the two reports are
/// equal but for run times and per-run cgroup names.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_job_reports_what_the_engine_reports_for_every_verdict() {
    let daemon = Daemon::start(|_| {}).await;
    let builds = [
        (
            BuildVerdict::Built,
            true,
            "mkdir -p out && echo built > out/a",
        ),
        (
            BuildVerdict::Reproducible,
            false,
            "mkdir -p out && echo built > out/a",
        ),
        // Run b's pids are offset: the shell's own pid differs, and only in run b.
        (
            BuildVerdict::Nondeterministic,
            false,
            "mkdir -p out && echo $$ > out/pid",
        ),
        (BuildVerdict::Failed, false, "echo failing; exit 1"),
    ];
    for (verdict, single, script) in builds {
        let request = BuildRequest {
            single,
            ..build_request(&daemon, script)
        };
        let job = build_job(&daemon, &request).await;
        let from_daemon = *job.report.expect("a build job has a report");
        assert_eq!(from_daemon.verdict, verdict, "{from_daemon:?}");
        let in_process = tokio::task::spawn_blocking(move || {
            let sink = || -> std::io::Result<Box<dyn std::io::Write + Send>> {
                Ok(Box::new(std::io::sink()))
            };
            build::execute(&request, &sink, None, None).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            without_run_specifics(from_daemon),
            without_run_specifics(in_process),
            "{verdict}"
        );
    }
    daemon.stop().await;
}

/// A stored result, then a hit, then a refused entry quarantined before a fresh build: each
/// report reads back whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_job_reports_cache_hits_and_quarantines() {
    let daemon = Daemon::start(|_| {}).await;
    let request = BuildRequest {
        cache: Some(Box::new(CacheOptions {
            dir: daemon.dir.path().join("cache"),
            state_dir: Some(daemon.dir.path().join("keys")),
            ..CacheOptions::default()
        })),
        ..build_request(&daemon, "mkdir -p out && echo cached > out/a")
    };
    let stored = *build_job(&daemon, &request).await.report.unwrap();
    assert_eq!(
        (stored.verdict, stored.cache.status, stored.cache.stored),
        (BuildVerdict::Reproducible, CacheStatus::Miss, true),
        "{stored:?}"
    );
    let entry = stored.cache.entry.expect("the stored entry");

    let hit = *build_job(&daemon, &request).await.report.unwrap();
    assert_eq!(
        (hit.verdict, hit.cache.status, hit.cache.entry.as_deref()),
        (
            BuildVerdict::Reproducible,
            CacheStatus::Hit,
            Some(entry.as_path())
        ),
        "{hit:?}"
    );
    assert!(hit.runs.is_empty(), "{hit:?}");
    assert_eq!(hit.output.unwrap().files, stored.output.unwrap().files);

    std::fs::write(entry.join(hermetic::cache::BUNDLE_FILE), "{}").unwrap();
    let refused = *build_job(&daemon, &request).await.report.unwrap();
    assert_eq!(
        (refused.cache.status, refused.cache.step),
        (CacheStatus::Quarantined, Some(RestoreStep::Signature)),
        "{refused:?}"
    );
    assert!(refused.cache.quarantine.is_some(), "{refused:?}");
    assert_eq!(refused.verdict, BuildVerdict::Reproducible, "{refused:?}");
    daemon.stop().await;
}

/// A dual build in the daemon's source, archiving `out` beside it.
fn build_request(daemon: &Daemon, script: &str) -> BuildRequest {
    BuildRequest {
        profile: "default".into(),
        src: daemon.src.clone(),
        outputs: vec!["out".into()],
        artifact: daemon.dir.path().join("out.tar.zst"),
        extract: None,
        single: false,
        explain: false,
        source_date_epoch: None,
        command: vec!["sh".into(), "-c".into(), script.into()],
        image: None,
        cache: None,
    }
}

/// Runs `request` as a job and returns its final record, read as the client reads it,
/// once its report was checked to read back as the JSON the daemon sent.
async fn build_job(daemon: &Daemon, request: &BuildRequest) -> Job {
    let body = serde_json::to_string(&JobRequest::Build(request.clone())).unwrap();
    let (status, submitted) = daemon.post("/v1/jobs", &body).await;
    assert_eq!(status, 201, "{submitted}");
    let id = submitted["id"].as_u64().unwrap();
    daemon.wait_finished(id).await;
    let (status, body) =
        support::request(&daemon.socket, "GET", &format!("/v1/jobs/{id}"), None).await;
    assert_eq!(status, 200);
    let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let job: Job = serde_json::from_slice(&body).unwrap();
    let report = job.report.as_deref().expect("a build job has a report");
    assert_eq!(report.to_published_json().unwrap(), sent["report"]);
    assert_eq!(job.verdict, Some(JobVerdict::Build(report.verdict)));
    job
}

/// `report` without what two executions of the same build never share: how long the runs
/// took, and the per-run directories of their cgroups (their versions stay).
fn without_run_specifics(mut report: BuildReport) -> BuildReport {
    for run in &mut report.runs {
        run.duration_ms = 0;
        run.setup_ms = None;
    }
    if let Some(cgroup) = report
        .sandbox
        .as_mut()
        .and_then(|layers| layers.cgroup.as_mut())
    {
        for placed in [&mut cgroup.pids, &mut cgroup.memory, &mut cgroup.cpu]
            .into_iter()
            .flatten()
        {
            if let Some((version, _)) = placed.split_once(':') {
                *placed = version.to_owned();
            }
        }
    }
    report
}
