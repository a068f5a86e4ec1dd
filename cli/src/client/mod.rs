//! The daemon's client: HTTP/1.1 + JSON over its Unix socket (`hermetic_contract::wire`), one
//! connection per request, on a current-thread runtime the client owns so that commands
//! stay synchronous. `autostart` finds or starts the daemon.
pub mod autostart;

use std::path::{Path, PathBuf};

use hermetic_contract::report::DrillReport;
use hermetic_contract::wire::{
    split_frames, DrillList, ErrorBody, Health, Job, JobList, JobRequest, FRAMED_LOG_CONTENT_TYPE,
    FRAME_JOB,
};
use hermetic_daemon::queue::log::Stream;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use nix::sys::signal::Signal;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no daemon answers on {socket}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to talk to the daemon on {socket}: {message}")]
    Http { socket: PathBuf, message: String },
    /// The daemon answered with an error (`wire::ErrorBody`).
    #[error("the daemon refused: {message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
}

impl ClientError {
    /// The daemon's stable error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// `text` as a URL query value: unreserved bytes as they are, every other byte
/// percent-encoded (case names and keys are short; no URL crate for eight lines).
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// How following a job's log ended.
pub enum Followed {
    /// The log is complete; followed, the job has ended, with this final record.
    Ended(Option<Box<Job>>),
    /// The client got this signal first (SIGINT, SIGTERM or SIGHUP).
    Signal(i32),
}

pub struct Client {
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(socket: &Path) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        Ok(Client {
            socket: socket.to_owned(),
            runtime,
        })
    }

    /// `GET /v1/health`, and the daemon's pid (from the socket's peer credentials).
    pub fn health(&self) -> Result<(Health, Option<i32>), ClientError> {
        self.runtime.block_on(async {
            let (response, pid) = self.send(Method::GET, "/v1/health", None).await?;
            Ok((self.json(response).await?, pid))
        })
    }

    pub fn job(&self, id: u64) -> Result<Job, ClientError> {
        self.call(Method::GET, &format!("/v1/jobs/{id}"), None)
    }

    pub fn jobs(&self, limit: usize) -> Result<JobList, ClientError> {
        self.call(Method::GET, &format!("/v1/jobs?limit={limit}"), None)
    }

    /// `POST /v1/drills`: keeps a finished drill in the daemon's history.
    pub fn record_drill(&self, report: &DrillReport) -> Result<DrillReport, ClientError> {
        let body = serde_json::to_vec(report).map_err(|err| self.http(err))?;
        self.call(Method::POST, "/v1/drills", Some(body))
    }

    /// `GET /v1/drills`: recorded drills, newest first. `filters` are the route's query
    /// parameters (kind, case, cache_key), each given only when set.
    pub fn drills(
        &self,
        filters: &[(&str, Option<&str>)],
        limit: usize,
    ) -> Result<DrillList, ClientError> {
        let mut path = format!("/v1/drills?limit={limit}");
        for (name, value) in filters {
            if let Some(value) = value {
                path.push_str(&format!("&{name}={}", query_escape(value)));
            }
        }
        self.call(Method::GET, &path, None)
    }

    pub fn cancel(&self, id: u64) -> Result<Job, ClientError> {
        self.call(Method::POST, &format!("/v1/jobs/{id}/cancel"), None)
    }

