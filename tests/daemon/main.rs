//! End-to-end tests of the daemon through the `hermetic` CLI: autostart (and its race),
//! live logs, cancel, stop, and the same results, streams and exit codes with and
//! without the daemon. Each test has its own config (socket and state dir in a temp dir,
//! through HERMETIC_CONFIG) and kills the daemons it started when it ends.
#[path = "../support/mod.rs"]
mod support;

/// The fixture: a config of its own, the daemons started for it, killed on drop.
mod fixture;
/// The image tests' fixture image (busybox), for `--image` through the daemon.
#[allow(dead_code)]
#[path = "../images/fixture.rs"]
mod image_fixture;
/// `run` and `build` in an image through the daemon.
mod images;
/// Autostart, daemon status and stop, the log streamed live, cancel.
mod lifecycle;
/// `run` and `build` give the same output and exit codes with and without the daemon.
mod same_result;
/// A daemon retires when its program is replaced.
mod upgrade;
