//! Several hermetic processes (CLIs in `--no-daemon` mode and a daemon's jobs) storing,
//! restoring, gc-ing and quarantining the same key at once, while entries are tampered with: no torn or tampered entry is ever restored, no
//! valid entry is lost but by gc's rule, and the events file holds whole lines only.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::support::{assert_status, hermetic, Source};

const SCRIPT: &str = "mkdir -p out/sub && cat in.txt > out/sub/copy && echo built > out/flag";
const BUILDERS: usize = 4;
const ROUNDS: usize = 3;

/// A cached build with `hermetic` (in-process, or a daemon's client).
fn build(mut hermetic: Command, src: &Path, cache: &Path, state: &Path, work: &Path) -> Output {
    hermetic
        .args(["build", "--json", "--single", "--cache-single-run", "--src"])
        .arg(src)
        .arg("--artifact")
        .arg(work.join("artifact.tar.zst"))
        .arg("--extract")
        .arg(work.join("tree"))
        .arg("--cache-dir")
        .arg(cache)
        .arg("--state-dir")
        .arg(state)
        .args(["--", "sh", "-c", SCRIPT])
        .output()
        .expect("spawn hermetic")
}

fn cache(cache: &Path, state: &Path, args: &[&str]) -> Output {
    hermetic()
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("spawn hermetic")
}

/// Changes one byte in the middle of every stored archive (a new file renamed over the old,
/// so a reader has either whole file; the bytes are what is wrong).
fn tamper_every_entry(cache: &Path) -> usize {
    let mut tampered = 0;
    let Ok(scopes) = std::fs::read_dir(cache.join("scopes")) else {
        return 0;
    };
    for scope in scopes.flatten() {
        for entry in std::fs::read_dir(scope.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let archive = entry.path().join("archive.tar.zst");
            let Ok(mut bytes) = std::fs::read(&archive) else {
                continue;
            };
            let middle = bytes.len() / 2;
            // Never back to the honest byte, however often an entry is hit.
            bytes[middle] = bytes[middle].wrapping_add(1);
            let forged = entry.path().join(".forged");
            if std::fs::write(&forged, &bytes).is_ok() && std::fs::rename(&forged, &archive).is_ok()
            {
                tampered += 1;
            }
        }
    }
    tampered
}

#[test]
fn concurrent_stores_restores_gcs_and_quarantines_never_restore_a_bad_entry() {
    let src = Source::new(&[("in.txt", "input\n")]);
    let tmp = tempfile::tempdir().unwrap();
    let (cache_dir, state) = (tmp.path().join("cache"), tmp.path().join("state"));
    let reference: Value = {
        let work = tmp.path().join("reference");
        std::fs::create_dir(&work).unwrap();
        let output = build(
            hermetic(),
            src.path(),
            &tmp.path().join("reference-cache"),
            &state,
            &work,
        );
        assert_status(&output, 0);
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let honest_digest = reference["output"]["digest"].clone();

    // Builder 0 of each round is a job of this daemon, the others CLIs in-process.
    let daemon = crate::daemon_fixture::Env::new();
    let mut statuses = Vec::new();
    let mut tampered = 0;
    for round in 0..ROUNDS {
        let done = AtomicBool::new(false);
        if round > 0 && round + 1 < ROUNDS {
            // Some restore of this round surely meets a tampered entry; the tamperer
            // racing the builds below adds the ones that meet it mid-flight.
            tampered += tamper_every_entry(&cache_dir);
        }
        let (outputs, round_tampered) = std::thread::scope(|scope| {
            let (done, cache_dir, state) = (&done, &cache_dir, &state);
            let builders: Vec<_> = (0..BUILDERS)
                .map(|builder| {
                    let work: PathBuf = tmp.path().join(format!("r{round}-b{builder}"));
                    std::fs::create_dir(&work).unwrap();
                    let (src, daemon) = (src.path(), &daemon);
                    scope.spawn(move || {
                        let hermetic = if builder == 0 {
                            daemon.hermetic()
                        } else {
                            hermetic()
                        };
                        let output = build(hermetic, src, cache_dir, state, &work);
                        (work, output)
                    })
                })
                .collect();
            // A gc that keeps everything (a 1 TiB cap), racing the stores: it may lose no
            // valid entry.
            let gcs = scope.spawn(move || {
                let mut runs = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    runs.push(cache(cache_dir, state, &["gc", "--max-size", "1TiB"]));
                }
                runs
            });
            // The last round has no tamperer: what it stores must stay.
            let tampering = round + 1 < ROUNDS;
            let tamperer = scope.spawn(move || {
                let mut tampered = 0;
                while tampering && !done.load(Ordering::Relaxed) && tampered == 0 {
                    tampered += tamper_every_entry(cache_dir);
                }
                tampered
            });
            let outputs: Vec<_> = builders.into_iter().map(|b| b.join().unwrap()).collect();
            done.store(true, Ordering::Relaxed);
            for gc in gcs.join().unwrap() {
                assert_status(&gc, 0);
            }
            (outputs, tamperer.join().unwrap())
        });
        tampered += round_tampered;
        for (work, output) in outputs {
            assert_status(&output, 0);
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(report["output"]["digest"], honest_digest, "round {round}");
            assert_eq!(
                std::fs::read_to_string(work.join("tree/out/sub/copy")).unwrap(),
                "input\n",
                "round {round}: a restored tree is not the honest one"
            );
            assert_eq!(
                std::fs::read(work.join("artifact.tar.zst")).unwrap().len() as u64,
                report["output"]["size"].as_u64().unwrap()
            );
            let status = report["cache"]["status"].as_str().unwrap().to_owned();
            if round + 1 == ROUNDS {
                assert!(status == "hit" || status == "miss", "{status}");
            }
            statuses.push(status);
        }
    }

    assert!(
        tampered > 0,
        "the tamperer never found an entry: the race was not run"
    );
    assert!(
        statuses.iter().any(|status| status == "quarantined"),
        "no restore met a tampered entry: {statuses:?}"
    );
    let events = std::fs::read_to_string(cache_dir.join("events.ndjson")).unwrap();
    for line in events.lines() {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("a torn event line {line:?}: {err}"));
        assert!(event["event"].is_string(), "{line}");
    }
    let quarantined = std::fs::read_dir(cache_dir.join("quarantine"))
        .unwrap()
        .count();
    assert_eq!(
        events.matches("\"event\":\"cache_quarantine\"").count(),
        quarantined,
        "one event per quarantined entry"
    );
    // The last round, untampered, stored the key (first writer wins) and the gcs racing
    // it, under their 1 TiB cap, took nothing.
    let scope = cache_dir.join("scopes/local");
    let entries: Vec<_> = std::fs::read_dir(&scope).unwrap().collect();
    assert_eq!(entries.len(), 1, "the valid entry was lost");
    let key = entries[0].as_ref().unwrap().file_name();
    let verified = cache(&cache_dir, &state, &["verify", key.to_str().unwrap()]);
    assert_status(&verified, 0);
}
