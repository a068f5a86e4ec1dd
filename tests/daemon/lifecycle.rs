use std::io::{BufRead, BufReader};
use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::fixture::{is_alive, read_until_line, spawn, stdout_of, with_marker, Env, Gate};
use crate::support::{assert_status, stderr, stdout, wait_for, Source};

fn status_json(env: &Env) -> (i32, serde_json::Value) {
    let output = env.output(env.hermetic().args(["daemon", "status", "--json"]));
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!("daemon status --json: {err}\n{}", stderr(&output));
    });
    (output.status.code().unwrap(), json)
}

/// The daemon forks its sandbox helpers from a zygote of its own. One that dies costs
/// speed, not jobs: the next launch execs its helper, and the log says why.
#[test]
fn jobs_still_run_after_the_sandbox_zygote_dies() {
    let env = Env::new();
    let src = Source::new(&[]);
    let run = || {
        env.output(env.hermetic().args(["run", "--src"]).arg(src.path()).args([
            "--",
            "sh",
            "-c",
            "echo built",
        ]))
    };
    let first = run();
    assert_status(&first, 0);
    assert_eq!(stdout(&first), "built\n");
    let daemon = env.the_daemon();
    let zygotes: Vec<i32> = with_marker("__hermetic-sandbox-zygote")
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|&pid| parent_of(pid) == Some(daemon))
        .collect();
    assert_eq!(zygotes.len(), 1, "the daemon's zygotes: {zygotes:?}");
    kill(Pid::from_raw(zygotes[0]), Signal::SIGKILL).unwrap();
    wait_for(|| (!is_alive(zygotes[0])).then_some(())).expect("the zygote survived SIGKILL");

    let second = run();
    assert_status(&second, 0);
    assert_eq!(stdout(&second), "built\n");
    let log = std::fs::read_to_string(env.dir.path().join("state/hermeticd.log")).unwrap();
    assert!(log.contains("the sandbox zygote failed"), "{log}");
    assert_eq!(env.daemon_pids(), [daemon]);
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn the_first_call_starts_a_daemon_and_the_next_reuses_it() {
    let env = Env::new();
    let src = Source::new(&[]);
    let (code, status) = status_json(&env);
    assert_eq!((code, &status["running"]), (1, &false.into()), "{status}");
    assert!(!env.socket().exists());

    let output = env.output(
        env.hermetic()
            .args(["run", "--src"])
            .arg(src.path())
            .args(["--", "true"]),
    );
    assert_status(&output, 0);
    assert!(
        env.socket().exists(),
        "no socket at {}",
        env.socket().display()
    );
    let (code, status) = status_json(&env);
    assert_eq!(code, 0, "{status}");
    let pid = status["pid"].as_i64().unwrap() as i32;
    assert!(is_alive(pid));
    assert_eq!(env.daemon_pids(), [pid]);
    // Its output went to the log in the state dir, not to the first caller.
    assert_eq!(stderr(&output), "");
    assert!(env.dir.path().join("state/hermeticd.log").exists());

    let output = env.output(
        env.hermetic()
            .args(["run", "--src"])
            .arg(src.path())
            .args(["--", "true"]),
    );
    assert_status(&output, 0);
    assert_eq!(
        env.daemon_pids(),
        [pid],
        "the second call started another daemon"
    );
    let jobs = env.output(env.hermetic().args(["jobs", "--json"]));
    let jobs: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "{jobs}");
}

