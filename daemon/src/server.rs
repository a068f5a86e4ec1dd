//! The daemon as a library: `bind_socket` then `serve`, so that tests run it in-process
//! on a temporary socket and `hermeticd` is a thin binary around it.
use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, UnixAddr};
use tokio::net::UnixListener;

use crate::api::{self, Peer};
use crate::config::Config;
use crate::queue::Scheduler;
use crate::store::{Store, StoreError};

/// The socket's mode: the owner and the socket's group may connect; SO_PEERCRED decides
/// the rest.
pub const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("failed to create the directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another daemon is already listening on {0}")]
    SocketInUse(PathBuf),
    #[error("failed to remove the stale socket {path}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to listen on {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to set the owner and mode of the socket {path}")]
    SocketPermissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to handle {signal}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serve")]
    Serve(#[source] std::io::Error),
    #[error("socket activation: {0}")]
    Activation(String),
}

/// Held for as long as a daemon serves its socket.
pub struct SocketLock {
    _lock: Flock<File>,
}

/// Like `bind_socket`, but first takes an exclusive lock next to the socket
/// (`hermeticd.lock`): of two daemons started at once (two CLIs autostarting one, say),
/// one gets the socket and the other fails with `SocketInUse`, instead of the second
/// replacing the first's socket as a stale one.
pub fn bind_socket_exclusive(
    path: &Path,
    gid: Option<u32>,
) -> Result<(SocketLock, UnixListener), ServeError> {
    if let Some(dir) = path.parent() {
        create_dir(dir, socket_dir_mode())?;
    }
    let lock_path = path.with_extension("lock");
    let lock_error = |source| ServeError::Lock {
        path: lock_path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(lock_error)?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, Errno::EWOULDBLOCK)) => return Err(ServeError::SocketInUse(path.to_owned())),
        Err((_, errno)) => return Err(lock_error(errno.into())),
    };
    let listener = bind_socket(path, gid)?;
    Ok((SocketLock { _lock: lock }, listener))
}

/// The listening socket systemd passed, when this process was socket-activated
/// (`LISTEN_PID` is its pid and `LISTEN_FDS` is 1; `hermeticd.socket`). The variables are
/// removed so that nothing started later takes them for its own. Call it before any
/// thread is started.
pub fn activated_listener() -> Result<Option<std::os::unix::net::UnixListener>, ServeError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    if count != "1" {
        return Err(ServeError::Activation(format!(
            "systemd passed {count} sockets; hermeticd.socket must have exactly one \
             ListenStream="
        )));
    }
    // SAFETY: LISTEN_PID is this process (checked above), so systemd put the socket at
    // fd 3 for it, and nothing else here owns fd 3. The variables are gone (removed
    // above), so no later call of this function adopts it a second time.
    let fd = unsafe { hermetic::sys::activation::adopt_listen_fd() }
        .map_err(|err| ServeError::Activation(format!("descriptor 3: {err}")))?;
    let is_listening_unix_stream = getsockname::<UnixAddr>(fd.as_raw_fd()).is_ok()
        && getsockopt(&fd, sockopt::SockType).is_ok_and(|kind| kind == SockType::Stream)
        && getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false);
    if !is_listening_unix_stream {
        return Err(ServeError::Activation(
            "descriptor 3 is not a listening Unix stream socket (ListenStream= must be a path)"
                .into(),
        ));
    }
    Ok(Some(fd.into()))
}

/// Runs a daemon with `config` until SIGTERM or SIGINT, on a runtime of its own: takes
/// the socket systemd passed, or binds the configured one (exclusively); serves, drains,
/// and removes a socket it bound. `hermeticd` and the CLI's autostarted daemon are both
/// this.
pub fn run_daemon(config: Config) -> Result<(), ServeError> {
    let activated = activated_listener()?;
    // From this thread, which lives as long as the daemon: helpers die with it.
    if let Err(err) = hermetic::sandbox::zygote::start() {
        tracing::warn!(
            "no sandbox zygote, every launch execs its helper: {}",
            hermetic::errors::Chain(&err)
        );
    }
    // One thread for all the async work (HTTP, the job records, following logs): each is
    // short, and a job's own work runs on the blocking pool. With worker threads, every
    // request and every job's end crossed threads, a futex wake-up each, on a job's way.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let (lock, listener) = match activated {
            Some(listener) => {
                let adopt = |source| ServeError::Activation(format!("descriptor 3: {source}"));
                listener.set_nonblocking(true).map_err(adopt)?;
                (None, UnixListener::from_std(listener).map_err(adopt)?)
            }
            None => {
                let (lock, listener) = bind_socket_exclusive(&config.socket, config.socket_gid)?;
                (Some(lock), listener)
            }
        };
        let socket = listener
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_pathname().map(Path::to_owned))
            .unwrap_or_else(|| config.socket.clone());
        tracing::info!(
            socket = %socket.display(),
            activated = lock.is_none(),
            state_dir = %config.state_dir.display(),
            pid = std::process::id(),
            "listening"
        );
        let result = serve(config, listener, termination_signal()?).await;
        // A socket systemd passed stays: systemd owns it and listens again.
        if lock.is_some() {
            let _ = std::fs::remove_file(&socket);
        }
        result
    })
}

