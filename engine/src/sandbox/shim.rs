//! The variation shim (engine/shim/vary.c, compiled by build.rs): preloaded into every
//! host-toolchain sandbox through that sandbox's own /etc/ld.so.preload. It is a
//! pass-through except in the second run of a dual build, where it shifts the wall clock
//! and the file times the build reads by [`SHIFT_DAYS`] days and reverses every directory
//! listing. See vary.c for what it wraps and why.
use std::borrow::Cow;

/// The shared object as compiled: the pass-through mode.
const PASS_THROUGH: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hermetic-vary.so"));

/// The mode marker in vary.c; its last byte selects the mode.
const MODE_MARKER: &[u8] = b"hermetic-vary-mode:0";

/// Where the shim is inside the sandbox (on the read-only root tmpfs).
pub const SHIM_PATH: &str = "/run/hermetic-vary.so";

/// How far the shim moves the clock.
pub const SHIFT_DAYS: u64 = 200;

/// The shim's bytes for one run: the object as compiled, or with the marker switched to
/// varying. Both have the same size, so the runs differ only in what the shim does.
pub(crate) fn shim_object(varying: bool) -> Cow<'static, [u8]> {
    if !varying {
        return Cow::Borrowed(PASS_THROUGH);
    }
    let at = marker_offset();
    let mut object = PASS_THROUGH.to_vec();
    object[at + MODE_MARKER.len() - 1] = b'1';
    Cow::Owned(object)
}

fn marker_offset() -> usize {
    let mut found = PASS_THROUGH
        .windows(MODE_MARKER.len())
        .enumerate()
        .filter(|(_, window)| *window == MODE_MARKER)
        .map(|(at, _)| at);
    let at = found
        .next()
        .expect("build.rs compiles vary.c, which holds the mode marker");
    debug_assert!(found.next().is_none(), "the mode marker must be unique");
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_marker_occurs_once_and_only_its_last_byte_is_switched() {
        let count = PASS_THROUGH
            .windows(MODE_MARKER.len())
            .filter(|window| *window == MODE_MARKER)
            .count();
        assert_eq!(count, 1);
        let pass = shim_object(false);
        let vary = shim_object(true);
        assert_eq!(pass.len(), vary.len());
        let differing: Vec<usize> = (0..pass.len()).filter(|&i| pass[i] != vary[i]).collect();
        assert_eq!(differing, vec![marker_offset() + MODE_MARKER.len() - 1]);
        assert_eq!(vary[differing[0]], b'1');
    }
}
