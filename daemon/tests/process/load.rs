//! A thousand trivial jobs submitted at once, from many clients: every job accounted for,
//! memory bounded, and no descriptor left open once they are done.
use std::time::Instant;

use crate::support::{eventually, Daemon};

const JOBS: usize = 1000;
const CLIENTS: usize = 20;

/// A `/proc/self/status` figure in kB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_jobs_at_once_all_complete_without_leaking() {
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let daemon = std::sync::Arc::new(Daemon::start(|config| config.queue_limit = JOBS).await);
    // One job first: the daemon's own descriptors, some opened at its first job (the job
    // database's write-ahead log and shared memory), are all open after it.
    let first = daemon.submit(&["/bin/true"]).await;
    assert_eq!(daemon.wait_finished(first).await["state"], "succeeded");
    let descriptors_before = open_descriptors();
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..JOBS / CLIENTS {
                    ids.push(daemon.submit(&["/bin/true"]).await);
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for client in clients {
        ids.extend(client.await.unwrap());
    }
    assert_eq!(ids.len(), JOBS);
    let submitted = started.elapsed();
    for &id in &ids {
        let job = daemon.wait_finished(id).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["exit_code"], 0, "{job}");
    }
    let elapsed = started.elapsed();
    let rss_after = status_kib("VmRSS");
    let (_, metrics) = daemon.text("/metrics").await;
    let (_, list) = daemon.get("/v1/jobs?limit=2000").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), JOBS + 1);
    let scratch = daemon.state_dir.join("scratch");
    assert!(!scratch.exists(), "{:?}", std::fs::read_dir(&scratch));
    assert!(
        metrics.contains(&format!(
            "hermeticd_jobs{{state=\"succeeded\",verdict=\"exited\"}} {}",
            JOBS + 1
        )),
        "{metrics}"
    );
    // Helpers are reaped, and their cgroups removed, on the blocking pool after each
    // job's end: give the last of them their moment.
    assert!(
        eventually(|| open_descriptors() <= descriptors_before).await,
        "{} descriptors open after the jobs, {descriptors_before} before: {:?}",
        open_descriptors(),
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .collect::<Vec<_>>()
    );
    println!(
        "{JOBS} jobs from {CLIENTS} clients: submitted in {submitted:?}, all done in {elapsed:?} \
         ({:.1} jobs/s); VmRSS {rss_before} kB -> {rss_after} kB, peak (VmHWM, test harness \
         included) {} kB; descriptors {descriptors_before} -> {}",
        JOBS as f64 / elapsed.as_secs_f64(),
        status_kib("VmHWM"),
        open_descriptors()
    );
    // Generous: the daemon keeps nothing per finished job in memory.
    assert!(
        rss_after < rss_before + 100 * 1024,
        "VmRSS grew from {rss_before} kB to {rss_after} kB"
    );
    let daemon = std::sync::Arc::into_inner(daemon).unwrap();
    daemon.stop().await;
}
