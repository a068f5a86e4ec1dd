//! Every `unsafe` block and raw syscall of the crate lives below this module, each with a
//! `// SAFETY:` comment. Callers get safe functions whose errors name the call and path.
pub mod activation;
pub(crate) mod archive;
pub mod creds;
pub(crate) mod mount;
pub(crate) mod net;
pub(crate) mod process;
pub(crate) mod seccomp;
