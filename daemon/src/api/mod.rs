//! The HTTP API over the Unix socket: one file per resource, no business logic (that is
//! the queue's). Every request is checked against the peer's credentials (SO_PEERCRED)
//! first; every error is JSON (`wire::ErrorBody`).
pub mod drills;
pub mod health;
pub mod jobs;
pub mod metrics;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use tokio::net::UnixListener;

use crate::queue::Scheduler;

use hermetic_contract::wire::{ErrorBody, ErrorInfo, API_VERSION};

/// The credentials of the process at the other end of a connection, taken when it
/// connected. `None` when the kernel would not tell (the client is then refused).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(cred) => Peer {
                uid: Some(cred.uid()),
                gid: Some(cred.gid()),
                pid: cred.pid(),
            },
            Err(err) => {
                tracing::warn!("failed to read a client's credentials: {err}");
                Peer {
                    uid: None,
                    gid: None,
                    pid: None,
                }
            }
        }
    }
}

/// An error answer: status, stable code and message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!("{message}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInfo {
                code: self.code.into(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The router, with the access check and the body limit.
pub fn router(scheduler: Scheduler) -> Router {
    let body_limit = scheduler.config().body_limit_bytes;
    Router::new()
        .route("/v1/health", get(health::get))
        .route("/v1/jobs", get(jobs::list).post(jobs::submit))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/log", get(jobs::log))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/drills", get(drills::list).post(drills::record))
        .route("/metrics", get(metrics::get))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            scheduler.clone(),
            check_peer,
        ))
        .with_state(scheduler)
}

/// Root, the daemon's own uid and the configured uids and gids may use the daemon.
async fn check_peer(
    State(scheduler): State<Scheduler>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    let config = scheduler.config();
    let own_uid = nix::unistd::geteuid().as_raw();
    let allowed = match (peer.uid, peer.gid) {
        (Some(uid), Some(gid)) => {
            uid == 0
                || uid == own_uid
                || config.allowed_uids.contains(&uid)
                || config.allowed_gids.contains(&gid)
        }
        _ => false,
    };
    if !allowed {
        tracing::warn!(uid = ?peer.uid, gid = ?peer.gid, pid = ?peer.pid, "refused a client");
        let who = peer.uid.map_or_else(
            || "an unidentified client".to_owned(),
            |uid| format!("uid {uid}"),
        );
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{who} may not use this daemon"),
        )
        .into_response();
    }
    next.run(request).await
}

async fn not_found(request: Request) -> ApiError {
    let path = request.uri().path();
    let version = path
        .strip_prefix("/v")
        .and_then(|rest| rest.split('/').next())
        .and_then(|number| number.parse::<u32>().ok());
    match version {
        Some(version) if version != API_VERSION => ApiError::new(
            StatusCode::NOT_FOUND,
            "unsupported-api-version",
            format!("API version {version} is not supported; this daemon speaks v{API_VERSION}"),
        ),
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no route {path}"),
        ),
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
