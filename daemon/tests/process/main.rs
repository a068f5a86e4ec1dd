//! Tests that observe the whole daemon process, its children, descriptors and memory,
//! so they run in a test binary of their own and one at a time: another daemon's jobs in
//! the same process would be counted too.
// The API suite's daemon harness; this binary uses part of it.
#[allow(dead_code)]
#[path = "../api/support.rs"]
mod support;

mod children;
mod load;

/// Held by each test for its whole length.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
