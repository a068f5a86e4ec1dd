use crate::support::{assert_status, hermetic, stderr, Source};

fn build(src: &Source, artifact: &std::path::Path, script: &str) -> std::process::Output {
    hermetic()
        .args(["build", "--single", "--json", "--src"])
        .arg(src.path())
        .arg("--artifact")
        .arg(artifact)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("spawn hermetic")
}

#[test]
fn the_json_report_has_the_documented_fields() {
    let src = Source::new(&[]);
    let out = tempfile::tempdir().unwrap();
    let artifact = out.path().join("a.tar.zst");
    let output = build(
        &src,
        &artifact,
        "mkdir -p out/sub && echo hi > out/sub/f && ln -s sub/f out/link",
    );
    assert_status(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["schema"], "hermetic.build/v1");
    assert_eq!(report["verdict"], "built");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["runs"][0]["exit_status"], 0);
    assert!(report["runs"][0]["duration_ms"].is_u64());
    assert_eq!(report["output"]["archive"], artifact.to_str().unwrap());
    let bytes = std::fs::read(&artifact).unwrap();
    assert_eq!(report["output"]["digest"]["sha256"], hex_sha256(&bytes));
    assert_eq!(
        report["output"]["digest"]["blake3"],
        blake3::hash(&bytes).to_hex().as_str()
    );
    let files = report["output"]["files"].as_array().unwrap();
    let link = files.iter().find(|f| f["path"] == "out/link").unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "sub/f");
    let file = files.iter().find(|f| f["path"] == "out/sub/f").unwrap();
    assert_eq!(file["blake3"], blake3::hash(b"hi\n").to_hex().as_str());
    assert_eq!(report["sandbox"]["landlock_abi"], 6);
    assert_eq!(report["pins"]["source_date_epoch"], 315532800);
}

#[test]
fn the_archive_is_deterministic_across_builds_that_differ_in_time_order_and_modes() {
    let src = Source::new(&[]);
    let out = tempfile::tempdir().unwrap();
    // Same content, created in a different order, at different times, with other umasks
    // and write bits: the archive must not change.
    let first = "mkdir -p out/d && echo 1 > out/d/one && echo 2 > out/two && chmod 600 out/two";
    let second = "umask 077; mkdir -p out && echo 2 > out/two && sleep 1.1 && mkdir out/d && echo 1 > out/d/one && chmod 644 out/two && touch -d @0 out/d/one";
    let a = build(&src, &out.path().join("a.tar.zst"), first);
    let b = build(&src, &out.path().join("b.tar.zst"), second);
    assert_status(&a, 0);
    assert_status(&b, 0);
    assert_eq!(
        std::fs::read(out.path().join("a.tar.zst")).unwrap(),
        std::fs::read(out.path().join("b.tar.zst")).unwrap()
    );
}

#[test]
fn archive_entries_are_normalised() {
    let src = Source::new(&[]);
    let out = tempfile::tempdir().unwrap();
    let artifact = out.path().join("n.tar.zst");
    let output = build(
        &src,
        &artifact,
        "mkdir -p out && echo x > out/f && chmod 700 out/f && echo y > out/g && chmod 640 out/g",
    );
    assert_status(&output, 0);
    let mut archive =
        tar::Archive::new(zstd::Decoder::new(std::fs::File::open(&artifact).unwrap()).unwrap());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        seen.push((
            entry.path().unwrap().display().to_string(),
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
            header.mtime().unwrap(),
        ));
    }
    assert_eq!(
        seen,
        [
            ("out".to_string(), 0o755, 0, 0, 315532800),
            ("out/f".to_string(), 0o755, 0, 0, 315532800),
            ("out/g".to_string(), 0o644, 0, 0, 315532800),
        ]
    );
}

#[test]
fn a_missing_output_fails_the_build_with_a_clear_message_and_no_archive() {
    let src = Source::new(&[]);
    let out = tempfile::tempdir().unwrap();
    let artifact = out.path().join("m.tar.zst");
    let output = build(&src, &artifact, "echo no outputs here");
    assert_status(&output, 1);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("`out` does not exist"),
        "{report}"
    );
    assert!(!artifact.exists());
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "no partial archive is left behind: {}",
        stderr(&output)
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
