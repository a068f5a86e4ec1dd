use std::io::BufRead;
use std::process::Stdio;

use crate::support::{descendants, hermetic, require_root, wait_for, Source};

/// `hermetic run` with a build that has started (it said so on its stdout, a pipe) and
/// sleeps until killed.
fn sleeping_build(src: &Source) -> std::process::Child {
    let mut cli = hermetic()
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", "sh", "-c", "echo ready; exec sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(cli.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    cli
}

/// The helper and init hand the build's stdio on and keep no copy: whoever reads the
/// build's output (the daemon's log relay, a CI runner's pipe) sees its end when the
/// build's processes are gone, not after init and the helper have torn the namespaces
/// down. Seen from the host, as root, while the build runs.
#[test]
fn the_helper_and_init_keep_no_copy_of_the_builds_stdio() {
    require_root("it reads the helper's and init's descriptors as the host sees them");
    let src = Source::new(&[]);
    let mut cli = sleeping_build(&src);
    let stdio = |pid: u32| -> Vec<String> {
        (0..=2)
            .map(|fd| {
                std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .map(|target| target.display().to_string())
                    .unwrap_or_else(|err| err.to_string())
            })
            .collect()
    };
    // Init lets go of its copy right after the build has started (it is suspended until
    // the build execs), so the build may print before init has: wait for that, bounded.
    let handed_on = |sandbox: &Vec<Vec<String>>| {
        sandbox.len() == 3 && sandbox[..2].iter().all(|fds| fds == &["/dev/null"; 3])
    };
    let snapshot =
        || -> Vec<Vec<String>> { descendants(cli.id()).into_iter().map(stdio).collect() };
    let sandbox = wait_for(|| Some(snapshot()).filter(handed_on)).unwrap_or_else(snapshot);
    cli.kill().unwrap();
    cli.wait().unwrap();
    // The helper, init and the build, parents first.
    assert_eq!(sandbox.len(), 3, "{sandbox:?}");
    for sandbox_process in &sandbox[..2] {
        assert_eq!(sandbox_process, &["/dev/null"; 3], "{sandbox:?}");
    }
    let build = &sandbox[2];
    assert!(build[1].starts_with("pipe:"), "{sandbox:?}");
    assert!(build[2].starts_with("pipe:"), "{sandbox:?}");
}

/// `hermetic run` forks its helper before it reads the profile, so that the namespaces are
/// built while the CLI plans. A profile that then fails to load takes the waiting helper
/// with it: the CLI kills and reaps it before exiting, and leaves nothing behind.
#[test]
fn a_helper_started_before_the_profile_is_read_dies_with_a_profile_that_fails() {
    let src = Source::new(&[]);
    let profiles = tempfile::tempdir().unwrap();
    // A fifo: the CLI's read of the profile waits until the test writes it.
    let profile = profiles.path().join("slow.toml");
    nix::unistd::mkfifo(&profile, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let cli = hermetic()
        .args(["run", "--profile"])
        .arg(&profile)
        .arg("--src")
        .arg(src.path())
        .args(["--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let user_namespace =
        |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap_or_default();
    let ours = user_namespace("self");
    let helper = wait_for(|| {
        descendants(cli.id())
            .into_iter()
            .find(|pid| user_namespace(&pid.to_string()) != ours)
    })
    .expect("while the CLI waits for its profile, a child in a user namespace of its own");

    std::fs::write(&profile, "this is not a profile").unwrap();
    let output = cli.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(125), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("slow"),
        "{output:?}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{helper}")).exists(),
        "the helper {helper} outlived the CLI"
    );
}

/// The CLI starts its helper pinned to its own CPU and moves itself to another (so the
/// helper starts at once on a warm CPU); the helper then takes back the CPU set it was
/// started with, and init inherits it: nothing of the sandbox stays pinned.
#[test]
fn the_helper_and_init_run_on_every_cpu_the_cli_may_use() {
    let cpus_allowed = |pid: &str| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .map(|list| list.trim().to_string())
            .unwrap_or_default()
    };
    let ours = cpus_allowed("self");
    assert!(
        ours.contains(['-', ',']),
        "this test needs a process allowed on more than one CPU, this one has {ours}"
    );
    let src = Source::new(&[]);
    let mut cli = sleeping_build(&src);
    let sandbox = descendants(cli.id());
    let sets: Vec<String> = sandbox[..2]
        .iter()
        .map(|pid| cpus_allowed(&pid.to_string()))
        .collect();
    let cli_set = cpus_allowed(&cli.id().to_string());
    cli.kill().unwrap();
    cli.wait().unwrap();
    assert_eq!(cli_set, ours);
    assert_eq!(sets, [ours.clone(), ours], "helper and init: {sandbox:?}");
}
