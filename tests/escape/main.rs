//! The escape suite: one test per row of the escape / leak catalog in
//! docs/sandbox-threats.md §5 (N network, F filesystem, P process and kernel surface,
//! R resources, I information leaks). Every test runs real code inside `hermetic run` and
//! asserts the specific way the attempt is stopped (an errno, a pinned value, a status).
//!
//! Most probes are small python scripts: `probes/lib.py` is copied next to them into the
//! build dir and prints one `LABEL: ok|ERRNO` line per attempt, which [`expect`] matches.
//! A test whose attempt succeeds would be marked `#[ignore = "hole: ..."]` until the hole is
//! fixed; none is today.
#[path = "../support/mod.rs"]
mod support;

/// Attacks the kernel's defaults would stop too, shown stopped by the named control alone.
mod controls;
/// F1-F15: writes outside the build dir, host secrets, /proc of others, outputs with
/// symlinks, hardlinks, renames, mounts, chroot, handles, devices, sysctls, setuid, FUSE,
/// memfd.
mod filesystem;
/// I1-I12: environment, supervisor /proc, hostname, CPU count, machine ids, users and
/// pids, inherited fds, host paths, uptime, kernel info, locale/umask, the terminal.
mod leaks;
/// N1-N14: egress to host listeners, the internet, DNS, vsock and rare families, netlink,
/// unix sockets, and two builds trying to talk to each other.
mod network;
/// P1-P17: ptrace, signals, setuid binaries, nested namespaces, keyrings, bpf, perf,
/// userfaultfd, io_uring, TIOCSTI, personality, modules, clocks, setns, SysV IPC, other
/// syscall ABIs, reboot and friends.
mod process;
/// R1-R8: fork bomb, memory, disk, timeout, orphans, CPU, descriptors, namespace churn.
mod resources;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{assert_status, run_in, stderr, stdout, Source};

/// The interpreter the probes run with (inside the sandbox; also present on the host).
pub const PYTHON: &str = "/usr/bin/python3";
const LIB_PY: &str = include_str!("probes/lib.py");

/// A source dir with `lib.py`, `probe.py` (the script) and `extra` files.
pub fn probe_source(script: &str, extra: &[(&str, &str)]) -> Source {
    let mut files = vec![("lib.py", LIB_PY), ("probe.py", script)];
    files.extend_from_slice(extra);
    Source::new(&files)
}

/// Runs the python `script` in the default sandbox.
pub fn probe(script: &str) -> Output {
    probe_with(&[], script, &[])
}

/// Runs the python `script` in the sandbox with extra `hermetic run` arguments (e.g.
/// `--profile FILE`) and `args` as its sys.argv[1..].
pub fn probe_with(hermetic_args: &[&str], script: &str, args: &[&str]) -> Output {
    let src = probe_source(script, &[]);
    run_probe(&src, hermetic_args, args)
}

/// Runs `probe.py` of an existing probe source.
pub fn run_probe(src: &Source, hermetic_args: &[&str], args: &[&str]) -> Output {
    let mut command = vec![PYTHON, "probe.py"];
    command.extend_from_slice(args);
    run_in(src, hermetic_args, &command)
}

/// The outcome `lib.py` printed for `label` (`ok`, an errno name, ...).
pub fn outcome(output: &Output, label: &str) -> Option<String> {
    let prefix = format!("{label}: ");
    stdout(output)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
}

/// Asserts that the probe exited 0 and printed `label: outcome` for every pair.
pub fn expect(output: &Output, expected: &[(&str, &str)]) {
    assert_status(output, 0);
    let mut wrong = Vec::new();
    for (label, want) in expected {
        let got = outcome(output, label);
        if got.as_deref() != Some(*want) {
            wrong.push(format!("{label}: expected {want}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        wrong.join("\n"),
        stdout(output),
        stderr(output)
    );
}

/// Asserts that `haystack` does not contain `needle`, showing the probe's output if it does.
pub fn assert_absent(output: &Output, needle: &str) {
    for (name, text) in [("stdout", stdout(output)), ("stderr", stderr(output))] {
        assert!(
            !text.contains(needle),
            "`{needle}` leaked into the build's {name}:\n{text}"
        );
    }
}

/// A marker no other test or process uses.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "hermetic-escape-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A number no other test uses, for markers that must be numeric (e.g. a sleep duration).
pub fn unique_digits() -> String {
    unique("n").chars().filter(char::is_ascii_digit).collect()
}

/// Host processes whose command line contains `marker`.
pub fn host_processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
    }
    found
}

/// Host processes with an argv element equal to `arg`.
pub fn host_processes_with_arg(arg: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if cmdline.split(|&b| b == 0).any(|a| a == arg.as_bytes()) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// A profile file derived from profiles/default.toml with some `key = value` lines
/// replaced; removed on drop.
pub struct CustomProfile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl CustomProfile {
    /// `edits` are (key, TOML value) pairs; each key must occur exactly once in the file.
    pub fn new(base: &str, edits: &[(&str, &str)]) -> CustomProfile {
        let base_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../profiles")
            .join(format!("{base}.toml"));
        let mut text = std::fs::read_to_string(&base_path).expect("read the base profile");
        for (key, value) in edits {
            let prefix = format!("{key} =");
            let matches = text
                .lines()
                .filter(|line| line.starts_with(&prefix))
                .count();
            assert_eq!(
                matches,
                1,
                "`{key}` must occur exactly once in {}",
                base_path.display()
            );
            text = text
                .lines()
                .map(|line| {
                    if line.starts_with(&prefix) {
                        format!("{key} = {value}")
                    } else {
                        line.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            text.push('\n');
        }
        let dir = tempfile::Builder::new()
            .prefix("hermetic-escape-profile")
            .tempdir()
            .unwrap();
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, text).unwrap();
        CustomProfile { _dir: dir, path }
    }

    pub fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// `["--profile", path]` for `run_in`.
    pub fn args(&self) -> [&str; 2] {
        ["--profile", self.path()]
    }
}
