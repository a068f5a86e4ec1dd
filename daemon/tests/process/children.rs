//! After any mix of jobs, the daemon has no zombie or leftover children.
use serde_json::json;

use crate::support::{eventually, marker, processes_with, Daemon};

/// The children of this process that have exited and were not reaped.
fn zombie_children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.parse::<u32>().is_ok())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
            let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let fields: Vec<&str> = after_comm.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_zombie_or_leftover_child_outlives_a_mix_of_jobs() {
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let daemon = Daemon::start(|config| config.queue_limit = 100).await;
    let survivor = marker("survivor");
    let orphan = format!("setsid sleep {survivor} & exit 0");
    let many_children =
        format!("for i in $(seq 200); do sleep {survivor} & done; echo forked; exit 1");
    std::fs::create_dir_all(daemon.dir.path().join("artifacts")).unwrap();
    let mut finished = Vec::new();
    let mut sleepers = Vec::new();
    for round in 0..3 {
        let mut ids = Vec::new();
        for command in [
            vec!["/bin/true"],
            vec!["/bin/false"],
            vec!["/no/such/program"],
            vec!["/bin/sh", "-c", &orphan],
            vec!["/bin/sh", "-c", &many_children],
        ] {
            ids.push(daemon.submit(&command).await);
        }
        for single in [true, false] {
            let artifact = daemon
                .dir
                .path()
                .join(format!("artifacts/{round}-{single}.tar.zst"));
            let request = daemon.build_request(
                &artifact,
                single,
                &["/bin/sh", "-c", "mkdir -p out && echo same > out/file"],
            );
            let (status, job) = daemon.post("/v1/jobs", &request).await;
            assert_eq!(status, 201, "{job}");
            ids.push(job["id"].as_u64().unwrap());
        }
        // One cancelled as soon as it runs: its helper may be killed while init is still
        // starting, before init has asked to die with it (init then sees the helper-alive
        // pipe closed and ends).
        let early = daemon.submit(&["/bin/sleep", &survivor]).await;
        daemon
            .wait_for(early, |job| job["state"] == "running")
            .await;
        let (status, job) = daemon
            .post(&format!("/v1/jobs/{early}/cancel"), &json!({}).to_string())
            .await;
        assert_eq!(status, 202, "{job}");
        ids.push(early);
        // One cancelled while its command runs.
        let sleeping = marker("sleeper");
        let sleeper = daemon.submit(&["/bin/sleep", &sleeping]).await;
        assert!(
            eventually(|| !processes_with(&sleeping).is_empty()).await,
            "the job to cancel never ran its command"
        );
        sleepers.push(sleeping);
        let (status, job) = daemon
            .post(
                &format!("/v1/jobs/{sleeper}/cancel"),
                &json!({}).to_string(),
            )
            .await;
        assert_eq!(status, 202, "{job}");
        ids.push(sleeper);
        for id in ids {
            finished.push(daemon.wait_finished(id).await);
        }
    }
    let states: Vec<_> = finished.iter().map(|job| job["state"].clone()).collect();
    for expected in ["succeeded", "failed", "cancelled"] {
        assert!(states.iter().any(|state| state == expected), "{states:?}");
    }
    assert!(
        finished
            .iter()
            .any(|job| job["kind"] == "build" && job["verdict"] == "reproducible"),
        "a dual build ran: {finished:?}"
    );
    assert!(
        eventually(|| zombie_children().is_empty()).await,
        "zombie children of the daemon: {:?}",
        zombie_children()
    );
    for name in std::iter::once(&survivor).chain(&sleepers) {
        assert!(
            eventually(|| processes_with(name).is_empty()).await,
            "a build's process outlived its job: {:?}",
            processes_with(name)
        );
    }
    daemon.stop().await;
}
