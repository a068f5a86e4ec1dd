//! Failed builds: the verdict is "failed" (exit 1) with both runs' statuses, no archive is
//! kept, and a build that fails in only one run says so.
use crate::harness::Build;

#[test]
fn fails_everywhere() {
    let dual = Build::new("fails_everywhere").run();
    dual.assert_verdict("failed", 1);
    assert_eq!(
        dual.run_names(),
        ["a", "b"],
        "no noise pass after a failure"
    );
    assert_eq!(dual.exit_statuses(), [Some(1), Some(1)]);
    let error = dual.report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("run A: the build command exited with status 1")
            && error.contains("run B: the build command exited with status 1")
            && !error.contains("only one run"),
        "{}",
        dual.context()
    );
    assert!(dual.report.get("output").is_none());
    assert!(dual.report.get("differences").is_none());
    assert!(!dual.artifact.exists());
    assert!(
        dual.artifact_dir_entries().is_empty(),
        "partial archives left behind"
    );
    // Run a's log is streamed; run b's is shown after the failure.
    assert!(dual.stderr.contains("error: missing dependency"));
    assert!(
        dual.stderr.contains("output of run B"),
        "{}",
        dual.context()
    );
}

#[test]
fn fails_when_varied() {
    let dual = Build::new("fails_when_varied").run();
    dual.assert_verdict("failed", 1);
    assert_eq!(dual.run_names(), ["a", "b"]);
    assert_eq!(dual.exit_statuses(), [Some(0), Some(1)]);
    let error = dual.report["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("only one run failed")
            && error.contains("run A: succeeded")
            && error.contains("run B: the build command exited with status 1"),
        "{}",
        dual.context()
    );
    assert!(dual.runs()[0]["output_digest"].is_object());
    assert!(dual.runs()[1].get("output_digest").is_none());
    assert!(!dual.artifact.exists());
    assert!(
        dual.artifact_dir_entries().is_empty(),
        "partial archives left behind"
    );
    assert!(
        dual.stderr.contains("error: unexpected pid"),
        "{}",
        dual.context()
    );
}
