use std::time::{Duration, SystemTime};

use hermetic::timestamp::rfc3339;

use crate::fixture::Env;
use crate::plan::record;
use crate::support::{assert_status, stdout};

fn report(id: &str, kind: &str, finished: SystemTime, passed: bool) -> serde_json::Value {
    serde_json::json!({
        "schema": "hermetic.drill/v1",
        "kind": kind,
        "id": id,
        "runner": "runner-a",
        "started": rfc3339(finished - Duration::from_secs(60)),
        "finished": rfc3339(finished),
        "passed": passed,
        "exit_code": if passed { 0 } else { 3 },
        "cases": [],
    })
}

fn status(env: &Env, args: &[&str]) -> (i32, String, serde_json::Value) {
    let line = env.output(env.hermetic().args(["drill", "status"]).args(args));
    let json = env.output(
        env.hermetic()
            .args(["drill", "status", "--json"])
            .args(args),
    );
    assert_eq!(line.status.code(), json.status.code());
    (
        line.status.code().unwrap(),
        stdout(&line),
        serde_json::from_slice(&json.stdout).unwrap(),
    )
}

#[test]
fn without_any_drill_the_gate_is_closed() {
    let env = Env::new();
    let (code, line, json) = status(&env, &["--max-age", "7d"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("no determinism drill recorded"), "{line}");
    assert_eq!(json["fresh"], false);
    assert!(json.get("age_secs").is_none(), "{json}");
}

#[test]
fn a_recent_passed_drill_opens_the_gate_and_an_old_or_failed_one_closes_it() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(30 * 86_400);
    record(&env, dir.path(), &report("old", "determinism", old, true));
    let (code, line, json) = status(&env, &["--max-age", "7d"]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("stale") && line.contains("old") && line.contains("older than 7d"),
        "{line}"
    );
    assert_eq!(
        (&json["fresh"], &json["passed"]),
        (&false.into(), &true.into())
    );
    // The same drill is fresh to a gate that allows its age.
    let (code, line, _) = status(&env, &["--max-age", "60d"]);
    assert_eq!(code, 0, "{line}");

    record(
        &env,
        dir.path(),
        &report("recent", "determinism", now, true),
    );
    let (code, line, json) = status(&env, &["--max-age", "7d"]);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.contains("fresh") && line.contains("recent") && line.contains("passed"),
        "{line}"
    );
    assert_eq!(json["drill"], "recent");

    // Each kind has its own gate.
    let (code, line, _) = status(&env, &["--max-age", "7d", "--kind", "poison"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("no poison drill recorded"), "{line}");
    record(&env, dir.path(), &report("poisoned", "poison", now, false));
    let (code, line, _) = status(&env, &["--max-age", "7d", "--kind", "poison"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("stale") && line.contains("failed"), "{line}");

    // A drill id is recorded once.
    let path = dir.path().join("again.json");
    std::fs::write(
        &path,
        report("recent", "determinism", now, false).to_string(),
    )
    .unwrap();
    let again = env.output(env.hermetic().args(["drill", "record"]).arg(&path));
    assert_status(&again, 2);
}