#[test]
fn clients_autostarting_at_once_share_one_daemon() {
    let env = Env::new();
    let src = Source::new(&[]);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            spawn(
                env.hermetic()
                    .args(["run", "--src"])
                    .arg(src.path())
                    .args(["--", "true"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    for client in clients {
        let output = client.wait_with_output().unwrap();
        assert_status(&output, 0);
    }
    let pid = env.the_daemon();
    let jobs = env.output(env.hermetic().args(["jobs", "--json"]));
    let jobs: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 4, "{jobs}");
    assert_eq!(env.daemon_pids(), [pid]);
}

#[test]
fn a_builds_log_is_streamed_while_it_runs() {
    let env = Env::new();
    let gate = Gate::new();
    let src = Source::new(&[]);
    let script = format!(
        "echo first-line; cat {} >/dev/null; echo second-line; mkdir out; echo x > out/x",
        gate.fifo().display()
    );
    let mut build = spawn(
        env.hermetic()
            .args(["build", "--single", "--profile"])
            .arg(&gate.profile)
            .arg("--src")
            .arg(src.path())
            .arg("--artifact")
            .arg(env.dir.path().join("a.tar.zst"))
            .args(["--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // The build cannot get past the gate until the test has seen its first line.
    let mut log = BufReader::new(build.stderr.take().unwrap());
    read_until_line(&mut log, "first-line");
    gate.open();
    read_until_line(&mut log, "second-line");
    let status = build.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The daemon's build cgroups (`hermetic-PID-...`), on any hierarchy.
fn build_cgroups_of(daemon: i32) -> Vec<std::path::PathBuf> {
    fn walk(
        dir: &std::path::Path,
        depth: usize,
        prefix: &str,
        found: &mut Vec<std::path::PathBuf>,
    ) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(entry.path());
            } else if depth > 0 {
                walk(&entry.path(), depth - 1, prefix, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        std::path::Path::new("/sys/fs/cgroup"),
        4,
        &format!("hermetic-{daemon}-"),
        &mut found,
    );
    found
}

/// A job's cgroup outlives its end only until its helper is reaped: the daemon removes
/// it after answering, and leaves none behind.
#[test]
fn a_jobs_cgroup_is_removed_after_the_job_ends() {
    let env = Env::new();
    let gate = Gate::new();
    let src = Source::new(&[]);
    let mut run = spawn(
        env.hermetic()
            .args(["run", "--profile"])
            .arg(&gate.profile)
            .arg("--src")
            .arg(src.path())
            .args(["--", "cat"])
            .arg(gate.fifo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let daemon = env.the_daemon();
    let during = wait_for(|| Some(build_cgroups_of(daemon)).filter(|dirs| !dirs.is_empty()))
        .expect("the running job has no cgroup (this test needs root and cgroups)");
    gate.open();
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert!(
        wait_for(|| build_cgroups_of(daemon).is_empty().then_some(())).is_some(),
        "left behind: {:?} (during the job: {during:?})",
        build_cgroups_of(daemon)
    );
}

#[test]
fn cancel_kills_the_whole_sandbox() {
    let env = Env::new();
    let src = Source::new(&[]);
    let marker = format!("{}", 4_000_000 + std::process::id());
    // A background process and a foreground one, both carrying the marker.
    let script = "sleep \"$1\" & echo ready; sleep \"$1\"; echo not-cancelled";
    let mut run = spawn(
        env.hermetic()
            .args(["run", "--src"])
            .arg(src.path())
            .args(["--", "sh", "-c", script, "sh", &marker])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = stdout_of(&mut run);
    read_until_line(&mut out, "ready");
    let running = with_marker(&marker);
    assert!(
        running.len() >= 2,
        "the build's processes are not visible: {running:?}"
    );

    let id = env.running_job();
    let output = env.output(env.hermetic().args(["cancel", &id.to_string()]));
    assert_status(&output, 0);
    assert!(
        stdout(&output).contains(&format!("cancelled job {id}")),
        "{}",
        stdout(&output)
    );
    // `cancel` returns once the job has ended: nothing of the sandbox is left.
    assert_eq!(with_marker(&marker), []);

    let mut rest = String::new();
    for line in out.lines() {
        rest.push_str(&line.unwrap());
    }
    let output = run.wait_with_output().unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(!rest.contains("not-cancelled"));
    assert!(
        stderr(&output).contains(&format!("job {id} was cancelled")),
        "{}",
        stderr(&output)
    );
    let jobs = env.output(env.hermetic().args(["jobs", "--json"]));
    let jobs: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(jobs["jobs"][0]["state"], "cancelled");
}

#[test]
fn interrupting_the_client_cancels_its_job() {
    let env = Env::new();
    let src = Source::new(&[]);
    let marker = format!("{}", 5_000_000 + std::process::id());
    let mut run = spawn(
        env.hermetic()
            .args(["run", "--src"])
            .arg(src.path())
            .args(["--", "sh", "-c", "echo ready; sleep \"$1\"", "sh", &marker])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = stdout_of(&mut run);
    read_until_line(&mut out, "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = run.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    // The client returned after asking for the cancel; the kill itself is the daemon's.
    assert!(
        wait_for(|| with_marker(&marker).is_empty().then_some(())).is_some(),
        "the job outlived its interrupted client: {:?}",
        with_marker(&marker)
    );
}

#[test]
fn daemon_stop_stops_it() {
    let env = Env::new();
    let src = Source::new(&[]);
    let output = env.output(
        env.hermetic()
            .args(["run", "--src"])
            .arg(src.path())
            .args(["--", "true"]),
    );
    assert_status(&output, 0);
    let pid = env.the_daemon();

    let output = env.output(env.hermetic().args(["daemon", "stop"]));
    assert_status(&output, 0);
    assert!(
        stdout(&output).starts_with(&format!("stopped the daemon (pid {pid})")),
        "{}",
        stdout(&output)
    );
    assert!(!is_alive(pid));
    assert!(!env.socket().exists(), "the socket was left behind");
    let (code, status) = status_json(&env);
    assert_eq!((code, &status["running"]), (1, &false.into()));

    let output = env.output(env.hermetic().args(["daemon", "stop"]));
    assert_status(&output, 0);
    assert!(
        stdout(&output).contains("nothing to stop"),
        "{}",
        stdout(&output)
    );
}

/// `cancel --json` prints the cancelled job's record and `daemon stop --json` what it did.
#[test]
fn cancel_and_daemon_stop_print_json() {
    let env = Env::new();
    let src = Source::new(&[]);
    let mut run = env.running_sleeper(src.path());
    let id = env.running_job();
    let output = env.output(env.hermetic().args(["cancel", &id.to_string(), "--json"]));
    assert_status(&output, 0);
    let job: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        (&job["id"], &job["state"]),
        (&id.into(), &"cancelled".into()),
        "{job}"
    );
    assert_eq!(job["schema"], "hermetic.daemon/v1");
    let _ = run.wait();

    let pid = env.the_daemon();
    let output = env.output(env.hermetic().args(["daemon", "stop", "--json"]));
    assert_status(&output, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["stopped"], true, "{report}");
    assert_eq!(report["pid"], pid, "{report}");
    assert!(!is_alive(pid));
    let output = env.output(env.hermetic().args(["daemon", "stop", "--json"]));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        (&report["stopped"], &report["was_running"]),
        (&false.into(), &false.into())
    );
}

#[test]
fn logs_and_jobs_show_a_finished_job() {
    let env = Env::new();
    let src = Source::new(&[]);
    let output = env.output(env.hermetic().args(["run", "--src"]).arg(src.path()).args([
        "--",
        "sh",
        "-c",
        "echo one; echo two >&2; exit 4",
    ]));
    assert_status(&output, 4);
    let logs = env.output(env.hermetic().args(["logs", "1"]));
    assert_status(&logs, 0);
    assert_eq!(stdout(&logs), "one\ntwo\n");
    let logs = env.output(env.hermetic().args(["logs", "1", "--follow", "--json"]));
    assert_status(&logs, 0);
    let lines: Vec<serde_json::Value> = stdout(&logs)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let chunks: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|line| Some((line["stream"].as_str()?, line["data"].as_str()?)))
        .filter(|(stream, _)| *stream != "daemon")
        .collect();
    assert_eq!(chunks, [("stdout", "one\n"), ("stderr", "two\n")]);
    let last = lines.last().unwrap();
    assert_eq!(last["job"]["id"], 1, "{last}");
    assert_eq!(last["job"]["exit_code"], 4, "{last}");
    let jobs = env.output(env.hermetic().arg("jobs"));
    assert_status(&jobs, 0);
    let line = stdout(&jobs).lines().nth(1).unwrap_or_default().to_owned();
    for field in ["1", "failed", "run", "exited", "4", "sh -c echo one"] {
        assert!(line.contains(field), "{field:?} missing from {line:?}");
    }
    let missing = env.output(env.hermetic().args(["logs", "99"]));
    assert_status(&missing, 2);
    let missing = env.output(env.hermetic().args(["cancel", "1"]));
    assert_status(&missing, 2);
}

/// The helper and init of a daemon job hold no copy of the build's output pipes (the zygote
/// received them at numbers the helper does not use), so the log relay sees their end when
/// the build's processes are gone. Seen from the host while the build runs.
#[test]
fn a_jobs_helper_and_init_hold_no_copy_of_the_builds_output() {
    let env = Env::new();
    let src = Source::new(&[]);
    let mut client = env.running_sleeper(src.path());
    let daemon = env.the_daemon();
    let descriptors = |pid: i32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                    .map(|target| target.display().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let helper = crate::support::descendants(daemon as u32)
        .into_iter()
        .map(|pid| pid as i32)
        .find(|&pid| {
            parent_of(pid) == Some(daemon)
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "hermetic-helper")
        })
        .expect("the job's helper");
    let init = crate::support::descendants(helper as u32)[0] as i32;
    let build = crate::support::descendants(init as u32)[0] as i32;
    let output_pipes: Vec<String> = descriptors(build)
        .into_iter()
        .filter(|target| target.starts_with("pipe:"))
        .collect();
    // Init lets go of its copy right after the build has started (it is suspended until
    // the build execs), so the build may print before init has: wait for that, bounded.
    let holds_none = |fds: &Vec<String>| !output_pipes.iter().any(|pipe| fds.contains(pipe));
    let snapshot = || (descriptors(helper), descriptors(init));
    let (helper_fds, init_fds) = wait_for(|| {
        Some(snapshot())
            .filter(|(helper_fds, init_fds)| holds_none(helper_fds) && holds_none(init_fds))
    })
    .unwrap_or_else(snapshot);
    client.kill().unwrap();
    client.wait().unwrap();
    assert_eq!(output_pipes.len(), 2, "the build's: {output_pipes:?}");
    for pipe in &output_pipes {
        assert!(!helper_fds.contains(pipe), "helper: {helper_fds:?}");
        assert!(!init_fds.contains(pipe), "init: {init_fds:?}");
    }
}
