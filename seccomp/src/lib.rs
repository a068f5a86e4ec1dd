//! hermetic's seccomp policies as data: the policy format (seccompiler's JSON, see
//! `seccomp/README.md`), its validation, and the compiler that turns a policy into one
//! classic BPF program for x86_64.
//!
//! The compiler is hand-written because seccompiler emits one linear program per action,
//! and a build's policy is decided on every syscall: [`bpf`] compiles both lists into one
//! binary search (the module doc has the figures). Nothing here installs a program;
//! the engine does that (its `sys::seccomp`).
pub mod bpf;
pub mod source;
pub mod syscalls;

pub use bpf::BpfInstruction;
pub use source::{program, ProgramError, ALLOWLIST, DENYLIST, FILTER_NAMES};
