//! The second run of a dual build: every pin identical, and varied what no pin can control
//! and what differs between machines anyway. The mechanism must not be visible to the
//! build as a difference in its inputs: no extra environment variable, no other path.
//!
//! - wall clock and directory order: the variation shim (`sandbox::shim`, preloaded in
//!   both runs of a host-toolchain sandbox through its own /etc/ld.so.preload, a
//!   pass-through in run a) shifts
//!   every wall-clock read and every file time read back by [`SHIFT_DAYS`] days in run b,
//!   and reverses every directory listing (the source tree's and those the build creates),
//!   so both runs start together. Static and non-glibc binaries do not load it. An image
//!   whose glibc can load the shim (`sandbox::shim::loads_in`) gets it as the host
//!   does. A rootfs sandbox (whose libc is unknown) and an image without such a glibc
//!   (musl, static) get no shim: run b starts [`START_OFFSET_MS`] later, a real offset
//!   every clock obeys, with its source tree streamed in reverse order, and `varied[]`
//!   says what was not varied there;
//! - inode numbers: run b uses up a seeded number of inode numbers on the build dir's and
//!   /tmp's file systems first;
//! - pids: the build's first pid is offset;
//! - CPU placement: another set of cores where the host has enough;
//! - ASLR: both runs randomise independently (it is never disabled).
use crate::sandbox::plan::choose_cpus;
use crate::sandbox::shim::{SHIFT_DAYS, SHIM_PATH};
use crate::sandbox::spec::{RootSpec, SandboxSpec, Variation};

/// How much later run b starts in a rootfs sandbox: more than two seconds, so
/// second-resolution timestamps, 2-second zip times and kernel-assigned file times always
/// differ between the runs even where the shim is not loaded.
pub const START_OFFSET_MS: u64 = 2_100;

pub use hermetic_contract::report::Varied;

/// The second run's spec and how it differs.
pub struct SecondRun {
    pub spec: SandboxSpec,
    pub varied: Vec<Varied>,
    /// How much later than run a this run starts.
    pub start_delay_ms: u64,
}

/// The canonical run of a dual build: the planned spec, plus the shim as a pass-through in
/// a host-toolchain sandbox, so that run a and run b show the same files. Only dual
/// builds get it: `hermetic run` and single builds keep an /etc without ld.so.preload
/// (a preloaded library breaks tools that must be loaded first, such as ASan's runtime).
/// The shim is built against the host's glibc; a rootfs may carry another libc or none,
/// and an image gets it only where its glibc can load it.
pub fn canonical_run(planned: &SandboxSpec) -> SandboxSpec {
    let mut spec = planned.clone();
    // Only a dual build reads the image's libc, here.
    let shim_loads = match &spec.root {
        RootSpec::Host { .. } => true,
        RootSpec::Image { dir } => crate::sandbox::shim::loads_in(dir),
        RootSpec::Rootfs { .. } => false,
    };
    if shim_loads {
        spec.preload_shim = true;
        spec.etc_files
            .push(("ld.so.preload".into(), format!("{SHIM_PATH}\n")));
    }
    spec
}

/// Derives the second run from the canonical spec (as `canonical_run` made it). `seed` picks the offsets (any value
/// works; the report records what was used).
pub fn second_run(canonical: &SandboxSpec, seed: u64) -> SecondRun {
    let mut spec = canonical.clone();
    let mut varied = Vec::new();

    let shim = canonical.preload_shim;
    spec.variation = Variation {
        reverse_source_order: !shim,
        pid_offset: Some(300 + (seed % 700) as u32),
        vary_shim: shim,
        inode_offset: Some(1000 + (seed % 1000) as u32),
    };
    let (clock, order, start_delay_ms) = if shim {
        (
            format!("shifted +{SHIFT_DAYS} days for every dynamically linked glibc program (wall-clock reads, and file times read back)"),
            "every directory listing reversed (the source tree and directories the build creates)",
            0,
        )
    } else {
        let (why, order) = match canonical.root {
            RootSpec::Image { .. } => (
                "this image has no glibc that can load the variation shim (musl or static): the clock is not shifted",
                "source tree enumerated in reverse order (not varied in this image: listings of directories the build creates, which the shim reverses)",
            ),
            _ => (
                "rootfs sandbox: the shim is not loaded",
                "source tree enumerated in reverse order (rootfs sandbox: directories the build creates are not varied)",
            ),
        };
        (
            format!("started {START_OFFSET_MS} ms after run a ({why}; day-resolution dates are not varied)"),
            order,
            START_OFFSET_MS,
        )
    };
    varied.push(Varied {
        what: "clock".into(),
        how: clock,
    });
    varied.push(Varied {
        what: "directory-order".into(),
        how: order.into(),
    });
    varied.push(Varied {
        what: "inode-numbers".into(),
        how: format!(
            "{} inode numbers used up in the build dir and /tmp before the source is copied",
            spec.variation.inode_offset.unwrap_or_default()
        ),
    });
    varied.push(Varied {
        what: "pids".into(),
        how: format!(
            "build processes start at pid {}",
            spec.variation.pid_offset.unwrap_or_default() + 1
        ),
    });

    let count = canonical.cpu_set.len();
    match choose_cpus(count, count) {
        Ok(cpus) if cpus != canonical.cpu_set => {
            varied.push(Varied { what: "cpu-placement".into(), how: format!("cores {cpus:?} instead of {:?}", canonical.cpu_set) });
            spec.cpu_set = cpus;
        }
        _ => varied.push(Varied {
            what: "cpu-placement".into(),
            how: format!("not varied: the build uses {count} of the host's usable cores, none left to move to"),
        }),
    }
    varied.push(Varied {
        what: "aslr".into(),
        how: "independent address-space randomisation in each run".into(),
    });
    SecondRun {
        spec,
        varied,
        start_delay_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(root: RootSpec) -> SandboxSpec {
        let mut spec = crate::sandbox::launch::tests::default_spec();
        spec.root = root;
        spec
    }

    fn clock(second: &SecondRun) -> &str {
        &second
            .varied
            .iter()
            .find(|v| v.what == "clock")
            .unwrap()
            .how
    }

    #[test]
    fn a_glibc_image_gets_the_shim_and_another_image_says_what_it_did_not_vary() {
        // The host's root has the glibc the shim was built against; an empty tree none.
        let glibc = canonical_run(&planned(RootSpec::Image { dir: "/".into() }));
        assert!(glibc.preload_shim);
        let second = second_run(&glibc, 7);
        assert!(second.spec.variation.vary_shim);
        assert_eq!(second.start_delay_ms, 0);
        assert!(clock(&second).starts_with("shifted"), "{}", clock(&second));

        let empty = tempfile::tempdir().unwrap();
        let musl = canonical_run(&planned(RootSpec::Image {
            dir: empty.path().to_path_buf(),
        }));
        assert!(!musl.preload_shim);
        assert!(!musl
            .etc_files
            .iter()
            .any(|(name, _)| name == "ld.so.preload"));
        let second = second_run(&musl, 7);
        assert!(!second.spec.variation.vary_shim);
        assert!(second.spec.variation.reverse_source_order);
        assert_eq!(second.start_delay_ms, START_OFFSET_MS);
        assert!(
            clock(&second).contains("no glibc that can load the variation shim"),
            "{}",
            clock(&second)
        );
    }
}
