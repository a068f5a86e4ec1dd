use std::path::Path;

use crate::support::{assert_status, default_profile_text, hermetic, stderr, Source};

/// `hermetic build --single` in `dir`, with its artifact there too.
fn build_in(dir: &Path, extra: &[&str], script: &str) -> std::process::Output {
    hermetic()
        .current_dir(dir)
        .args(["build", "--single", "--src", "."])
        .args(extra)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("spawn hermetic")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_missing_source_dir_is_refused() {
    let output = hermetic()
        .args([
            "build",
            "--single",
            "--src",
            "/nonexistent/src",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("/nonexistent/src"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_profile_is_refused_naming_the_known_ones() {
    let src = Source::new(&[]);
    let output = build_in(src.path(), &["--profile", "nope"], "true");
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("unknown profile `nope`") && stderr(&output).contains("default"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_malformed_profile_is_refused_with_its_location() {
    let src = Source::new(&[("bad.toml", "version = 1\n[root\nmode = \"host\"\n")]);
    let output = build_in(src.path(), &["--profile", "./bad.toml"], "true");
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("failed to parse profile ./bad.toml"),
        "{}",
        stderr(&output)
    );
    let check = hermetic()
        .args(["profile", "check"])
        .arg(src.join("bad.toml"))
        .output()
        .unwrap();
    assert_status(&check, 2);
}

#[test]
fn a_malformed_seccomp_policy_is_refused() {
    let profile =
        default_profile_text().replace("policy = \"default\"", "policy = \"broken.json\"");
    let src = Source::new(&[
        ("p.toml", &profile),
        ("broken.json", "{ \"allowlist\": [ }"),
    ]);
    let output = build_in(src.path(), &["--profile", "./p.toml"], "true");
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("broken.json"),
        "{}",
        stderr(&output)
    );
    let check = hermetic()
        .args(["profile", "check"])
        .arg(src.join("p.toml"))
        .output()
        .unwrap();
    assert_status(&check, 2);
    assert!(stderr(&check).contains("broken.json"), "{}", stderr(&check));
}

#[test]
fn profile_check_accepts_the_shipped_profiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    for name in ["default.toml", "strict.toml"] {
        let output = hermetic()
            .args(["profile", "check"])
            .arg(root.join(name))
            .output()
            .unwrap();
        assert_status(&output, 0);
    }
}

#[test]
fn output_paths_outside_the_build_dir_are_refused_before_anything_runs() {
    let src = Source::new(&[]);
    for bad in ["../x", "/etc", "out/../../x", "", "./out"] {
        let output = build_in(src.path(), &["--output", bad], "touch /build/ran");
        assert_status(&output, 2);
        assert!(
            stderr(&output).contains(&format!("--output {bad}")),
            "{bad}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        listing(src.path()),
        Vec::<String>::new(),
        "nothing was written on the host"
    );
}

#[test]
fn an_output_that_is_a_symlink_to_etc_is_refused() {
    let src = Source::new(&[]);
    let output = build_in(src.path(), &["--output", "out", "--json"], "ln -s /etc out");
    assert_status(&output, 1);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("symlink"),
        "{report}"
    );
    assert_eq!(
        listing(src.path()),
        Vec::<String>::new(),
        "no archive and nothing else on the host"
    );
}

#[test]
fn the_host_tree_is_never_modified_and_only_the_artifact_is_written() {
    let src = Source::new(&[("keep.txt", "original\n")]);
    let output = build_in(
        src.path(),
        &[],
        "echo changed > keep.txt; rm -f keep.txt; mkdir -p out; echo o > out/o",
    );
    assert_status(&output, 0);
    assert_eq!(
        std::fs::read_to_string(src.join("keep.txt")).unwrap(),
        "original\n"
    );
    assert_eq!(listing(src.path()), ["hermetic-out.tar.zst", "keep.txt"]);
}

#[test]
fn extract_refuses_an_existing_destination() {
    let src = Source::new(&[]);
    std::fs::create_dir(src.join("dest")).unwrap();
    let output = build_in(src.path(), &["--extract", "dest"], "mkdir -p out");
    assert_status(&output, 2);
    assert!(stderr(&output).contains("already exists"));
}

/// A source with a daemon's socket and an editor's fifo next to the files (docker's build
/// context and tar leave such files out): the build runs without them, the report names
/// them, and the cache key is computed over the same tree the build saw.
#[test]
fn sockets_and_fifos_in_the_source_are_left_out_and_reported() {
    let src = Source::new(&[("in.txt", "input\n")]);
    std::fs::create_dir(src.join("sub")).unwrap();
    nix::unistd::mkfifo(
        &src.join("sub/editor.fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("daemon.sock")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let build = || {
        hermetic()
            .args(["build", "--json", "--src"])
            .arg(src.path())
            .arg("--artifact")
            .arg(work.path().join("out.tar.zst"))
            .arg("--cache-dir")
            .arg(work.path().join("cache"))
            .arg("--state-dir")
            .arg(work.path().join("state"))
            .args([
                "--",
                "sh",
                "-c",
                "mkdir -p out && ls -R . > out/listing && test ! -e daemon.sock && test ! -e sub/editor.fifo",
            ])
            .output()
            .expect("spawn hermetic")
    };
    let output = build();
    assert_status(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["source_left_out"],
        serde_json::json!(["daemon.sock", "sub/editor.fifo"]),
        "{report}"
    );
    assert!(stderr(&output).contains("left out of the build dir"));
    assert_eq!(report["cache"]["stored"], true, "{report}");
    // The same tree gives the same key: a hit.
    let again: serde_json::Value = serde_json::from_slice(&build().stdout).unwrap();
    assert_eq!(again["cache"]["status"], "hit", "{again}");
}

/// An error names each cause once: the OS error under "failed to read profile" is printed
/// one time, not once by the message and again as its source.
#[test]
fn an_error_names_its_cause_once() {
    let output = hermetic()
        .args([
            "--no-daemon",
            "run",
            "--profile",
            "/nonexistent/profile.toml",
            "--",
            "true",
        ])
        .output()
        .expect("spawn hermetic");
    let text = stderr(&output);
    assert!(text.contains("/nonexistent/profile.toml"), "{text}");
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
}
