//! The variation shim (daemon/shim/vary.c, compiled by build.rs): preloaded into the
//! second run of a dual build through that sandbox's own /etc/ld.so.preload, it shifts
//! the wall clock and the file times the build reads by 200 days and reverses every
//! directory listing. See vary.c for what it wraps and why.

/// The shared object, embedded so every hermetic binary can provide it.
pub(crate) const VARY_SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hermetic-vary.so"));

/// Where the shim is inside the sandbox (on the read-only root tmpfs).
pub const SHIM_PATH: &str = "/run/hermetic-vary.so";

/// How far the shim moves the clock.
pub const SHIFT_DAYS: u64 = 200;
