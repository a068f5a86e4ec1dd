//! The second run of a dual build: every pin identical, and varied what no pin can control
//! and what differs between machines anyway. The mechanism must not be visible to the
//! build as a difference in its inputs: no extra environment variable, no other path.
//!
//! - wall clock and directory order: the variation shim (`sandbox::shim`, preloaded
//!   through the run's own /etc/ld.so.preload) shifts every wall-clock read and every file
//!   time read back by [`SHIFT_DAYS`] days, and reverses every directory listing (the
//!   source tree's and those the build creates), so both runs can start together. Static
//!   and non-glibc binaries do not load it; a rootfs sandbox (whose libc is unknown) also
//!   starts [`START_OFFSET_MS`] later, a real offset every clock obeys, and gets its
//!   source tree streamed in reverse order.
//! - pids: the build's first pid is offset;
//! - CPU placement: another set of cores where the host has enough;
//! - ASLR: both runs randomise independently (it is never disabled).
use serde::Serialize;

use crate::sandbox::plan::choose_cpus;
use crate::sandbox::shim::{SHIFT_DAYS, SHIM_PATH};
use crate::sandbox::spec::{RootSpec, SandboxSpec, Variation};

/// How much later run b starts in a rootfs sandbox: more than two seconds, so
/// second-resolution timestamps, 2-second zip times and kernel-assigned file times always
/// differ between the runs even where the shim is not loaded.
pub const START_OFFSET_MS: u64 = 2_100;

/// One thing the second run varied, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Varied {
    pub what: &'static str,
    pub how: String,
}

/// The second run's spec and how it differs.
pub struct SecondRun {
    pub spec: SandboxSpec,
    pub varied: Vec<Varied>,
    /// How much later than run a this run starts.
    pub start_delay_ms: u64,
}

/// Derives the second run from the canonical spec. `seed` picks the offsets (any value
/// works; the report records what was used).
pub fn second_run(canonical: &SandboxSpec, seed: u64) -> SecondRun {
    let mut spec = canonical.clone();
    let mut varied = Vec::new();

    let rootfs = matches!(canonical.root, RootSpec::Rootfs { .. });
    spec.etc_files
        .push(("ld.so.preload".into(), format!("{SHIM_PATH}\n")));
    spec.variation = Variation {
        reverse_source_order: rootfs,
        pid_offset: Some(300 + (seed % 700) as u32),
        vary_shim: true,
    };
    let clock = format!(
        "shifted +{SHIFT_DAYS} days for every dynamically linked glibc program (wall-clock reads and file times read back; the canonical run's clock is real)"
    );
    let (clock, start_delay_ms) = if rootfs {
        (
            format!("{clock}; also started {START_OFFSET_MS} ms after run a (rootfs sandbox)"),
            START_OFFSET_MS,
        )
    } else {
        (clock, 0)
    };
    varied.push(Varied {
        what: "clock",
        how: clock,
    });
    varied.push(Varied {
        what: "directory-order",
        how: "every directory listing reversed (the source tree and directories the build creates)"
            .into(),
    });
    varied.push(Varied {
        what: "pids",
        how: format!(
            "build processes start at pid {}",
            spec.variation.pid_offset.unwrap_or_default() + 1
        ),
    });

    let count = canonical.cpu_set.len();
    match choose_cpus(count, count) {
        Ok(cpus) if cpus != canonical.cpu_set => {
            varied.push(Varied { what: "cpu-placement", how: format!("cores {cpus:?} instead of {:?}", canonical.cpu_set) });
            spec.cpu_set = cpus;
        }
        _ => varied.push(Varied {
            what: "cpu-placement",
            how: format!("not varied: the build uses {count} of the host's usable cores, none left to move to"),
        }),
    }
    varied.push(Varied {
        what: "aslr",
        how: "independent address-space randomisation in each run".into(),
    });
    SecondRun {
        spec,
        varied,
        start_delay_ms,
    }
}
