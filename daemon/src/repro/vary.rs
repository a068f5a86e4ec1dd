//! The second run of a dual build: every pin identical, and varied what no pin can control
//! and what differs between machines anyway. The mechanism must not be visible to the
//! build as a difference in its inputs: no extra environment variable, no other path.
//!
//! - wall clock: run b starts [`START_OFFSET_MS`] after run a, a real offset, so every
//!   clock the build can read (vDSO, syscalls, kernel-assigned file times seen through any
//!   stat call) differs by more than two seconds. A faked clock (libfaketime) was tried
//!   and rejected: it exports FAKETIME_SHARED into the build's environment, shifts
//!   CLOCK_MONOTONIC, and misses fstatat/statx, so it both invents and hides differences.
//!   Dates formatted at day resolution are therefore not varied.
//! - directory order: the source tree is streamed in reverse order;
//! - pids: the build's first pid is offset;
//! - CPU placement: another set of cores where the host has enough;
//! - ASLR: both runs randomise independently (it is never disabled).
use serde::Serialize;

use crate::sandbox::plan::choose_cpus;
use crate::sandbox::spec::{SandboxSpec, Variation};

/// How much later run b starts: more than two seconds, so second-resolution timestamps,
/// 2-second zip times and kernel-assigned file times always differ between the runs.
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

    varied.push(Varied {
        what: "clock",
        how: format!(
            "started {START_OFFSET_MS} ms after run a (second-resolution times, zip times and kernel-assigned file times differ; day-resolution dates are not varied)"
        ),
    });

    spec.variation = Variation {
        reverse_source_order: true,
        pid_offset: Some(300 + (seed % 700) as u32),
    };
    varied.push(Varied {
        what: "directory-order",
        how: "source tree enumerated in reverse order".into(),
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
        start_delay_ms: START_OFFSET_MS,
    }
}
