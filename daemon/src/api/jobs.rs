//! `/v1/jobs`: submit, list, status, log, cancel.
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::io::Read;

use crate::queue::log::{Stream, INDEX_RECORD};
use crate::queue::{Caller, CancelError, Scheduler, SubmitError};

use super::{ApiError, Peer};
use hermetic::errors::Chain;
use hermetic_contract::wire::{
    Job, JobList, JobRequest, FRAMED_LOG_CONTENT_TYPE, FRAME_JOB, WIRE_SCHEMA,
};

/// How often a followed log is checked for new bytes.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(50);
const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    framed: bool,
}

/// `POST /v1/jobs` → 201 `Job`; 400 bad JSON, 413 body too large, 503 busy. With
/// `?follow=true&framed=true`, the 201 answer is the job's followed framed log instead (as
/// `GET /v1/jobs/{id}/log` gives it, ending with the final record), with the job's URL in
/// `Location`: one request instead of two for a client that waits for the job.
pub async fn submit(
    State(scheduler): State<Scheduler>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    if query.follow && !query.framed {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "follow on submit needs framed=true: only frames can carry the job's final record",
        ));
    }
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body-too-large"
        } else {
            "bad-request"
        };
        ApiError::new(status, code, rejection.body_text())
    })?;
    let request: JobRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("invalid job request: {err}"),
        )
    })?;
    // The access check let only connections with credentials through.
    let caller = Caller {
        uid: peer.uid.unwrap_or(u32::MAX),
        gid: peer.gid.unwrap_or(u32::MAX),
    };
    match scheduler.submit(request, caller) {
        Ok(job) if query.follow => {
            let mut response = log_response(scheduler, job.id, true, true).await?;
            *response.status_mut() = StatusCode::CREATED;
            let location = header::HeaderValue::from_str(&format!("/v1/jobs/{}", job.id))
                .map_err(ApiError::internal)?;
            response.headers_mut().insert(header::LOCATION, location);
            Ok(response)
        }
        Ok(job) => Ok((StatusCode::CREATED, Json(job)).into_response()),
        Err(err @ SubmitError::Busy { .. }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            err.to_string(),
        )),
        Err(err @ SubmitError::ShuttingDown) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            err.to_string(),
        )),
        Err(err @ SubmitError::Invalid(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            err.to_string(),
        )),
        Err(err @ SubmitError::OtherUser { .. }) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            err.to_string(),
        )),
        Err(err @ SubmitError::Store(_)) => Err(ApiError::internal(Chain(&err))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
}

/// `GET /v1/jobs[?limit=N]` → `JobList`, newest first.
pub async fn list(
    State(scheduler): State<Scheduler>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_LIST_LIMIT)
        .min(MAX_LIST_LIMIT);
    let jobs = scheduler.store().list(limit).map_err(ApiError::internal)?;
    Ok(Json(JobList {
        schema: WIRE_SCHEMA.into(),
        jobs,
    }))
}

/// `GET /v1/jobs/{id}` → `Job`, with a build's full report.
pub async fn get(
    State(scheduler): State<Scheduler>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    find(&scheduler, &id).map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
    /// Frames that say which stream wrote each part (`wire::FRAMED_LOG_CONTENT_TYPE`).
    #[serde(default)]
    framed: bool,
}

/// `GET /v1/jobs/{id}/log[?follow=true][&framed=true]` → the log as `text/plain`, or as
/// frames with `framed`; with `follow`, a chunked stream that ends when the job does.
pub async fn log(
    State(scheduler): State<Scheduler>,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let job = find(&scheduler, &id)?;
    log_response(scheduler, job.id, query.framed, query.follow).await
}

/// Job `id`'s log as an answer: whole, or followed until the job ends; plain or framed.
async fn log_response(
    scheduler: Scheduler,
    id: u64,
    framed: bool,
    follow: bool,
) -> Result<Response, ApiError> {
    let content_type = if framed {
        FRAMED_LOG_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let headers = [(header::CONTENT_TYPE, content_type)];
    let mut tail = Tail {
        files: None,
        partial: Vec::new(),
        framed,
        follow,
        scheduler,
        id,
        ended: false,
        final_job: None,
        record_sent: false,
    };
    if !follow {
        let mut body = Vec::new();
        while let Some(chunk) = tail.next().await {
            let chunk = chunk
                .map_err(|err| ApiError::internal(format!("failed to read the log: {err}")))?;
            body.extend_from_slice(&chunk);
        }
        return Ok((headers, body).into_response());
    }
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        let chunk = tail.next().await?;
        if chunk.is_err() {
            tail.ended = true;
            tail.follow = false;
        }
        Some((chunk, tail))
    });
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// A reader of a job's log (and index), optionally waiting for more until the job ends.
///
/// Its files are read with plain blocking reads: they are the daemon's own files on a local
/// disk, read only as far as already written, so a read returns at once. tokio::fs would
/// hand every read to the blocking pool, two thread switches for a few bytes.
struct Tail {
    /// Opened once they exist: a job's log is created at its first output (`JobLog`), and
    /// until then it reads as empty.
    files: Option<TailFiles>,
    /// Index bytes read past the last whole record.
    partial: Vec<u8>,
    framed: bool,
    follow: bool,
    scheduler: Scheduler,
    id: u64,
    ended: bool,
    /// The terminal record read when the end was seen, sent as the last frame.
    final_job: Option<Job>,
    record_sent: bool,
}

struct TailFiles {
    log: std::fs::File,
    /// None for a job logged before logs had an index: all of it is shown as stderr.
    index: Option<std::fs::File>,
}

