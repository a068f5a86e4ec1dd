//! The build sandbox: a validated spec, applied by a synchronous helper process.
pub mod seccomp;
