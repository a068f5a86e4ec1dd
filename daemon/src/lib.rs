//! hermetic: the engine behind the `hermetic` CLI: the build sandbox, output archives and
//! the digests that describe them. See ARCHITECTURE.md for the map.
pub mod api;
pub mod archive;
pub mod background;
pub mod build;
pub mod cache;
pub mod config;
pub mod digest;
pub mod exit_code;
pub mod provenance;
pub mod queue;
pub mod repro;
pub mod run;
pub mod sandbox;
pub mod server;
pub mod signing;
pub mod store;
mod sys;
