//! The variation shim (engine/shim/vary.c, compiled by build.rs): preloaded into every
//! host-toolchain sandbox through that sandbox's own /etc/ld.so.preload. It is a
//! pass-through except in the second run of a dual build, where it shifts the wall clock
//! and the file times the build reads by [`SHIFT_DAYS`] days and reverses every directory
//! listing. See vary.c for what it wraps and why.
use std::borrow::Cow;
use std::path::Path;

use super::tree_path::resolve_in;

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

/// Where glibc's dynamic loader and libc are on x86_64 (FHS, Debian's multiarch, Fedora's
/// lib64).
const LOADER: &str = "lib64/ld-linux-x86-64.so.2";
const LIBC_PATHS: &[&str] = &[
    "lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "lib64/libc.so.6",
    "usr/lib64/libc.so.6",
];

/// Whether the shim can be preloaded in the root filesystem at `tree` (a stored image): it
/// has glibc's x86_64 loader, and a libc.so.6 that defines every symbol version the shim was linked against (a musl
/// or static image has neither; an older glibc lacks the newest version).
pub fn loads_in(tree: &Path) -> bool {
    let file_in_tree = |path: &str| resolve_in(tree, Path::new(path)).filter(|path| path.is_file());
    if file_in_tree(LOADER).is_none() {
        return false;
    }
    let needed = glibc_versions_needed();
    LIBC_PATHS
        .iter()
        .filter_map(|path| file_in_tree(path))
        .filter_map(|libc| std::fs::read(libc).ok())
        .any(|bytes| {
            // Version names are NUL-terminated strings of the library: one pass over it.
            let defined: std::collections::HashSet<&[u8]> = bytes
                .split(|&byte| byte == 0)
                .filter(|string| string.starts_with(b"GLIBC_"))
                .collect();
            needed
                .iter()
                .all(|version| defined.contains(version.as_bytes()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_glibc_loads_the_shim_and_a_tree_without_glibc_does_not() {
        assert!(loads_in(Path::new("/")), "the host's glibc built the shim");
        let empty = tempfile::tempdir().unwrap();
        assert!(!loads_in(empty.path()));
    }

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
