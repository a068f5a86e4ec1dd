//! The daemon in-process on a temporary socket, and a small HTTP client for it.
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::UnixStream;

use hermetic_daemon::config::Config;
use hermetic_daemon::server::{self, ServeError};

/// The test binary is also the sandbox helper: `launch::run` re-execs /proc/self/exe.
/// This runs before `main` (after std has captured the arguments), as `hermeticd`'s
/// first statement does.
#[used]
#[link_section = ".init_array"]
static RUN_HELPER_IF_REQUESTED: extern "C" fn() = run_helper_if_requested;

extern "C" fn run_helper_if_requested() {
    hermetic::sandbox::run_helper_if_requested();
}

/// Bounded polling: how many times, and how far apart, a condition is checked.
pub const POLL_ATTEMPTS: u32 = 3000;
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub src: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
}

impl Daemon {
    /// A daemon with the test defaults (`max_concurrent = 2`, `queue_limit = 64`),
    /// adjusted by `edit`.
    pub async fn start(edit: impl FnOnce(&mut Config)) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("hermeticd-test")
            .tempdir()
            .unwrap();
        Daemon::start_in(dir, edit).await
    }

    /// A daemon on the socket and state directory in `dir` (another daemon's, after
    /// `stop`: a restart).
    pub async fn start_in(dir: tempfile::TempDir, edit: impl FnOnce(&mut Config)) -> Daemon {
        let socket = dir.path().join("run/hermeticd.sock");
        let state_dir = dir.path().join("state");
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let mut config = Config::parse(
            Path::new("test.toml"),
            &format!(
                "version = 1\nsocket = {:?}\nstate_dir = {:?}\nmax_concurrent = 2\n",
                socket, state_dir
            ),
        )
        .unwrap();
        edit(&mut config);
        let listener = server::bind_socket(&config.socket, config.socket_gid).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Daemon {
            dir,
            socket,
            state_dir,
            src,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful shutdown; returns once every job has ended, with the daemon's directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, empty)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = request(&self.socket, "GET", path, None).await;
        (status, parse(&body))
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let (status, body) = request(&self.socket, "POST", path, Some(body.as_bytes())).await;
        (status, parse(&body))
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let (status, body) = request(&self.socket, "GET", path, None).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A `run` job request with the default profile and this daemon's empty source.
    pub fn run_request(&self, command: &[&str]) -> String {
        json!({
            "kind": "run",
            "profile": "default",
            "src": self.src,
            "command": command,
        })
        .to_string()
    }

    /// A `build` job request archiving `out` to `artifact`, single or dual.
    pub fn build_request(&self, artifact: &Path, single: bool, command: &[&str]) -> String {
        json!({
            "kind": "build",
            "profile": "default",
            "src": self.src,
            "outputs": ["out"],
            "artifact": artifact,
            "extract": null,
            "single": single,
            "explain": false,
            "source_date_epoch": null,
            "command": command,
        })
        .to_string()
    }

    /// Submits a run job; returns its id.
    pub async fn submit(&self, command: &[&str]) -> u64 {
        let (status, job) = self.post("/v1/jobs", &self.run_request(command)).await;
        assert_eq!(status, 201, "{job}");
        assert_eq!(job["state"], "queued", "{job}");
        job["id"].as_u64().unwrap()
    }

    /// Polls the job until `done` holds for it.
    pub async fn wait_for(&self, id: u64, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..POLL_ATTEMPTS {
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if done(&job) {
                return job;
            }
            last = job;
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        panic!("job {id} never reached the expected state: {last}");
    }

    /// Polls the job until it is in a terminal state.
    pub async fn wait_finished(&self, id: u64) -> Value {
        self.wait_for(id, |job| {
            !matches!(job["state"].as_str(), Some("queued" | "running"))
        })
        .await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if std::thread::panicking() {
            // A failed test must not hang on a job's blocking thread when its runtime
            // drops (other tests' sandboxes go too: they share the process).
            kill_every_sandbox_of_this_process();
        }
    }
}

/// SIGKILLs every sandbox helper this test process spawned, from any thread.
fn kill_every_sandbox_of_this_process() {
    let tasks = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    for task in tasks {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
        {
            let is_helper = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline.split(|&byte| byte == 0).nth(1)
                    == Some(hermetic::sandbox::helper::HELPER_ARG.as_bytes())
            });
            if is_helper {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// One request on a fresh connection.
pub async fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> (u16, Vec<u8>) {
    let response = send(socket, method, path, body).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

/// Sends a request and returns the response with its body unread (for streams).
pub async fn send(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> hyper::Response<hyper::body::Incoming> {
    let stream = UnixStream::connect(socket).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "hermeticd");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
        .unwrap();
    sender.send_request(request).await.unwrap()
}

/// Pids of the processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
        })
        .collect()
}

/// Polls until `condition` holds (bounded); false if it never did.
pub async fn eventually(condition: impl Fn() -> bool) -> bool {
    for _ in 0..POLL_ATTEMPTS {
        if condition() {
            return true;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    false
}

/// A marker unique to this test process and call, to find a job's processes in /proc.
pub fn marker(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}.{}{:04}",
        1000 + COUNTER.fetch_add(1, Ordering::Relaxed),
        std::process::id(),
        name.len()
    )
}
