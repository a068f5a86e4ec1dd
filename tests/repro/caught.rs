//! Sources of nondeterminism a dual run catches. The suspected cause tells which kind:
//! "intrinsic-randomness" when two canonical runs (a and c) already differ,
//! "variation-sensitive" when only the varied run (b) does, "timestamp-leak" when the file
//! holds a value from its run's time window.
//!
//! Second-resolution sources are caught by the varied clock, but a and c can also land in
//! different seconds, so their noise cause is checked to be one of the two, not which.
use crate::harness::{Build, NOISE_CAUSES};

#[test]
fn clock_nanoseconds() {
    let dual = Build::new("clock_nanoseconds").run();
    dual.assert_nondeterministic(&["out/stamp"]);
    dual.assert_causes(&["out/stamp"], &["intrinsic-randomness"]);
}

#[test]
fn clock_seconds() {
    let dual = Build::new("clock_seconds").run();
    dual.assert_nondeterministic(&["out/stamp"]);
    let leak = dual
        .timestamp_leak("out/stamp")
        .unwrap_or_else(|| panic!("no timestamp-leak\n{}", dual.context()));
    assert_eq!(leak["run"], "a");
    assert_eq!(leak["encoding"], "decimal");
    assert_eq!(leak["offset"], 0);
    assert!(NOISE_CAUSES.contains(&dual.noise_cause("out/stamp")));
}

#[test]
fn clock_day() {
    let dual = Build::new("clock_day").run();
    dual.assert_nondeterministic(&["out/built-on"]);
    dual.assert_causes(&["out/built-on"], &["variation-sensitive"]);
}

#[test]
fn gzip_mtime() {
    let dual = Build::new("gzip_mtime").run();
    dual.assert_nondeterministic(&["out/notes.txt.gz"]);
    // The gzip header's MTIME field: 4 bytes, little-endian, at offset 4.
    let leak = dual
        .timestamp_leak("out/notes.txt.gz")
        .unwrap_or_else(|| panic!("no timestamp-leak\n{}", dual.context()));
    assert_eq!(leak["run"], "a");
    assert_eq!(leak["encoding"], "u32-little-endian");
    assert_eq!(leak["offset"], 4);
    assert!(NOISE_CAUSES.contains(&dual.noise_cause("out/notes.txt.gz")));
}

#[test]
fn tar_mtime() {
    let dual = Build::new("tar_mtime").run();
    dual.assert_nondeterministic(&["out/gen.tar"]);
    // tar writes mtimes in octal, which the timestamp scan does not read.
    assert!(NOISE_CAUSES.contains(&dual.noise_cause("out/gen.tar")));
}

/// Kernel-assigned mtimes listed by `ls`: the varied run starts more than two seconds later.
#[test]
fn listing_mtime() {
    let dual = Build::new("listing_mtime").run();
    dual.assert_nondeterministic(&["out/listing"]);
}

#[test]
fn readdir_order() {
    let dual = Build::new("readdir_order").run();
    let unsorted = [
        "out/data.tar",
        "out/find.txt",
        "out/listdir.txt",
        "out/ls-U.txt",
    ];
    // out/sorted.txt (plain ls) is in the output and does not differ.
    dual.assert_nondeterministic(&unsorted);
    dual.assert_causes(&unsorted, &["variation-sensitive"]);
}

#[test]
fn pid() {
    let dual = Build::new("pid").run();
    dual.assert_nondeterministic(&["out/pid"]);
    // The pid namespace gives both canonical runs the same pids; only b's are offset.
    dual.assert_causes(&["out/pid"], &["variation-sensitive"]);
}

#[test]
fn random() {
    let dual = Build::new("random").run();
    let paths = ["out/random", "out/tmpname", "out/uuid"];
    dual.assert_nondeterministic(&paths);
    dual.assert_causes(&paths, &["intrinsic-randomness"]);
}

#[test]
fn lto_seed() {
    let dual = Build::new("lto_seed").run();
    // out/seeded.o (-frandom-seed) does not differ.
    dual.assert_nondeterministic(&["out/unseeded.o"]);
    dual.assert_causes(&["out/unseeded.o"], &["intrinsic-randomness"]);
}

#[test]
fn hash_order() {
    let dual = Build::new("hash_order").run();
    // out/python-set (PYTHONHASHSEED=0) does not differ.
    dual.assert_nondeterministic(&["out/perl-keys"]);
    dual.assert_causes(&["out/perl-keys"], &["intrinsic-randomness"]);
}

#[test]
fn aslr_pointers() {
    let dual = Build::new("aslr_pointers").run();
    let paths = ["out/py-id", "out/stack-address"];
    dual.assert_nondeterministic(&paths);
    dual.assert_causes(&paths, &["intrinsic-randomness"]);
}

#[test]
fn struct_padding() {
    let dual = Build::new("struct_padding").run();
    dual.assert_nondeterministic(&["out/record.bin"]);
    dual.assert_causes(&["out/record.bin"], &["intrinsic-randomness"]);
    // Only the padding differs: the tag and the value are the same in every run.
    let record = &crate::harness::archived_files(&dual.artifact)["out/record.bin"];
    assert_eq!(record.len(), 16);
    assert_eq!(record[0], b'R');
    assert_eq!(record[8..], 42i64.to_ne_bytes());
}

#[test]
fn parallel_race() {
    let dual = Build::new("parallel_race").run();
    dual.assert_nondeterministic(&["out/log"]);
    dual.assert_causes(&["out/log"], &["intrinsic-randomness"]);
}

#[test]
fn cpu_placement() {
    let dual = Build::new("cpu_placement").profile("strict").run();
    assert!(
        dual.how("cpu-placement").starts_with("cores"),
        "the strict profile's one core should move in the varied run (needs 2 usable CPUs)\n{}",
        dual.context()
    );
    let paths = ["out/affinity", "out/cpus-allowed"];
    // out/nproc is pinned and does not differ.
    dual.assert_nondeterministic(&paths);
    dual.assert_causes(&paths, &["variation-sensitive"]);
}

#[test]
fn monotonic_clock() {
    let dual = Build::new("monotonic_clock").run();
    dual.assert_nondeterministic(&["out/monotonic"]);
    dual.assert_causes(&["out/monotonic"], &["intrinsic-randomness"]);
}

#[test]
fn inode_numbers() {
    let dual = Build::new("inode_numbers").run();
    // out/links does not differ.
    dual.assert_nondeterministic(&["out/inodes"]);
    dual.assert_causes(&["out/inodes"], &["variation-sensitive"]);
}

#[test]
fn signatures() {
    let dual = Build::new("signatures").run();
    // out/ed25519.sig and out/payload do not differ.
    dual.assert_nondeterministic(&["out/ecdsa.sig"]);
    dual.assert_causes(&["out/ecdsa.sig"], &["intrinsic-randomness"]);
}

/// zip's 2-second DOS times of build-created files: the varied run starts more than two
/// seconds later, so they always differ.
#[test]
fn zip_dos_times() {
    let dual = Build::new("zip_dos_times").run();
    dual.assert_nondeterministic(&["out/gen.zip"]);
}

/// A timestamp .pyc records its source's kernel mtime.
#[test]
fn pyc_timestamp() {
    let dual = Build::new("pyc_timestamp").run();
    dual.assert_nondeterministic(&["out/pkg/geometry.pyc"]);
}
