//! What a dual run reports beyond the verdict: the kept (and flagged) archive, digests of
//! every run and of both sides of a difference, --explain, and what was varied.
use sha2::Digest as _;

use crate::harness::{archived_files, Build};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_nondeterministic_archive_is_kept_flagged_with_the_digests_of_every_run() {
    let dual = Build::new("clock_nanoseconds").run();
    dual.assert_nondeterministic(&["out/stamp"]);
    let output = &dual.report["output"];
    assert_eq!(output["archive"], dual.artifact.to_str().unwrap());
    assert_eq!(output["flagged"], "nondeterministic");
    let bytes = std::fs::read(&dual.artifact).unwrap();
    assert_eq!(output["digest"]["sha256"], sha256_hex(&bytes));
    assert_eq!(
        output["digest"]["blake3"],
        blake3::hash(&bytes).to_hex().as_str()
    );
    assert_eq!(output["size"], bytes.len() as u64);

    // The kept archive is run a's; b's differs; every run has its timings.
    let runs = dual.runs();
    assert_eq!(runs[0]["output_digest"], output["digest"]);
    assert_ne!(runs[1]["output_digest"], output["digest"]);
    for run in runs {
        assert!(run["duration_ms"].is_u64(), "{run}");
        assert!(run["output_digest"]["sha256"].is_string(), "{run}");
    }

    // The difference names both sides; side a is the file in the kept archive.
    let difference = dual.difference("out/stamp");
    assert_eq!(difference["kind"], "content");
    let (a, b) = (
        difference["digest_a"].as_str().unwrap(),
        difference["digest_b"].as_str().unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(b.len(), 64);
    let stamp = &archived_files(&dual.artifact)["out/stamp"];
    assert_eq!(a, blake3::hash(stamp).to_hex().as_str());
    let listed = output["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "out/stamp")
        .unwrap();
    assert_eq!(listed["blake3"], a);

    // Only the kept archive is left: no run-b/run-c archives, no partial files.
    assert_eq!(
        dual.artifact_dir_entries(),
        ["clock_nanoseconds.tar.zst".to_string()].into()
    );
}

#[test]
fn explain_writes_diffoscopes_report_next_to_the_artifact() {
    assert!(
        std::path::Path::new("/usr/bin/diffoscope").exists(),
        "this test needs diffoscope: run scripts/test-setup.sh"
    );
    let dual = Build::new("clock_nanoseconds").explain().run();
    dual.assert_nondeterministic(&["out/stamp"]);
    let path = dual.report["explain_report"]
        .as_str()
        .unwrap_or_else(|| panic!("no explain_report\n{}", dual.context()));
    let artifact = dual.artifact.to_str().unwrap();
    assert_eq!(path, format!("{artifact}.diffoscope.txt"));
    let text = std::fs::read_to_string(path).expect("the report exists");
    // diffoscope's text report: a header naming both trees, then the differing file.
    assert!(text.starts_with("--- "), "{text}");
    assert!(text.contains("out/stamp"), "{text}");
    assert_eq!(dual.artifact_dir_entries().len(), 2, "archive and report");
}

#[test]
fn without_diffoscope_explain_writes_the_built_in_summary() {
    // A PATH with the tools the CLI needs and no diffoscope.
    let tools = tempfile::tempdir().unwrap();
    let dual = Build::new("clock_nanoseconds")
        .explain()
        .host_path(tools.path().to_str().unwrap())
        .run();
    dual.assert_nondeterministic(&["out/stamp"]);
    let path = dual.report["explain_report"]
        .as_str()
        .unwrap_or_else(|| panic!("no explain_report\n{}", dual.context()));
    assert_eq!(
        path,
        format!("{}.explain.txt", dual.artifact.to_str().unwrap())
    );
    let text = std::fs::read_to_string(path).expect("the report exists");
    assert!(text.contains("install diffoscope"), "{text}");
    assert!(text.contains("== out/stamp"), "{text}");
    assert!(text.contains("first difference at byte"), "{text}");
    assert_eq!(dual.artifact_dir_entries().len(), 2, "archive and report");
}

#[test]
fn without_explain_there_is_no_report() {
    let dual = Build::new("pid").run();
    dual.assert_nondeterministic(&["out/pid"]);
    assert!(dual.report.get("explain_report").is_none());
    assert_eq!(dual.artifact_dir_entries().len(), 1);
}

#[test]
fn the_varied_run_names_every_variation() {
    let dual = Build::new("sde_dates").run();
    dual.assert_reproducible();
    assert_eq!(
        dual.varied(),
        [
            "clock",
            "directory-order",
            "inode-numbers",
            "pids",
            "cpu-placement",
            "aslr"
        ]
    );
    for what in dual.varied() {
        assert!(!dual.how(what).is_empty(), "{what}");
    }
    // Reported even when reproducible; the archive is not flagged.
    assert_eq!(
        dual.report["output"]["archive"],
        dual.artifact.to_str().unwrap()
    );
}

#[test]
fn the_varied_clock_is_shifted_200_days_and_listings_reversed() {
    let dual = Build::new("sde_dates").run();
    assert!(
        dual.how("clock").starts_with("shifted +200 days"),
        "{}",
        dual.how("clock")
    );
    assert!(dual
        .how("directory-order")
        .contains("directories the build creates"));
}

#[test]
fn the_human_summary_lists_paths_and_causes() {
    let dual = Build::new("pid").human().run();
    assert_eq!(dual.code, Some(3), "{}", dual.context());
    assert!(
        dual.stdout.contains(
            "nondeterministic: 1 path(s) differ between the canonical and the varied run"
        ),
        "{}",
        dual.context()
    );
    assert!(
        dual.stdout.contains("out/pid") && dual.stdout.contains("variation-sensitive"),
        "{}",
        dual.context()
    );
    assert!(dual
        .stdout
        .contains("varied: clock, directory-order, inode-numbers, pids, cpu-placement, aslr"));
    assert!(dual.artifact.is_file());
}
