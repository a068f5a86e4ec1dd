//! hermetic's engine: the build sandbox, dual runs and their verdicts, output archives,
//! the signed cache, signing and provenance. The CLI calls it in-process (`--no-daemon`)
//! and the daemon calls it on its job threads; it has no server, no database and no async
//! code. See ARCHITECTURE.md for the map.
pub mod archive;
pub mod background;
pub mod build;
pub mod cache;
pub mod digest;
pub mod dirs;
pub mod drill;
pub mod errors;
pub mod image;
pub mod provenance;
pub mod repro;
pub mod run;
pub mod sandbox;
pub mod signing;
pub mod size;
pub mod sys;
pub mod test_hooks;
pub mod timestamp;

pub use hermetic_contract::exit_code;

/// Ends the process with `code`, as `std::process::exit` does (stdout and stderr flushed,
/// other threads ended), except that whoever waits for it does not also wait for its memory
/// to be freed (see `sys::process::exit_leaving_memory_to_a_child`).
pub fn exit(code: i32) -> ! {
    sys::process::exit_leaving_memory_to_a_child(code)
}
