//! Hooks the crash tests use to stop hermetic at a chosen step, as `kill -9` would.
//! Debug builds only: in a release binary [`crash_point`] is empty.

/// Kills this process with SIGKILL when the environment variable
/// `HERMETIC_TEST_CRASH_AT` names `step`. tests/cache/crash.rs stops a store, restore,
/// quarantine and gc at each of their steps this way, then checks that the cache and the
/// destination hold whole things or nothing and that the next run clears what was left.
#[inline]
pub fn crash_point(step: &'static str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("HERMETIC_TEST_CRASH_AT").is_some_and(|at| at == step) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}
