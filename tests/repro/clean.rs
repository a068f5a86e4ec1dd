//! Well-behaved builds: everything they record is pinned or normalised, so the varied run
//! must agree with the canonical one (a difference here is a false positive).
use crate::harness::Build;

/// The varied run's mechanism adds nothing to the environment (a faked clock via
/// libfaketime used to add FAKETIME_SHARED).
#[test]
fn env_recorded() {
    Build::new("env_recorded").run().assert_reproducible();
}

/// The shim that varies run b is loaded by run a too, so neither its preload file nor its
/// mapping tells the runs apart.
#[test]
fn sandbox_files() {
    Build::new("sandbox_files").run().assert_reproducible();
}

#[test]
fn identity_paths() {
    Build::new("identity_paths").run().assert_reproducible();
}

#[test]
fn umask_modes() {
    Build::new("umask_modes").run().assert_reproducible();
}

#[test]
fn locale_tz() {
    Build::new("locale_tz").run().assert_reproducible();
}

#[test]
fn sde_dates() {
    Build::new("sde_dates").run().assert_reproducible();
}

#[test]
fn gcc_sde() {
    Build::new("gcc_sde").run().assert_reproducible();
}

#[test]
fn python_bytecode() {
    let dual = Build::new("python_bytecode").run();
    dual.assert_reproducible();
    // Both flavours are checked-hash .pyc files (flags word 3 at offset 4), so no mtime.
    let files = crate::harness::archived_files(&dual.artifact);
    for pyc in ["out/default/geometry.pyc", "out/checked/geometry.pyc"] {
        let header = files
            .get(pyc)
            .unwrap_or_else(|| panic!("{pyc} is missing\n{}", dual.context()));
        assert_eq!(
            header[4..8],
            3u32.to_le_bytes(),
            "{pyc} is not checked-hash"
        );
    }
}

#[test]
fn tar_gzip_normalised() {
    Build::new("tar_gzip_normalised")
        .run()
        .assert_reproducible();
}

#[test]
fn zip_normalised() {
    Build::new("zip_normalised").run().assert_reproducible();
}

#[test]
fn unordered_creation() {
    let dual = Build::new("unordered_creation").run();
    dual.assert_reproducible();
    let files = dual.report["output"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 22, "out, out/parts and 20 parts");
}

#[test]
fn cpu_count() {
    // The strict profile (1 CPU): the varied run is placed on another core, and the count
    // the build sees must not change with it.
    let dual = Build::new("cpu_count").profile("strict").run();
    dual.assert_reproducible();
}

#[test]
fn python_hashseed() {
    Build::new("python_hashseed").run().assert_reproducible();
}

#[test]
fn make_parallel() {
    Build::new("make_parallel").run().assert_reproducible();
}

#[test]
fn network_denied() {
    let dual = Build::new("network_denied").run();
    dual.assert_reproducible();
    let files = crate::harness::archived_files(&dual.artifact);
    assert_eq!(files["out/source"], b"offline\n");
}

/// The time namespace starts CLOCK_MONOTONIC near zero in every run, so "hours since
/// boot" is pinned.
#[test]
fn uptime_hours() {
    Build::new("uptime_hours").run().assert_reproducible();
}
