//! `POST /v1/drills`, `GET /v1/drills`, and the drill gauges of `/metrics`.
use serde_json::json;

use crate::support::Daemon;

fn drill(id: &str, kind: &str, finished: &str, passed: bool, case: &str) -> String {
    json!({
        "schema": "hermetic.drill/v1",
        "kind": kind,
        "id": id,
        "runner": "runner-a",
        "started": finished,
        "finished": finished,
        "passed": passed,
        "exit_code": if passed { 0 } else { 3 },
        "cases": [{
            "name": case,
            "verdict": if passed { "reproducible" } else { "drifted" },
            "digest": "sha256:aa",
            "cache_key": format!("key-of-{case}"),
            "duration_ms": 5,
            "reason": null,
            "drifted_from": null,
        }],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn drills_are_recorded_once_listed_newest_first_and_filtered() {
    let daemon = Daemon::start(|_| {}).await;
    for body in [
        drill("d1", "determinism", "2026-12-01T00:00:00Z", true, "hello"),
        drill("d2", "determinism", "2026-12-02T00:00:00Z", false, "tool"),
        drill("p1", "poison", "2026-12-03T00:00:00Z", true, "x"),
    ] {
        let (status, answer) = daemon.post("/v1/drills", &body).await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, answer) = daemon
        .post(
            "/v1/drills",
            &drill("d1", "determinism", "2026-12-04T00:00:00Z", true, "hello"),
        )
        .await;
    assert_eq!((status, &answer["error"]["code"]), (409, &json!("exists")));
    let (status, answer) = daemon.post("/v1/drills", "{\"schema\": 1}").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("bad-request"))
    );

    let (status, list) = daemon.get("/v1/drills?kind=determinism").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["schema"], "hermetic.daemon/v1");
    let ids: Vec<&str> = list["drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d2", "d1"]);
    let (_, by_key) = daemon.get("/v1/drills?cache_key=key-of-hello").await;
    assert_eq!(by_key["drills"].as_array().unwrap().len(), 1, "{by_key}");
    assert_eq!(by_key["drills"][0]["id"], "d1");
    let (status, _) = daemon.get("/v1/drills?kind=chaos").await;
    assert_eq!(status, 400);

    let (status, metrics) = daemon.text("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "hermeticd_drill_last_passed{kind=\"determinism\"} 0\n",
        "hermeticd_drill_last_passed{kind=\"poison\"} 1\n",
        "hermeticd_drill_last_finished_timestamp_seconds{kind=\"poison\"} 1796256000\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    daemon.stop().await;
}