    /// Reads job `id`'s log as frames, handing each part to `sink` as it arrives; with
    /// `follow`, until the job ends. With `stop_on_signal`, SIGINT, SIGTERM and SIGHUP
    /// end the wait instead of the process, so the caller can cancel the job.
    pub fn log(
        &self,
        id: u64,
        follow: bool,
        stop_on_signal: bool,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Followed, ClientError> {
        self.runtime.block_on(async {
            let signals = stop_on_signal.then(|| self.signals()).transpose()?;
            until_signal(self.framed_log(id, follow, sink), signals).await
        })
    }

    /// `GET /v1/jobs/{id}/log?framed=true`, its frames handed to `sink`.
    async fn framed_log(
        &self,
        id: u64,
        follow: bool,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Followed, ClientError> {
        let path = format!("/v1/jobs/{id}/log?framed=true&follow={follow}");
        let (response, _) = self.send(Method::GET, &path, None).await?;
        let response = self.checked(response).await?;
        if !is_framed(&response) {
            return Err(
                self.http("the daemon sent the log without frames; is it older than this client?")
            );
        }
        Ok(Followed::Ended(
            self.read_frames(response.into_body(), sink).await?,
        ))
    }

    /// Submits `request` and follows its framed log in the same request, handing each
    /// part to `sink`, until the job ends or SIGINT, SIGTERM or SIGHUP comes (the caller
    /// then cancels the job). Returns the job's id and how following ended. A daemon that
    /// answers the submission with the job record only (older than this client) has its
    /// log followed with a second request.
    pub fn submit_and_follow(
        &self,
        request: &JobRequest,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<(u64, Followed), ClientError> {
        let body = serde_json::to_vec(request).map_err(|err| self.http(err))?;
        self.runtime.block_on(async {
            let signals = Some(self.signals()?);
            let path = "/v1/jobs?follow=true&framed=true";
            let (response, _) = self.send(Method::POST, path, Some(body)).await?;
            let response = self.checked(response).await?;
            if !is_framed(&response) {
                let job: Job = self.json(response).await?;
                let read = self.framed_log(job.id, true, sink);
                return Ok((job.id, until_signal(read, signals).await?));
            }
            let id = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| location.strip_prefix("/v1/jobs/"))
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| self.http("the daemon's answer has no job URL in Location"))?;
            let read = async {
                Ok(Followed::Ended(
                    self.read_frames(response.into_body(), sink).await?,
                ))
            };
            Ok((id, until_signal(read, signals).await?))
        })
    }

    /// SIGINT, SIGTERM and SIGHUP, caught from now on instead of ending the process.
    fn signals(&self) -> Result<Signals, ClientError> {
        use tokio::signal::unix::{signal, SignalKind};
        let handle = |kind| signal(kind).map_err(|err| self.http(err));
        Ok(Signals {
            interrupt: handle(SignalKind::interrupt())?,
            terminate: handle(SignalKind::terminate())?,
            hangup: handle(SignalKind::hangup())?,
        })
    }

    async fn read_frames(
        &self,
        mut body: Incoming,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Option<Box<Job>>, ClientError> {
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| self.http(err))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            let mut record = None;
            let used = split_frames(&pending, |frame| {
                if frame.tag == FRAME_JOB {
                    // The job's record is the last frame: the job has ended, and waiting
                    // for the end of the body would only cost another wake-up.
                    record = Some(frame.bytes);
                    return false;
                }
                sink(
                    Stream::from_byte(frame.tag).unwrap_or(Stream::Stderr),
                    frame.bytes,
                );
                true
            });
            if let Some(bytes) = record {
                let record = serde_json::from_slice(bytes)
                    .map_err(|err| self.http(format!("unexpected job record: {err}")))?;
                return Ok(Some(Box::new(record)));
            }
            pending.drain(..used);
        }
        Ok(None)
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        self.runtime.block_on(async {
            let (response, _) = self.send(method, path, body).await?;
            self.json(response).await
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(Response<Incoming>, Option<i32>), ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let pid = stream.peer_cred().ok().and_then(|cred| cred.pid());
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| self.http(err))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "hermeticd")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|err| self.http(err))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| self.http(err))?;
        Ok((response, pid))
    }

    /// The response when it is a success; the daemon's `ErrorBody` as an error otherwise.
    async fn checked(
        &self,
        response: Response<Incoming>,
    ) -> Result<Response<Incoming>, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = self.body(response).await?;
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => ClientError::Api {
                status: status.as_u16(),
                code: error.error.code,
                message: error.error.message,
            },
            Err(_) => self.http(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body).trim()
            )),
        })
    }

    async fn body(&self, response: Response<Incoming>) -> Result<Bytes, ClientError> {
        Ok(response
            .into_body()
            .collect()
            .await
            .map_err(|err| self.http(err))?
            .to_bytes())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        response: Response<Incoming>,
    ) -> Result<T, ClientError> {
        let response = self.checked(response).await?;
        let body = self.body(response).await?;
        serde_json::from_slice(&body).map_err(|err| self.http(format!("unexpected answer: {err}")))
    }

    fn http(&self, message: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            socket: self.socket.clone(),
            message: message.to_string(),
        }
    }
}

struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

/// `read`, unless one of `signals` comes first.
async fn until_signal(
    read: impl std::future::Future<Output = Result<Followed, ClientError>>,
    signals: Option<Signals>,
) -> Result<Followed, ClientError> {
    let Some(mut signals) = signals else {
        return read.await;
    };
    tokio::select! {
        result = read => result,
        _ = signals.interrupt.recv() => Ok(Followed::Signal(Signal::SIGINT as i32)),
        _ = signals.terminate.recv() => Ok(Followed::Signal(Signal::SIGTERM as i32)),
        _ = signals.hangup.recv() => Ok(Followed::Signal(Signal::SIGHUP as i32)),
    }
}

fn is_framed(response: &Response<Incoming>) -> bool {
    response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|value| value == FRAMED_LOG_CONTENT_TYPE)
}