impl Tail {
    /// The job's log (and with `framed` its index) if it exists yet. The index is created
    /// before the log, so a log found has its index.
    fn open(&self) -> std::io::Result<Option<TailFiles>> {
        let open = |path: std::path::PathBuf| match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(std::io::Error::new(
                err.kind(),
                format!("failed to open {}: {err}", path.display()),
            )),
        };
        let Some(log) = open(self.scheduler.log_file(self.id))? else {
            return Ok(None);
        };
        let index = if self.framed {
            open(self.scheduler.log_index_file(self.id))?
        } else {
            None
        };
        Ok(Some(TailFiles { log, index }))
    }

    /// The next part of the answer; `None` at the end.
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            match self.read_available() {
                Ok(Some(chunk)) => return Some(Ok(chunk)),
                Ok(None) => {}
                Err(err) => return Some(Err(err)),
            }
            if !self.follow {
                return None;
            }
            if self.ended {
                return self.final_record();
            }
            // The job's end is only seen once its log is complete (the store records the
            // end after the files); one more read then drains it. While the scheduler
            // still holds the job it has not ended, and the store is not asked.
            let job_ended = self.scheduler.job_ended();
            tokio::pin!(job_ended);
            job_ended.as_mut().enable();
            self.ended = !self.scheduler.is_active(self.id)
                && match self.scheduler.store().get(self.id) {
                    Ok(Some(job)) if job.state.is_terminal() => {
                        self.final_job = Some(job);
                        true
                    }
                    Ok(Some(_)) => false,
                    _ => true,
                };
            if !self.ended {
                tokio::select! {
                    () = job_ended => {}
                    () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
                }
            }
        }
    }

    /// The job's final record, once, as the last frame of a followed framed log: the
    /// client needs no further request for the result.
    fn final_record(&mut self) -> Option<std::io::Result<Bytes>> {
        if !self.framed || self.record_sent {
            return None;
        }
        self.record_sent = true;
        let job = match self.final_job.take() {
            Some(job) => job,
            None => match self.scheduler.store().get(self.id) {
                Ok(Some(job)) => job,
                _ => return None,
            },
        };
        let json = match serde_json::to_vec(&job) {
            Ok(json) => json,
            Err(err) => return Some(Err(std::io::Error::other(err))),
        };
        let mut frame = Vec::with_capacity(json.len() + INDEX_RECORD);
        frame.push(FRAME_JOB);
        frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
        frame.extend_from_slice(&json);
        Some(Ok(frame.into()))
    }

    /// What has been written since the last call; `None` when nothing has.
    fn read_available(&mut self) -> std::io::Result<Option<Bytes>> {
        if self.files.is_none() {
            self.files = self.open()?;
        }
        let Some(TailFiles { log, index }) = self.files.as_mut() else {
            return Ok(None);
        };
        // At most this much per part of the answer; read into buffers that grow with what
        // there is, rather than into a zeroed one of this size at every poll.
        const CHUNK: u64 = 64 * 1024;
        let framed = self.framed;
        let Some(index) = index.as_mut().filter(|_| framed) else {
            let mut bytes = Vec::new();
            let n = log.by_ref().take(CHUNK).read_to_end(&mut bytes)?;
            if n == 0 {
                return Ok(None);
            }
            if framed {
                let mut frame = Vec::with_capacity(n + INDEX_RECORD);
                push_frame_header(&mut frame, Stream::Stderr, n);
                frame.extend_from_slice(&bytes);
                return Ok(Some(frame.into()));
            }
            return Ok(Some(bytes.into()));
        };
        index.by_ref().take(CHUNK).read_to_end(&mut self.partial)?;
        let whole = self.partial.len() / INDEX_RECORD * INDEX_RECORD;
        let records: Vec<u8> = self.partial.drain(..whole).collect();
        let mut frames = Vec::new();
        for record in records.chunks_exact(INDEX_RECORD) {
            let length = u32::from_be_bytes([record[1], record[2], record[3], record[4]]);
            let stream = Stream::from_byte(record[0]).unwrap_or(Stream::Stderr);
            push_frame_header(&mut frames, stream, length as usize);
            let start = frames.len();
            frames.resize(start + length as usize, 0);
            // The log's bytes are written before their record.
            log.read_exact(&mut frames[start..])?;
        }
        Ok((!frames.is_empty()).then(|| frames.into()))
    }
}

/// A frame's header has the index record's shape.
fn push_frame_header(out: &mut Vec<u8>, stream: Stream, length: usize) {
    out.push(stream as u8);
    out.extend_from_slice(&(length as u32).to_be_bytes());
}

/// `POST /v1/jobs/{id}/cancel` → 202 `Job`; 404 unknown, 409 already finished.
pub async fn cancel(
    State(scheduler): State<Scheduler>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let job = find(&scheduler, &id)?;
    match scheduler.cancel(job.id) {
        Ok(job) => Ok((StatusCode::ACCEPTED, Json(job))),
        Err(err @ CancelError::NotFound(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            err.to_string(),
        )),
        Err(err @ CancelError::Finished { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not-cancellable",
            err.to_string(),
        )),
        Err(err @ CancelError::Store(_)) => Err(ApiError::internal(err)),
    }
}

fn find(scheduler: &Scheduler, id: &str) -> Result<Job, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("no job {id}"));
    let id: u64 = id.parse().map_err(|_| not_found())?;
    scheduler
        .store()
        .get(id)
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)
}

pub(super) fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad-request",
        rejection.body_text(),
    )
}
