use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::wait_for;

/// A daemon configuration in a temp dir; every `hermetic` it makes uses it. On drop,
/// every daemon serving it is killed (SIGKILL: the sandboxes die with their helpers).
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("hermetic-daemon-test")
            .tempdir()
            .unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 1\nsocket = \"{0}/run/hermeticd.sock\"\nstate_dir = \"{0}/state\"\nmax_concurrent = 2\nshutdown_timeout_secs = 5\n",
                dir.path().display()
            ),
        )
        .unwrap();
        Env { dir, config }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/hermeticd.sock")
    }

    /// `hermetic` through this env's daemon.
    pub fn hermetic(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hermetic"));
        command
            .env("HERMETIC_CONFIG", &self.config)
            .env_remove("HERMETIC_NO_DAEMON")
            .stdin(Stdio::null());
        command
    }

    /// `hermetic --no-daemon`, with the same environment otherwise.
    pub fn in_process(&self) -> Command {
        let mut command = self.hermetic();
        command.arg("--no-daemon");
        command
    }

    pub fn output(&self, command: &mut Command) -> Output {
        command.output().expect("spawn hermetic")
    }

    /// The live daemons serving this env (processes `hermetic daemon serve` whose
    /// environment names this config).
    pub fn daemon_pids(&self) -> Vec<i32> {
        let wanted = format!("HERMETIC_CONFIG={}", self.config.display());
        processes()
            .into_iter()
            .filter(|(pid, argv)| {
                argv.get(1..3) == Some(&["daemon".to_owned(), "serve".to_owned()][..])
                    && std::fs::read(format!("/proc/{pid}/environ"))
                        .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == wanted.as_bytes()))
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    /// The one daemon serving this env, once the losers of an autostart race are gone.
    pub fn the_daemon(&self) -> i32 {
        let pids = wait_for(|| {
            let pids = self.daemon_pids();
            (pids.len() == 1).then_some(pids)
        })
        .unwrap_or_else(|| panic!("not exactly one daemon: {:?}", self.daemon_pids()));
        pids[0]
    }

    /// A `hermetic run` of `sh` that prints "ready" and then sleeps, once it has printed it:
    /// a job known to be running.
    pub fn running_sleeper(&self, src: &Path) -> Child {
        let mut client = spawn(
            self.hermetic()
                .args(["run", "--src"])
                .arg(src)
                .args(["--", "sh", "-c", "echo ready; exec sleep 60"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        read_until_line(&mut stdout_of(&mut client), "ready");
        client
    }

    /// The id of the job the daemon is running.
    pub fn running_job(&self) -> u64 {
        let output = self.output(self.hermetic().args(["jobs", "--json"]));
        super::support::assert_status(&output, 0);
        let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|job| job["state"] == "running")
            .and_then(|job| job["id"].as_u64())
            .unwrap_or_else(|| panic!("no running job: {list}"))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for pid in self.daemon_pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let gone = wait_for(|| self.daemon_pids().is_empty().then_some(()));
        if gone.is_none() && !std::thread::panicking() {
            panic!("daemons survived SIGKILL: {:?}", self.daemon_pids());
        }
    }
}

/// Every live process: (pid, argv).
pub fn processes() -> Vec<(i32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| is_alive(*pid))
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv = cmdline
                .split(|&b| b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            Some((pid, argv))
        })
        .collect()
}

/// Not exited (a zombie only waits to be reaped).
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Processes whose argv contains `marker`.
pub fn with_marker(marker: &str) -> Vec<(i32, Vec<String>)> {
    processes()
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|arg| arg.contains(marker)))
        .collect()
}

/// A directory outside /tmp (the sandbox mounts its own /tmp) holding a fifo `gate`, and
/// a copy of the default profile that binds it, so a build can block on the gate until
/// the test opens it.
pub struct Gate {
    pub dir: tempfile::TempDir,
    pub profile: PathBuf,
}

impl Gate {
    pub fn new() -> Gate {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("hermetic-gate")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("gate"),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
        )
        .unwrap();
        let default = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../profiles/default.toml"
        ))
        .unwrap();
        let profile_text = default.replacen(
            "binds = [",
            &format!("binds = [\"{}\", ", dir.path().display()),
            1,
        );
        let profile = dir.path().join("gated.toml");
        std::fs::write(&profile, profile_text).unwrap();
        Gate { dir, profile }
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.path().join("gate")
    }

    /// Lets the build blocked in `cat gate` go on: opening the write end completes its
    /// open, and closing it gives it end-of-file.
    pub fn open(&self) {
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(self.fifo())
                .unwrap(),
        );
    }
}

/// Reads lines from `reader` until one equals `line`; returns everything read.
pub fn read_until_line(reader: &mut BufReader<impl Read>, line: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut next = String::new();
        let n = reader.read_line(&mut next).unwrap();
        assert!(n > 0, "the stream ended before {line:?}; read:\n{seen}");
        seen.push_str(&next);
        if next.trim_end() == line {
            return seen;
        }
    }
}

/// A spawned `hermetic` with its stdout or stderr piped.
pub fn spawn(command: &mut Command) -> Child {
    command.spawn().expect("spawn hermetic")
}

pub fn stdout_of(child: &mut Child) -> BufReader<ChildStdout> {
    BufReader::new(child.stdout.take().unwrap())
}
