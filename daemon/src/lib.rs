//! hermetic: the engine behind the `hermetic` CLI: the build sandbox, output archives and
//! the digests that describe them. See ARCHITECTURE.md for the map.
pub mod archive;
pub mod build;
pub mod digest;
pub mod exit_code;
pub mod provenance;
pub mod repro;
pub mod sandbox;
pub mod signing;
mod sys;
