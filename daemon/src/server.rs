//! The daemon as a library: `bind_socket` then `serve`, so that tests run it in-process
//! on a temporary socket and `hermeticd` is a thin binary around it.
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    #[error("failed to create the directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another daemon is already listening on {0}")]
    SocketInUse(PathBuf),
    #[error("failed to remove the stale socket {path}: {source}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to set the owner and mode of the socket {path}: {source}")]
    SocketPermissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to serve: {0}")]
    Serve(#[source] std::io::Error),
}

/// Listens on `path` (mode 0660, group `gid` when given). The socket's directory is
/// created 0700 for a non-root daemon. A stale socket is replaced; a live one is an error.
/// Must be called inside the tokio runtime.
pub fn bind_socket(path: &Path, gid: Option<u32>) -> Result<UnixListener, ServeError> {
    if let Some(dir) = path.parent() {
        let mode = if nix::unistd::geteuid().is_root() {
            0o755
        } else {
            0o700
        };
        create_dir(dir, mode)?;
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
    let store = Store::open(&config.state_dir.join("jobs.sqlite"))?;
    let scheduler = Scheduler::start(config, store)?;
    let app = api::router(scheduler.clone());

    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel();
    let draining = scheduler.clone();
    let signal = async move {
        shutdown.await;
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
