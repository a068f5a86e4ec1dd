//! Replays every committed input through its harness: the seed corpora
//! (`fuzz/corpus/TARGET/`) and every input a fuzzing run found a crash or hang with
//! (`fuzz/regressions/TARGET/`, kept forever as regression tests).
use std::path::{Path, PathBuf};

use hermetic_fuzz_harness::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus_and_replays_it_and_its_regressions() {
    for (target, harness) in TARGETS {
        let seeds = inputs("corpus", target);
        assert!(
            seeds.len() >= 3,
            "fuzz/corpus/{target} has {} seeds: make them with \
             `cargo run -p hermetic-fuzz-harness --example seeds`",
            seeds.len()
        );
        for seed in &seeds {
            // A panic names the file through the test's output.
            eprintln!("{target}: {}", seed.display());
            let accepted = harness(&std::fs::read(seed).unwrap());
            assert!(accepted, "the seed {} is not a valid input", seed.display());
        }
        for regression in inputs("regressions", target) {
            eprintln!("{target}: {}", regression.display());
            harness(&std::fs::read(&regression).unwrap());
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let targets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/fuzz_targets");
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets/Cargo.toml"),
    )
    .unwrap();
    for (target, _) in TARGETS {
        let source = std::fs::read_to_string(targets_dir.join(format!("{target}.rs")))
            .unwrap_or_else(|err| panic!("fuzz/targets/fuzz_targets/{target}.rs: {err}"));
        assert!(
            source.contains(&format!("hermetic_fuzz_harness::{target}(")),
            "fuzz/targets/fuzz_targets/{target}.rs does not call its harness"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/targets/Cargo.toml has no [[bin]] {target}"
        );
    }
}
