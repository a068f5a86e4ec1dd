//! `/v1/jobs`: submit, list, status, log, cancel.
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::queue::{CancelError, Scheduler, SubmitError};

use super::wire::{Job, JobList, JobRequest, WIRE_SCHEMA};
use super::ApiError;

/// How often a followed log is checked for new bytes.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(50);
const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 10_000;

/// `POST /v1/jobs` → 201 `Job`; 400 bad JSON, 413 body too large, 503 busy.
pub async fn submit(
    State(scheduler): State<Scheduler>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
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
    match scheduler.submit(request) {
        Ok(job) => Ok((StatusCode::CREATED, Json(job))),
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
        Err(err @ (SubmitError::Store(_) | SubmitError::Scratch { .. })) => {
            Err(ApiError::internal(err))
        }
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
}

/// `GET /v1/jobs/{id}/log[?follow=true]` → the log as `text/plain`; with `follow`, a
/// chunked stream that ends when the job does.
pub async fn log(
    State(scheduler): State<Scheduler>,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let job = find(&scheduler, &id)?;
    let file = match open_log(&scheduler, job.id).await {
        Ok(file) => Some(file),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(ApiError::internal(format!("failed to open the log: {err}"))),
    };
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let Some(mut file) = file else {
        return Ok((headers, Body::empty()).into_response());
    };
    if !query.follow {
        let mut text = Vec::new();
        file.read_to_end(&mut text)
            .await
            .map_err(|err| ApiError::internal(format!("failed to read the log: {err}")))?;
        return Ok((headers, text).into_response());
    }
    let stream = futures_util::stream::unfold(
        (file, scheduler, job.id, false),
        |(mut file, scheduler, id, mut ended)| async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match file.read(&mut buffer).await {
                    Ok(0) if ended => return None,
                    Ok(0) => {
                        ended = match scheduler.store().get(id) {
                            Ok(Some(job)) => job.state.is_terminal(),
                            _ => true,
                        };
                        if !ended {
                            tokio::time::sleep(FOLLOW_INTERVAL).await;
                        }
                    }
                    Ok(n) => {
                        buffer.truncate(n);
                        let chunk = Ok::<_, std::io::Error>(Bytes::from(buffer));
                        return Some((chunk, (file, scheduler, id, ended)));
                    }
                    Err(err) => return Some((Err(err), (file, scheduler, id, true))),
                }
            }
        },
    );
    Ok((headers, Body::from_stream(stream)).into_response())
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
        Err(err @ CancelError::Unsupported(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "cancel-unsupported",
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

/// The log moves from the scratch directory to the log directory when the job ends; an
/// open file keeps reading across the move.
async fn open_log(scheduler: &Scheduler, id: u64) -> std::io::Result<tokio::fs::File> {
    match tokio::fs::File::open(scheduler.log_file(id)).await {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tokio::fs::File::open(scheduler.log_file(id)).await
        }
        other => other,
    }
}

fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad-request",
        rejection.body_text(),
    )
}
