//! The contract between hermetic's parts and with its users' scripts: what the CLI asks
//! the engine or the daemon to do, what comes back, the daemon's wire format and the
//! documented exit codes. Plain serde types, both ways: every crate of the workspace
//! depends on this one, and it depends on nothing of theirs.
pub mod build;
pub mod exit_code;
pub mod manifest;
mod names;
pub mod report;
pub mod wire;
