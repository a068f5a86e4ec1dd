//! The second run of a dual build: every pin identical, and varied what no pin can control
//! and what differs between machines anyway. The mechanism must not be visible to the
//! build as a difference in its inputs: no extra environment variable, no other path.
//!
//! - wall clock: libfaketime preloaded through the sandbox's own /etc/ld.so.preload and
//!   configured by /etc/faketimerc (both exist only in this run's synthetic /etc), shifted
//!   180-540 days like reprotest; it also shifts the file times the build reads back with
//!   stat. Without libfaketime the run starts later instead (a real offset).
//! - directory order: the source tree is copied in reverse order;
//! - pids: the build's first pid is offset;
//! - CPU placement: another set of cores where the host has enough;
//! - ASLR: both runs randomise independently (it is never disabled).
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sandbox::plan::choose_cpus;
use crate::sandbox::spec::{SandboxSpec, Variation};

/// Where distributions install libfaketime.
const FAKETIME_LIBRARIES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
];

/// The real start offset used when the clock cannot be shifted: more than one second, so
/// a second-resolution timestamp always differs.
pub const FALLBACK_START_DELAY_MS: u64 = 1_500;

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
    /// How far the build's clock is shifted (seconds), when it is.
    pub clock_shift_secs: Option<i64>,
    /// A real delay before starting, when the clock could not be shifted.
    pub start_delay_ms: u64,
}

/// Derives the second run from the canonical spec. `seed` picks the offsets (any value
/// works; the report records what was used).
pub fn second_run(canonical: &SandboxSpec, seed: u64) -> SecondRun {
    let mut spec = canonical.clone();
    let mut varied = Vec::new();

    let days = 180 + seed % 361;
    let (clock_shift_secs, start_delay_ms) = match faketime_library(canonical) {
        Some(library) => {
            spec.etc_files
                .push(("ld.so.preload".into(), format!("{}\n", library.display())));
            spec.etc_files
                .push(("faketimerc".into(), format!("+{days}d\n")));
            varied.push(Varied {
                what: "clock",
                how: format!("shifted +{days} days (libfaketime via the sandbox's /etc/ld.so.preload; file times read back are shifted too)"),
            });
            (Some(days as i64 * 86_400), 0)
        }
        None => {
            varied.push(Varied {
                what: "clock",
                how: format!("started {FALLBACK_START_DELAY_MS} ms later (libfaketime is not installed, so the clock could not be shifted)"),
            });
            (None, FALLBACK_START_DELAY_MS)
        }
    };

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
        clock_shift_secs,
        start_delay_ms,
    }
}

/// libfaketime as the sandbox will see it: only a host-toolchain sandbox binds the host's
/// /usr; a rootfs brings its own (or none).
fn faketime_library(spec: &SandboxSpec) -> Option<PathBuf> {
    use crate::sandbox::spec::RootSpec;
    let root = match &spec.root {
        RootSpec::Host { .. } => PathBuf::from("/"),
        RootSpec::Rootfs { dir } => dir.clone(),
    };
    FAKETIME_LIBRARIES
        .iter()
        .map(Path::new)
        .find(|library| {
            root.join(library.strip_prefix("/").unwrap_or(library))
                .is_file()
        })
        .map(Path::to_path_buf)
}
