use hermetic_contract::report::AttackOutcome;

use crate::support::stdout;
use crate::{assert_passed, tree, Deployment};

/// On a correct cache the drill refuses every local attack of the catalog (at least the
/// 25 the issue asks for), finds nothing wrong with the deployment, and leaves the real
/// store byte for byte as it was and no scratch behind.
#[test]
fn the_drill_passes_on_a_correct_local_cache_and_leaves_it_untouched() {
    let deployment = Deployment::build();
    let before = tree(&deployment.cache_dir());
    let (output, report) = deployment.drill(&[]);
    assert_passed(&output, &report, false, false);
    assert!(report.attacks.len() >= 25, "{}", report.attacks.len());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(
        tree(&deployment.cache_dir()),
        before,
        "the real store changed"
    );
    deployment.assert_no_scratch_left();
    let line = stdout(&output);
    assert!(
        line.contains("refused  local  replayed-under-another-key"),
        "{line}"
    );
    // Kept in the daemon's history: the poison freshness gate opens.
    let gate = deployment
        .daemon
        .hermetic()
        .args([
            "drill",
            "status",
            "--kind",
            "poison",
            "--max-age",
            "1h",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(gate.status.code(), Some(0), "{}", stdout(&gate));
    let gate: serde_json::Value = serde_json::from_slice(&gate.stdout).unwrap();
    assert_eq!(gate["drill"], report.id.as_str(), "{gate}");
    assert_eq!(gate["passed"], true, "{gate}");
}

/// With a cache dir everyone can write and a trusted key that is not a key, the drill
/// still refuses every attack (exit 0) and reports both findings, naming the paths.
#[test]
fn a_world_writable_cache_dir_and_an_unreadable_trusted_key_are_findings() {
    use std::os::unix::fs::PermissionsExt;
    let deployment = Deployment::build();
    let cache = deployment.cache_dir();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let garbage = deployment.tmp.path().join("ci.pub");
    std::fs::write(&garbage, "not a public key\n").unwrap();
    let missing = deployment.tmp.path().join("gone.pub");
    let before = tree(&cache);

    let (output, report) = deployment.drill(&[
        "--trust-key",
        garbage.to_str().unwrap(),
        "--trust-key",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(report
        .attacks
        .iter()
        .all(|attack| attack.outcome == AttackOutcome::Refused));
    let found: Vec<(&str, Option<&str>)> = report
        .findings
        .iter()
        .map(|finding| (finding.check.as_str(), finding.path.as_deref()))
        .collect();
    assert!(
        found.contains(&(
            "cache-dir-writable-by-others",
            Some(cache.to_str().unwrap())
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&("trusted-key-unreadable", Some(garbage.to_str().unwrap()))),
        "{found:?}"
    );
    assert!(
        found.contains(&("trusted-key-unreadable", Some(missing.to_str().unwrap()))),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");
    let writable = report
        .findings
        .iter()
        .find(|finding| finding.check == "cache-dir-writable-by-others")
        .unwrap();
    assert!(writable.detail.contains("0777"), "{}", writable.detail);
    assert!(stdout(&output).contains("finding  cache-dir-writable-by-others"));
    assert_eq!(tree(&cache), before, "the real store changed");
    deployment.assert_no_scratch_left();
}
