//! `/v1/...`
mod drills;
mod health;
mod jobs;
