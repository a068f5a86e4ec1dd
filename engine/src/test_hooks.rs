//! Hooks tests use to put hermetic where they cannot otherwise: stopped at a chosen step,
//! as `kill -9` would, or on a kernel without a feature. Debug builds only: in a release
//! binary each is empty.

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

/// Set in the sandbox helper when the sandbox must lay out an image's /etc without
/// overlayfs, as on a kernel that refuses it in a user namespace.
static OVERLAY_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reads the hooks the sandbox helper obeys from its environment, before the helper wipes
/// it: `HERMETIC_TEST_NO_OVERLAY` set (debug builds only) refuses overlayfs.
/// tests/images/etc.rs checks that both ways show the same /etc.
pub fn read_helper_hooks() {
    if cfg!(debug_assertions) && std::env::var_os("HERMETIC_TEST_NO_OVERLAY").is_some() {
        OVERLAY_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether [`read_helper_hooks`] found overlayfs refused.
#[inline]
pub fn overlay_refused() -> bool {
    OVERLAY_REFUSED.load(std::sync::atomic::Ordering::Relaxed)
}
