//! A registry that is down, failing or hanging never fails or hangs a build: each build
//! below runs uncached (exit 0), reports `cache.remote.status: "unavailable"` with a
//! reason, and finishes within a generous bound given `--cache-remote-timeout 1` (the
//! bound only shows that nothing hangs; the builds themselves take a few seconds).
use std::time::Duration;

use super::net::{BlackHole, Reply, Scripted};
use super::registry::RegistryServer;
use super::{remote_url, source, Built, Fleet, Keys, Runner};

const NO_HANG: Duration = Duration::from_secs(30);

/// A publishing build (lookup and push) against `authority`, with a 1 s timeout.
fn build_against(authority: &str) -> Built {
    let (runner, keys) = (Runner::new(), Keys::generate("ci"));
    let src = source("input\n");
    runner
        .build(&src)
        .remote(&remote_url(authority))
        .publish(&keys)
        .timeout(1)
        .run()
}

/// Uncached, not failed, not hung, and the registry's state reported.
fn assert_uncached(built: &Built) {
    built.assert_exit(0);
    assert!(
        built.elapsed < NO_HANG,
        "the build took {:?}\n{}",
        built.elapsed,
        built.describe()
    );
    assert_eq!(built.cache()["status"], "miss", "{}", built.describe());
    assert_eq!(
        built.remote()["status"],
        "unavailable",
        "{}",
        built.describe()
    );
    assert!(
        !built.remote()["reason"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "a reason\n{}",
        built.describe()
    );
    assert_eq!(built.runs(), 2, "the build ran");
    assert_eq!(built.report["verdict"], "reproducible");
    assert_eq!(built.cache()["stored"], true, "stored locally all the same");
    let push = &built.remote()["push"];
    assert!(
        push.is_null() || push == "failed",
        "nothing was pushed\n{}",
        built.describe()
    );
}

#[test]
fn a_stopped_registry_is_unavailable_and_require_cache_exits_4() {
    let mut registry = RegistryServer::start();
    registry.stop();
    let built = build_against(registry.authority());
    assert_uncached(&built);

    let (runner, keys) = (Runner::new(), Keys::generate("ci"));
    let src = source("input\n");
    let required = runner
        .build(&src)
        .remote(&remote_url(registry.authority()))
        .trust(&keys)
        .timeout(1)
        .require_cache()
        .run();
    required.assert_exit(4);
    assert_eq!(
        required.remote()["status"],
        "unavailable",
        "{}",
        required.describe()
    );
    assert_eq!(required.runs(), 0, "nothing was built");
    assert!(!required.artifact.exists());
}

#[test]
fn a_registry_answering_500_is_unavailable() {
    let server = Scripted::start(|_| {
        Reply::status(
            500,
            r#"{"errors":[{"code":"UNKNOWN","message":"scripted failure"}]}"#,
        )
    });
    assert_uncached(&build_against(&server.authority()));
    assert!(
        !server.requests().is_empty(),
        "the build asked the registry"
    );
}

#[test]
fn a_registry_answering_429_is_unavailable() {
    let server = Scripted::start(|_| {
        Reply::status(
            429,
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
        )
    });
    assert_uncached(&build_against(&server.authority()));
}

#[test]
fn a_registry_that_never_answers_does_not_hang_the_build() {
    let hole = BlackHole::start();
    assert_uncached(&build_against(&hole.authority()));
    assert!(hole.connections() > 0, "the build connected");
}

/// A registry that accepts the request, reads it and never answers (a hung backend).
#[test]
fn a_registry_that_reads_and_never_answers_does_not_hang_the_build() {
    let server = Scripted::start(|_| Reply::Silent);
    assert_uncached(&build_against(&server.authority()));
}

/// The blob download stalls halfway (the registry's answer stops coming, the
/// connection stays open): bounded by the stall timeout, an outage, the build runs.
#[test]
fn a_blob_download_that_stalls_does_not_hang_the_build() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let blob_path = format!("/blobs/{}", pushed.entry.archive);
    let half = pushed.archive.len() / 2;
    let proxy = Scripted::proxy(
        Some(fleet.registry.authority().to_owned()),
        move |request| {
            if request.method == "GET" && request.path().ends_with(&blob_path) {
                Reply::StallAfter(half)
            } else {
                Reply::Forward
            }
        },
    );
    let built = fleet
        .b
        .build(&fleet.src)
        .remote(&remote_url(&proxy.authority()))
        .trust(&fleet.keys)
        .timeout(1)
        .run();
    built.assert_exit(0);
    assert!(built.elapsed < NO_HANG, "took {:?}", built.elapsed);
    assert_eq!(
        built.remote()["status"],
        "unavailable",
        "{}",
        built.describe()
    );
    assert_eq!(built.runs(), 2, "the build ran");
    assert_eq!(built.digest(), pushed.built.digest());
    assert!(
        fleet.b.quarantined().is_empty(),
        "an outage is not the entry's fault"
    );
}

/// Reads work (the lookup misses) but every write fails: the push is reported as
/// failed, with a reason, and the build still succeeds.
#[test]
fn a_failed_push_is_reported_and_does_not_fail_the_build() {
    let registry = RegistryServer::start();
    let proxy = Scripted::proxy(
        Some(registry.authority().to_owned()),
        |request| match request.method.as_str() {
            "GET" | "HEAD" => Reply::Forward,
            _ => Reply::status(
                500,
                r#"{"errors":[{"code":"UNKNOWN","message":"storage full"}]}"#,
            ),
        },
    );
    let built = build_against(&proxy.authority());
    built.assert_exit(0);
    assert_eq!(built.remote()["status"], "miss", "{}", built.describe());
    assert_eq!(built.remote()["push"], "failed", "{}", built.describe());
    assert!(
        !built.remote()["reason"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the push failure's reason\n{}",
        built.describe()
    );
    assert_eq!(built.cache()["stored"], true);
    assert!(built.elapsed < NO_HANG, "took {:?}", built.elapsed);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|line| line.starts_with("POST ")),
        "an upload was tried: {:?}",
        proxy.requests()
    );
}

/// The timeout bounds stalls, not a download's total time: a blob that arrives slowly
/// but steadily (ten pieces, 300 ms apart: about three seconds in all, with a 2 s
/// timeout) is fetched, verified and restored.
#[test]
fn a_slow_but_steady_download_is_not_cut_off_by_the_timeout() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let blob_path = format!("/blobs/{}", pushed.entry.archive);
    let proxy = Scripted::proxy(
        Some(fleet.registry.authority().to_owned()),
        move |request| {
            if request.method == "GET" && request.path().ends_with(&blob_path) {
                Reply::Trickle(10, Duration::from_millis(300))
            } else {
                Reply::Forward
            }
        },
    );
    let built = fleet
        .b
        .build(&fleet.src)
        .remote(&remote_url(&proxy.authority()))
        .trust(&fleet.keys)
        .timeout(2)
        .run();
    built.assert_exit(0);
    assert_eq!(built.remote()["status"], "hit", "{}", built.describe());
    assert_eq!(built.runs(), 0);
    assert_eq!(std::fs::read(&built.artifact).unwrap(), pushed.archive);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|line| line.starts_with("GET ") && line.contains(&pushed.entry.archive)),
        "the blob came through the slow proxy"
    );
}
