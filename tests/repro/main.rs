//! The reproducibility corpus: small builds in `corpus/<name>/build.sh`, one test each, run
//! through `hermetic build --json` (a dual run: canonical run a, varied run b, noise pass c
//! when they differ). Each test asserts the verdict, the exact set of differing paths and,
//! where it is stable, the suspected cause. Rows refer to the catalog in
//! docs/nondeterminism.md §2.
//!
//! Builds whose verdict would be wrong are marked `#[ignore = "bug: ..."]`: the test states
//! the right verdict and fails until hermetic is fixed. (None are, today.)
#[path = "../support/mod.rs"]
mod support;

/// Running a corpus build and reading its report.
mod harness;

/// Sources a dual run must catch: nondeterministic, with the differing paths and causes.
mod caught;
/// Well-behaved builds that must be reproducible (no false positives).
mod clean;
/// Builds that fail in both runs or in only one.
mod failures;
/// The report's contract: archive kept and flagged, digests, --explain, varied[].
mod report;

/// Every corpus build and the catalog row(s) it exercises. A build directory without an
/// entry here (or the reverse) fails [`every_corpus_build_is_listed`].
pub const CORPUS: &[(&str, &str)] = &[
    // caught
    ("clock_nanoseconds", "1: sub-second clock"),
    ("clock_seconds", "1: second-resolution clock"),
    (
        "clock_day",
        "2: build date from the clock, not SOURCE_DATE_EPOCH",
    ),
    ("gzip_mtime", "3: kernel mtime in a gzip header"),
    ("tar_mtime", "3: kernel mtimes in a tar"),
    ("readdir_order", "6: readdir order of the source tree"),
    ("pid", "22: pid"),
    ("random", "21: urandom, uuid4, mktemp name"),
    ("lto_seed", "21: GCC LTO without -frandom-seed"),
    ("hash_order", "20: Perl hash order (not pinned)"),
    ("aslr_pointers", "23: pointer values"),
    ("struct_padding", "24: uninitialised struct padding"),
    ("parallel_race", "19: concurrent appends"),
    ("cpu_placement", "18: cores the build runs on"),
    ("monotonic_clock", "monotonic clock, nanoseconds"),
    ("inode_numbers", "29: inode numbers"),
    ("signatures", "30: ECDSA signature nonce"),
    // clean
    ("env_recorded", "16: whole environment recorded"),
    (
        "sandbox_files",
        "the variation mechanism: /etc, /run, mapped files",
    ),
    (
        "identity_paths",
        "11-15, 17: paths, user, host, kernel name",
    ),
    ("umask_modes", "10: umask in modes"),
    (
        "locale_tz",
        "7-9: collation, messages, number format, time zone",
    ),
    ("sde_dates", "2, 9: dates from SOURCE_DATE_EPOCH"),
    ("gcc_sde", "2, 11: __DATE__/__TIME__, __FILE__, DWARF paths"),
    ("python_bytecode", "5: checked-hash .pyc"),
    ("tar_gzip_normalised", "3, 6: tar --sort --mtime, gzip -n"),
    ("zip_normalised", "4: zip with TZ, SOURCE_DATE_EPOCH, -X"),
    (
        "unordered_creation",
        "files in random order at varied times",
    ),
    ("cpu_count", "18: CPU count"),
    ("python_hashseed", "20: PYTHONHASHSEED"),
    ("make_parallel", "19: make -j, deterministic"),
    ("network_denied", "27: network fetch"),
    ("uptime_hours", "monotonic clock, hours"),
    // caught because the shim shifts file times read back
    ("listing_mtime", "3: kernel mtimes in a listing"),
    ("zip_dos_times", "3-4: kernel mtime in zip DOS times"),
    ("pyc_timestamp", "5: source mtime in a timestamp .pyc"),
    // failed
    ("fails_everywhere", "a build that fails"),
    (
        "fails_when_varied",
        "a build that fails only with the varied pids",
    ),
];

#[test]
fn every_corpus_build_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(harness::corpus_dir())
        .expect("read the corpus")
        .map(|e| {
            e.expect("a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    for name in &on_disk {
        assert!(
            harness::corpus_dir().join(name).join("build.sh").is_file(),
            "{name} has no build.sh"
        );
    }
}
