//! `GET /metrics`: Prometheus text format.
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::queue::Scheduler;

pub async fn get(State(scheduler): State<Scheduler>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scheduler.metrics(),
    )
}
