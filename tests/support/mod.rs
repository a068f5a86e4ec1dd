//! Helpers shared by the integration suites: run the real `hermetic` binary on a scratch
//! source directory and look at what came out.
#![allow(dead_code)] // each suite uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `hermetic` binary under test: cargo's, or a copy `HERMETIC_TEST_BINARY` names
/// (scripts/escape-unprivileged.sh runs the escape suite as another user, who may not be
/// able to reach the checkout).
pub fn hermetic_binary() -> PathBuf {
    std::env::var_os("HERMETIC_TEST_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hermetic")))
}

/// The `hermetic` binary under test, in-process (`HERMETIC_NO_DAEMON=1`): these suites
/// test the engine, and an autostarted daemon would outlive them. `tests/daemon/` runs
/// the same commands through the daemon and compares.
pub fn hermetic() -> Command {
    let mut command = Command::new(hermetic_binary());
    command.env("HERMETIC_NO_DAEMON", "1");
    command
}

/// A scratch source directory with the given files (path, content); removed on drop.
pub struct Source {
    pub dir: tempfile::TempDir,
}

impl Source {
    pub fn new(files: &[(&str, &str)]) -> Source {
        let dir = tempfile::Builder::new()
            .prefix("hermetic-test-src")
            .tempdir()
            .expect("create a temp dir");
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        }
        Source { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }
}

/// `hermetic run --src SRC [extra...] -- CMD...`, stdin closed, output captured.
pub fn run_in(src: &Source, extra: &[&str], command: &[&str]) -> Output {
    hermetic()
        .arg("run")
        .arg("--src")
        .arg(src.path())
        .args(extra)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .expect("spawn hermetic")
}

/// The built-in default profile's text, as `hermetic profile show default` prints it: the
/// start of a test's own profile.
pub fn default_profile_text() -> String {
    let shown = hermetic()
        .args(["profile", "show", "default"])
        .output()
        .expect("spawn hermetic");
    assert_status(&shown, 0);
    String::from_utf8(shown.stdout).expect("the profile is UTF-8")
}

/// `sh -c SCRIPT` in the sandbox with an empty source.
pub fn sh(script: &str) -> Output {
    run_in(&Source::new(&[]), &[], &["sh", "-c", script])
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Panics with both streams when the status is not `code`.
pub fn assert_status(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Tests that need root say so, and why, and fail rather than pass silently without it.
pub fn require_root(why: &str) {
    assert!(
        nix_is_root(),
        "this test needs root (CI runs as root): {why}"
    );
}

/// Tests whose builds need cgroup limits (pids, memory, CPU): root, or a caller whose own
/// cgroup is delegated to it (`scripts/escape-unprivileged.sh` runs the escape suite so).
/// They fail, saying so, elsewhere.
pub fn require_cgroups() {
    assert!(
        nix_is_root() || own_cgroup_is_delegated(),
        "this test needs root or a delegated cgroup (CI runs it both ways: as root, and \
         through scripts/escape-unprivileged.sh): its builds set cgroup limits"
    );
}

/// The caller's cgroup (its `pids` one on a v1 or hybrid host, its only one on v2) is a
/// directory the caller owns.
fn own_cgroup_is_delegated() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(cgroups) = std::fs::read_to_string("/proc/self/cgroup") else {
        return false;
    };
    let pids_v1 = cgroups.lines().find_map(|line| {
        let (_, rest) = line.split_once(':')?;
        let (controllers, path) = rest.split_once(':')?;
        controllers
            .split(',')
            .any(|c| c == "pids")
            .then(|| format!("/sys/fs/cgroup/pids{path}"))
    });
    let unified = || {
        cgroups
            .lines()
            .find_map(|line| line.strip_prefix("0::"))
            .map(|path| format!("/sys/fs/cgroup{path}"))
    };
    let Some(dir) = pids_v1.or_else(unified) else {
        return false;
    };
    let me = std::fs::metadata("/proc/self").map(|meta| meta.uid());
    std::fs::metadata(dir).is_ok_and(|meta| me.is_ok_and(|uid| meta.uid() == uid))
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Every process below `pid`, parents first.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut pending = vec![pid];
    while let Some(parent) = pending.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).unwrap();
        for task in tasks {
            let children =
                std::fs::read_to_string(task.unwrap().path().join("children")).unwrap_or_default();
            for child in children.split_whitespace() {
                let child: u32 = child.parse().unwrap();
                found.push(child);
                pending.push(child);
            }
        }
    }
    found
}

/// How long a test waits for something another process does asynchronously (a process
/// to be gone, a job to show up) before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` until it gives a value, up to `DEADLINE`. For effects another process
/// makes asynchronously (a killed process being reaped, a descriptor closed just after a
/// child started), never to order the test's own steps.
pub fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
