//! `/v1/drills`: the drill history. `hermetic drill run` (and `drill poison`) record each
//! finished drill here; `drill history`, `drill status` and the drift check read it.
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use crate::queue::Scheduler;
use crate::store::{DrillQuery, StoreError};

use super::jobs::bad_query;
use super::ApiError;
use hermetic_contract::report::{DrillKind, DrillReport};
use hermetic_contract::wire::{DrillList, WIRE_SCHEMA};

const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 10_000;

/// `POST /v1/drills` → 201 with the report as kept; 400 not a `hermetic.drill/v1` report,
/// 409 a drill of that id is already recorded.
pub async fn record(
    State(scheduler): State<Scheduler>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<DrillReport>), ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "bad-request", rejection.body_text())
    })?;
    let report: DrillReport = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("invalid drill report: {err}"),
        )
    })?;
    match scheduler.store().record_drill(&report) {
        Ok(()) => Ok((StatusCode::CREATED, Json(report))),
        Err(err @ StoreError::DrillExists { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            err.to_string(),
        )),
        Err(err @ StoreError::BadDrill { .. }) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            err.to_string(),
        )),
        Err(err) => Err(ApiError::internal(hermetic::errors::Chain(&err))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    kind: Option<String>,
    case: Option<String>,
    cache_key: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/drills?kind=&case=&cache_key=&limit=` → `DrillList`, newest first.
pub async fn list(
    State(scheduler): State<Scheduler>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<DrillList>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let kind = query
        .kind
        .map(|kind| {
            DrillKind::parse(&kind).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    format!("unknown drill kind {kind:?}"),
                )
            })
        })
        .transpose()?;
    let drills = scheduler
        .store()
        .drills(&DrillQuery {
            kind,
            case: query.case,
            cache_key: query.cache_key,
            limit: query
                .limit
                .unwrap_or(DEFAULT_LIST_LIMIT)
                .min(MAX_LIST_LIMIT),
        })
        .map_err(|err| ApiError::internal(hermetic::errors::Chain(&err)))?;
    Ok(Json(DrillList {
        schema: WIRE_SCHEMA.into(),
        drills,
    }))
}
