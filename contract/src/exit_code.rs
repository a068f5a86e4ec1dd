//! Exit codes: part of the contract with users' scripts (the CLI's, and the daemon's job
//! results). Documented in README.md.

/// `hermetic build`: the build succeeded (and, for dual runs, was reproducible).
pub const SUCCESS: i32 = 0;
/// `hermetic build`: the build's command failed (its own status is in the report).
pub const BUILD_FAILED: i32 = 1;
/// Usage or configuration error (bad flag, unknown profile, bad output path, ...).
pub const USAGE: i32 = 2;
/// `hermetic build`: the outputs differ between the canonical and the varied run.
pub const NONDETERMINISTIC: i32 = 3;
/// `hermetic verify`: the bundle, manifest or artifact is not verified.
pub const NOT_VERIFIED: i32 = 4;
/// `hermetic build --require-cache`: no usable cache entry (the build did not run).
pub const CACHE_MISS: i32 = 4;
/// `hermetic build`: the sandbox could not be set up, or an internal error.
pub const SANDBOX_FAILED: i32 = 5;

/// `hermetic drill run`: every case was reproducible (and matched its history).
pub const DRILL_PASSED: i32 = 0;
/// `hermetic drill run`: a case failed to build (it outranks a nondeterministic one).
pub const DRILL_CASE_FAILED: i32 = 1;
/// `hermetic drill run`: a case was nondeterministic or drifted; `drill rebuild`: bad.
pub const DRILL_NOT_REPRODUCIBLE: i32 = 3;
/// `hermetic drill rebuild`: refused before building (an untrusted or bad signature, another
/// source tree or profile than the statement records).
pub const DRILL_REBUILD_REFUSED: i32 = 4;
/// `hermetic drill status`: the last complete drill of the kind is younger than
/// `--max-age` and passed.
pub const DRILL_FRESH: i32 = 0;
/// `hermetic drill status`: no drill of the kind, or the last one is too old or failed.
pub const DRILL_STALE: i32 = 1;

/// `hermetic run`: the sandbox could not be set up (docker/podman convention).
pub const RUN_SANDBOX_FAILED: i32 = 125;
/// `hermetic run`: the command exists but could not be executed.
pub const RUN_CANNOT_EXECUTE: i32 = 126;
/// `hermetic run`: the command was not found.
pub const RUN_NOT_FOUND: i32 = 127;
