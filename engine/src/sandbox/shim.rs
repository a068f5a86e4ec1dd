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

/// The glibc symbol versions the shim was linked against (`GLIBC_2.34`, ...), read from
/// its version-needed strings: an image's libc must define them all for it to load.
pub fn glibc_versions_needed() -> Vec<String> {
    const PREFIX: &[u8] = b"GLIBC_";
    let mut versions: Vec<String> = Vec::new();
    let mut at = 0;
    while let Some(found) = PASS_THROUGH[at..]
        .windows(PREFIX.len())
        .position(|window| window == PREFIX)
    {
        let start = at + found;
        let end = PASS_THROUGH[start..]
            .iter()
            .position(|&byte| byte == 0)
            .map_or(PASS_THROUGH.len(), |length| start + length);
        let name = &PASS_THROUGH[start..end];
        let digits = &name[PREFIX.len()..];
        if !digits.is_empty() && digits.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            let name = String::from_utf8_lossy(name).into_owned();
            if !versions.contains(&name) {
                versions.push(name);
            }
        }
        at = start + PREFIX.len();
    }
    versions.sort();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_needs_glibc_symbol_versions() {
        let needed = glibc_versions_needed();
        assert!(
            needed.iter().any(|version| version == "GLIBC_2.2.5"),
            "{needed:?}"
        );
    }

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
