//! `hermetic drill`: determinism drills over plans of real builds through the daemon, the
//! drill history, the freshness gate, and the reports (JUnit against its schema, the HTML
//! page in headless Chromium). Each test has its own daemon (tests/daemon/fixture.rs).
#[path = "../support/mod.rs"]
mod support;

#[path = "../daemon/fixture.rs"]
#[allow(dead_code)]
mod fixture;

/// Runners publishing to one registry: drift across the fleet, untrusted results ignored.
mod fleet;
/// The test's own docker-registry (tests/cache/remote/registry.rs) and its HTTP client.
#[path = "../cache/remote/net.rs"]
#[allow(dead_code)]
mod net;
/// A plan, its sources and a toolchain dir the tests change under an unchanged key.
mod plan;
/// `drill rebuild`: good, bad with the file, refused.
mod rebuild;
#[path = "../cache/remote/registry.rs"]
#[allow(dead_code)]
mod registry;
/// The JUnit file against tests/drills/junit.xsd, the HTML page in Chromium.
mod reports;
/// Verdicts, exit codes and the history of two drills.
mod run;
/// `drill status`: fresh, stale, none.
mod status;