/// How often the daemon checks whether its executable was replaced.
const REPLACED_CHECK: Duration = Duration::from_secs(2);

/// The daemon's own executable file, to notice an upgrade or rebuild.
struct Executable {
    path: PathBuf,
    identity: (u64, u64),
}

impl Executable {
    fn running() -> Option<Executable> {
        let path = std::env::current_exe().ok()?;
        let running = std::fs::metadata("/proc/self/exe").ok()?;
        Some(Executable {
            path,
            identity: (running.dev(), running.ino()),
        })
    }

    /// Another file (or none) is at the path the daemon was started from.
    fn replaced(&self) -> bool {
        std::fs::metadata(&self.path).map_or(true, |now| (now.dev(), now.ino()) != self.identity)
    }
}

/// Completes once the daemon's executable was replaced and no job is queued or running:
/// the daemon then stops, so that the next client starts the new program instead of
/// being served by the old one.
async fn retire_when_replaced(scheduler: Scheduler) {
    let Some(executable) = Executable::running() else {
        return std::future::pending().await;
    };
    let mut checks = tokio::time::interval(REPLACED_CHECK);
    loop {
        checks.tick().await;
        if executable.replaced() && scheduler.retire_if_idle() {
            tracing::info!(
                path = %executable.path.display(),
                "the executable was replaced (upgraded or rebuilt); stopping so that the next client starts the new one"
            );
            return;
        }
    }
}

/// Completes at SIGTERM or SIGINT.
fn termination_signal() -> Result<impl Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let handle = |signal_name: &'static str, kind| {
        signal(kind).map_err(|source| ServeError::Signal {
            signal: signal_name,
            source,
        })
    };
    let mut term = handle("SIGTERM", SignalKind::terminate())?;
    let mut int = handle("SIGINT", SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn socket_dir_mode() -> u32 {
    if nix::unistd::geteuid().is_root() {
        0o755
    } else {
        0o700
    }
}

/// Listens on `path` (mode 0660, group `gid` when given). The socket's directory is
/// created 0700 for a non-root daemon. A stale socket is replaced; a live one is an error.
/// Must be called inside the tokio runtime.
pub fn bind_socket(path: &Path, gid: Option<u32>) -> Result<UnixListener, ServeError> {
    if let Some(dir) = path.parent() {
        create_dir(dir, socket_dir_mode())?;
    }
    if path.symlink_metadata().is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServeError::SocketInUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(|source| ServeError::RemoveStale {
            path: path.to_owned(),
            source,
        })?;
    }
    let bind_error = |source| ServeError::Bind {
        path: path.to_owned(),
        source,
    };
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let permissions = |source| ServeError::SocketPermissions {
        path: path.to_owned(),
        source,
    };
    if gid.is_some() {
        std::os::unix::fs::chown(path, None, gid).map_err(permissions)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(permissions)?;
    UnixListener::from_std(listener).map_err(bind_error)
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), ServeError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| ServeError::CreateDir {
            path: dir.to_owned(),
            source,
        })
}

/// Serves the API on `listener` until `shutdown` completes; then stops accepting
/// connections and jobs, lets running jobs finish for up to `shutdown_timeout`, kills the
/// rest, and returns once every job has ended.
pub async fn serve(
    config: Config,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    create_dir(&config.state_dir, 0o700)?;
    // Jobs that name an image take it from this daemon's image store.
    hermetic::image::root::set_state_dir(config.state_dir.clone());
    let store = Store::open(&config.state_dir.join("jobs.sqlite"))?;
    let scheduler = Scheduler::start(config, store)?;
    let app = api::router(scheduler.clone());

    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel();
    let draining = scheduler.clone();
    let retiring = scheduler.clone();
    let signal = async move {
        tokio::select! {
            () = shutdown => {}
            () = retire_when_replaced(retiring) => {}
        }
        tracing::info!("shutting down");
        // Draining runs beside the server's own graceful shutdown: a client following a
        // log keeps its connection until the job ends.
        tokio::spawn(async move {
            draining.shutdown().await;
            let _ = drained_tx.send(());
        });
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(signal)
        .await
        .map_err(ServeError::Serve)?;
    let _ = drained_rx.await;
    tracing::info!("stopped");
    Ok(())
}
