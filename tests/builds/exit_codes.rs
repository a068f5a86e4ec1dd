use crate::support::{assert_status, hermetic, run_in, sh, stderr, stdout, Source};

#[test]
fn run_exits_with_the_commands_status_and_streams_its_output() {
    let output = sh("echo to-stdout; echo to-stderr >&2; exit 42");
    assert_status(&output, 42);
    assert_eq!(stdout(&output), "to-stdout\n");
    assert_eq!(stderr(&output), "to-stderr\n");
}

#[test]
fn run_reports_a_signal_as_128_plus_its_number() {
    assert_status(&sh("kill -TERM $$"), 128 + 15);
}

#[test]
fn run_exits_127_when_the_command_is_not_found() {
    let output = run_in(&Source::new(&[]), &[], &["no-such-command-anywhere"]);
    assert_status(&output, 127);
    assert!(
        stderr(&output).contains("no-such-command-anywhere"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_exits_126_when_the_command_cannot_be_executed() {
    let src = Source::new(&[("not-executable", "#!/bin/sh\necho hi\n")]);
    let output = run_in(&src, &[], &["./not-executable"]);
    assert_status(&output, 126);
}

#[test]
fn run_exits_125_when_the_sandbox_cannot_be_set_up() {
    let output = run_in(
        &Source::new(&[]),
        &["--profile", "no-such-profile"],
        &["true"],
    );
    assert_status(&output, 125);
    let output = hermetic()
        .args(["run", "--src", "/nonexistent/source", "--", "true"])
        .output()
        .unwrap();
    assert_status(&output, 125);
    assert!(
        stderr(&output).contains("/nonexistent/source"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn build_exits_1_when_the_command_fails_and_reports_its_status() {
    let out = tempfile::tempdir().unwrap();
    let output = hermetic()
        .args(["build", "--single", "--json", "--src"])
        .arg(out.path())
        .arg("--artifact")
        .arg(out.path().join("a.tar.zst"))
        .args(["--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_status(&output, 1);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "failed");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["runs"][0]["exit_status"], 7);
}

#[test]
fn explain_conflicts_with_single() {
    let output = hermetic()
        .args(["build", "--single", "--explain", "--", "true"])
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(stderr(&output).contains("--explain"), "{}", stderr(&output));
}

#[test]
fn every_command_has_help_with_an_example_and_its_own_summary() {
    let mut summaries = std::collections::BTreeMap::new();
    for command in [
        &["run"][..],
        &["build"],
        &["profile"],
        &["profile", "list"],
        &["profile", "show"],
        &["profile", "check"],
        &["keygen"],
        &["verify"],
        &["cache"],
        &["cache", "ls"],
        &["cache", "show"],
        &["cache", "verify"],
        &["cache", "restore"],
        &["cache", "push"],
        &["cache", "pull"],
        &["cache", "quarantine"],
        &["cache", "quarantine", "ls"],
        &["cache", "gc"],
        &["image"],
        &["image", "pull"],
        &["image", "import"],
        &["image", "ls"],
        &["image", "verify"],
        &["image", "rm"],
        &["drill"],
        &["drill", "run"],
        &["drill", "history"],
        &["drill", "status"],
        &["drill", "record"],
        &["drill", "rebuild"],
        &["drill", "poison"],
        &["daemon"],
        &["daemon", "status"],
        &["daemon", "stop"],
        &["daemon", "serve"],
        &["jobs"],
        &["logs"],
        &["cancel"],
        &["completions"],
        &["man"],
    ] {
        let output = hermetic().args(command).arg("--help").output().unwrap();
        assert_status(&output, 0);
        let help = stdout(&output);
        assert!(
            help.contains("Example"),
            "{command:?} --help has no example"
        );
        // The first line says what this command does; a doc comment on a flattened
        // group of flags once replaced it for five commands at once.
        let summary = help.lines().next().unwrap_or_default().to_string();
        if let Some(other) = summaries.insert(summary.clone(), command) {
            panic!("{command:?} and {other:?} both begin their help with {summary:?}");
        }
    }
}
