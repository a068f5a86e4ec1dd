//! The documented exit codes live in the library, shared with the daemon's job results.
pub use hermetic::exit_code::*;
