//! End-to-end tests of `hermetic run` and `hermetic build --single` that are not escape
//! attempts: pinned values, real toolchain builds, the archive contract, exit codes, bad
//! input, and the rootless (unprivileged caller) case.
#[path = "../support/mod.rs"]
mod support;

/// `hermetic build --single`: JSON report, deterministic archive, --extract.
mod archive;
/// Refused input: bad source, profile, seccomp policy, output paths.
mod bad_input;
/// Exit codes of `run` and `build`.
mod exit_codes;
/// The build sees pinned values, the same in every run.
mod pins;
/// The sandbox's own processes (helper, init) as the host sees them.
mod processes;
/// gcc + make, python byte-compilation, tar and gzip in the default profile.
mod real_builds;
/// A profile with its own root filesystem.
mod rootfs;
/// An unprivileged caller in a delegated cgroup.
mod rootless;
