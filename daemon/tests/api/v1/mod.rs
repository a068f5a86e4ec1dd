//! `/v1/...`
mod health;
mod jobs;
