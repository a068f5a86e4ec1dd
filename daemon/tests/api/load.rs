//! Many trivial jobs from many clients at once.
use std::time::Instant;

use crate::support::Daemon;

const JOBS: usize = 500;
const CLIENTS: usize = 20;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_jobs_from_twenty_clients_all_complete() {
    let daemon = std::sync::Arc::new(Daemon::start(|config| config.queue_limit = JOBS).await);
    let rss_before = rss_kib();
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
    let rss_after = rss_kib();
    let (_, metrics) = daemon.text("/metrics").await;
    let (_, list) = daemon.get("/v1/jobs?limit=1000").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), JOBS);
    let scratch = daemon.state_dir.join("scratch");
    assert!(!scratch.exists(), "{:?}", std::fs::read_dir(&scratch));
    println!(
        "{JOBS} jobs from {CLIENTS} clients: submitted in {submitted:?}, all done in {elapsed:?} \
         ({:.1} jobs/s); VmRSS {rss_before} kB -> {rss_after} kB",
        JOBS as f64 / elapsed.as_secs_f64()
    );
    assert!(
        metrics.contains(&format!(
            "hermeticd_jobs{{state=\"succeeded\",verdict=\"exited\"}} {JOBS}"
        )),
        "{metrics}"
    );
    // Generous: the daemon keeps nothing per finished job in memory.
    assert!(
        rss_after < rss_before + 100 * 1024,
        "VmRSS grew from {rss_before} kB to {rss_after} kB"
    );
    let daemon = std::sync::Arc::into_inner(daemon).unwrap();
    daemon.stop().await;
}
