//! `GET /v1/health`.
use axum::extract::State;
use axum::Json;

use crate::queue::Scheduler;

use hermetic_contract::wire::{Health, API_VERSION, WIRE_SCHEMA};

pub async fn get(State(scheduler): State<Scheduler>) -> Json<Health> {
    let (queued, running) = scheduler.counts();
    let config = scheduler.config();
    Json(Health {
        schema: WIRE_SCHEMA.into(),
        status: if scheduler.is_accepting() {
            "ok"
        } else {
            "shutting-down"
        }
        .into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION,
        queued,
        running,
        max_concurrent: config.max_concurrent,
        queue_limit: config.queue_limit,
    })
}
