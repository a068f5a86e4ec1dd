use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::fixture::Env;
use crate::support::{assert_status, stderr, stdout, Source};

/// Runs `args` through the daemon and in process; both must give the same stdout,
/// stderr and status. Returns the daemon's output.
fn same_both_ways(env: &Env, args: &[&str]) -> Output {
    let with = |mut command: Command| env.output(command.args(args));
    let via_daemon = with(env.hermetic());
    let in_process = with(env.in_process());
    assert_eq!(
        (
            stdout(&via_daemon),
            stderr(&via_daemon),
            via_daemon.status.code()
        ),
        (
            stdout(&in_process),
            stderr(&in_process),
            in_process.status.code()
        ),
        "`hermetic {}`: through the daemon (left) and in process (right) differ",
        args.join(" ")
    );
    via_daemon
}

#[test]
fn run_gives_the_same_streams_and_exit_codes_both_ways() {
    let env = Env::new();
    let src = Source::new(&[("data.txt", "payload\n"), ("not-executable", "#!/bin/sh\n")]);
    std::fs::set_permissions(
        src.join("not-executable"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let src = src.path().to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (
            &["sh", "-c", "cat data.txt; echo to-stderr >&2; echo more"],
            0,
        ),
        (&["sh", "-c", "echo partial; exit 3"], 3),
        (&["sh", "-c", "kill -9 $$"], 137),
        (&["no-such-command"], 127),
        (&["./not-executable"], 126),
    ];
    for (command, code) in cases {
        let mut args = vec!["run", "--src", src, "--"];
        args.extend_from_slice(command);
        let output = same_both_ways(&env, &args);
        assert_status(&output, *code);
    }
    let output = same_both_ways(&env, &["run", "--profile", "no-such-profile", "--", "true"]);
    assert_status(&output, 125);
}

#[test]
fn run_keeps_stdout_and_stderr_apart_through_the_daemon() {
    let env = Env::new();
    let src = Source::new(&[]);
    // Large enough to cross many log chunks and frames, interleaved on both streams.
    let script = "i=0; while [ $i -lt 3000 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done";
    let output = env.output(
        env.hermetic()
            .args(["run", "--src"])
            .arg(src.path())
            .args(["--", "sh", "-c", script]),
    );
    assert_status(&output, 0);
    let expected =
        |prefix: &str| -> String { (0..3000).map(|i| format!("{prefix}-{i}\n")).collect() };
    assert!(
        stdout(&output) == expected("out"),
        "stdout is not the command's stdout"
    );
    assert!(
        stderr(&output) == expected("err"),
        "stderr is not the command's stderr"
    );
}

#[test]
fn build_gives_the_same_report_archive_and_exit_code_both_ways() {
    let env = Env::new();
    let src = Source::new(&[("hello.txt", "hello\n")]);
    let artifact = env.dir.path().join("out.tar.zst");
    let build = [
        "build",
        "--single",
        "--src",
        src.path().to_str().unwrap(),
        "--artifact",
        artifact.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "mkdir -p out && cp hello.txt out/ && echo built-it >&2",
    ];
    let via_daemon = env.output(env.hermetic().args(build));
    assert_status(&via_daemon, 0);
    let daemon_archive = std::fs::read(&artifact).unwrap();
    std::fs::remove_file(&artifact).unwrap();
    let in_process = env.output(env.in_process().args(build));
    assert_status(&in_process, 0);
    assert_eq!(stdout(&via_daemon), stdout(&in_process));
    assert_eq!(stderr(&via_daemon), stderr(&in_process));
    assert!(
        stdout(&via_daemon).contains("sha256 "),
        "{}",
        stdout(&via_daemon)
    );
    assert_eq!(std::fs::read(&artifact).unwrap(), daemon_archive);

    // --json: the same report, but for what differs between any two runs.
    let json = |command: Command| -> serde_json::Value {
        std::fs::remove_file(&artifact).ok();
        let mut command = command;
        let output = env.output(command.arg("--json").args(&build[1..]));
        assert_status(&output, 0);
        let mut report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for run in report["runs"].as_array_mut().unwrap() {
            run["duration_ms"] = 0.into();
            run["setup_ms"] = 0.into();
        }
        report["sandbox"]["cgroup"] = serde_json::Value::Null;
        report
    };
    let mut daemon_command = env.hermetic();
    daemon_command.arg("build");
    let mut process_command = env.in_process();
    process_command.arg("build");
    assert_eq!(json(daemon_command), json(process_command));
}

#[test]
fn build_exit_codes_are_the_same_both_ways() {
    let env = Env::new();
    let src = Source::new(&[]);
    let src = src.path().to_str().unwrap();
    let artifact = env.dir.path().join("a.tar.zst");
    let artifact = artifact.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        // The command fails.
        (&["--single", "--", "sh", "-c", "exit 7"], 1),
        // A usage error: an output path outside the build dir.
        (&["--single", "--output", "../escape", "--", "true"], 2),
        // The outputs differ between the canonical and the varied run.
        (
            &[
                "--",
                "sh",
                "-c",
                "mkdir out && od -An -tx1 -N16 /dev/urandom > out/id",
            ],
            3,
        ),
    ];
    for (extra, code) in cases {
        let mut args = vec!["build", "--src", src, "--artifact", artifact];
        args.extend_from_slice(extra);
        let via_daemon = env.output(env.hermetic().args(&args));
        let in_process = env.output(env.in_process().args(&args));
        assert_status(&via_daemon, *code);
        assert_status(&in_process, *code);
        assert_eq!(stdout(&via_daemon), stdout(&in_process), "{args:?}");
    }
}

#[test]
fn provenance_is_signed_from_the_daemons_report() {
    let env = Env::new();
    let keys = env.dir.path().join("key");
    let output = env.output(
        env.hermetic()
            .env("HERMETIC_PASSWORD", "test")
            .args(["keygen", "--output-key-prefix"])
            .arg(&keys),
    );
    assert_status(&output, 0);
    let src = Source::new(&[("a", "a\n")]);
    let artifact = env.dir.path().join("a.tar.zst");
    let bundle = env.dir.path().join("a.intoto.json");
    let output = env.output(
        env.hermetic()
            .env("HERMETIC_PASSWORD", "test")
            .args(["build", "--src"])
            .arg(src.path())
            .arg("--artifact")
            .arg(&artifact)
            .arg("--provenance")
            .arg(&bundle)
            .arg("--sign-key")
            .arg(keys.with_extension("key"))
            .args(["--", "sh", "-c", "mkdir out && cp a out/"]),
    );
    assert_status(&output, 0);
    let output = env.output(
        env.hermetic()
            .args(["verify", "--bundle"])
            .arg(&bundle)
            .arg("--artifact")
            .arg(&artifact)
            .arg("--trust-key")
            .arg(keys.with_extension("pub")),
    );
    assert_status(&output, 0);
    // It did go through the daemon.
    let jobs = env.output(env.hermetic().args(["jobs", "--json"]));
    let jobs: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(jobs["jobs"][0]["kind"], "build");
    assert_eq!(jobs["jobs"][0]["verdict"], "reproducible");
}
