//! The build sandbox: describe, then apply.
//!
//! - describe: [`profile`] (TOML data) + a request → [`plan`] → [`spec::SandboxSpec`];
//! - apply: [`launch::run`] starts the [`helper`] (a fork or re-exec of the current binary;
//!   `hermetic run` forks it before describing, [`launch::EarlyHelper`]), which creates the
//!   namespaces, takes the spec and forks the sandbox's init ([`init`]); init builds the
//!   filesystem ([`mount`]) and starts the build under [`landlock`] and [`seccomp`].
//!
//! Nothing in this module uses an async runtime; the launcher blocks, so async callers run
//! it on a blocking thread.
pub mod cancel;
pub mod cgroup;
pub mod error;
pub mod helper;
pub mod init;
pub mod keep_failed;
pub mod landlock;
pub mod launch;
pub(crate) mod message;
pub(crate) mod mount;
pub mod pins;
pub mod plan;
pub mod profile;
pub mod seccomp;
pub mod shim;
pub mod source;
pub mod spec;
pub(crate) mod tree_path;
pub mod zygote;

pub use error::{Layer, SandboxError};
pub use helper::run_helper_if_requested;
