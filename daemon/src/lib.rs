//! hermetic: the engine behind the `hermetic` CLI and (later) `hermeticd`.
pub mod archive;
pub mod sandbox;
mod sys;
