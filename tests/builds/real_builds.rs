use crate::support::{assert_status, hermetic, run_in, stdout, Source};

const MAKEFILE: &str = "hello: hello.c\n\tcc -O2 -o hello hello.c\n\nout/hello.txt: hello\n\tmkdir -p out\n\t./hello > out/hello.txt\n\tcp hello out/\n";
const HELLO_C: &str =
    "#include <stdio.h>\nint main(void) { printf(\"hello from %s\\n\", \"gcc\"); return 0; }\n";

fn build_json(
    src: &Source,
    artifact: &std::path::Path,
    command: &[&str],
    outputs: &[&str],
) -> serde_json::Value {
    let mut cmd = hermetic();
    cmd.args(["build", "--single", "--json", "--src"])
        .arg(src.path())
        .arg("--artifact")
        .arg(artifact);
    for output in outputs {
        cmd.args(["--output", output]);
    }
    let output = cmd
        .arg("--")
        .args(command)
        .output()
        .expect("spawn hermetic");
    assert_status(&output, 0);
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

fn file_paths(report: &serde_json::Value) -> Vec<String> {
    report["output"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn gcc_and_make_build_a_program_that_runs() {
    let src = Source::new(&[("Makefile", MAKEFILE), ("hello.c", HELLO_C)]);
    let out = tempfile::tempdir().unwrap();
    let artifact = out.path().join("hello.tar.zst");
    let report = build_json(&src, &artifact, &["make", "out/hello.txt"], &["out"]);
    assert_eq!(report["verdict"], "built");
    assert_eq!(file_paths(&report), ["out", "out/hello", "out/hello.txt"]);
    let hello = report["output"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "out/hello")
        .unwrap()
        .clone();
    assert_eq!(
        hello["mode"], 0o755,
        "the compiled program keeps its exec bit"
    );
    let extracted = out.path().join("x");
    let output = hermetic()
        .args(["build", "--single", "--src"])
        .arg(src.path())
        .arg("--artifact")
        .arg(out.path().join("again.tar.zst"))
        .arg("--extract")
        .arg(&extracted)
        .args(["--", "make", "out/hello.txt"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert_eq!(
        std::fs::read_to_string(extracted.join("out/hello.txt")).unwrap(),
        "hello from gcc\n"
    );
    let ran = std::process::Command::new(extracted.join("out/hello"))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&ran),
        "hello from gcc\n",
        "the program built in the sandbox runs on the host"
    );
}

#[test]
fn python_byte_compiles_reproducibly() {
    let src = Source::new(&[
        ("pkg/__init__.py", ""),
        ("pkg/mod.py", "VALUE = {'a': 1, 'b': 2}\n"),
    ]);
    let out = tempfile::tempdir().unwrap();
    let script = "python3 -m compileall -q --invalidation-mode checked-hash pkg && mkdir -p out && cp -r pkg out/";
    let first = build_json(
        &src,
        &out.path().join("a.tar.zst"),
        &["sh", "-c", script],
        &["out"],
    );
    let second = build_json(
        &src,
        &out.path().join("b.tar.zst"),
        &["sh", "-c", script],
        &["out"],
    );
    let paths = file_paths(&first);
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("out/pkg/__pycache__/mod.cpython-") && p.ends_with(".pyc")),
        "{paths:?}"
    );
    assert_eq!(first["output"]["digest"], second["output"]["digest"]);
}

#[test]
fn tar_and_gzip_archives_are_created() {
    let src = Source::new(&[("data/a.txt", "alpha\n"), ("data/b.txt", "beta\n")]);
    let out = tempfile::tempdir().unwrap();
    let script = "mkdir -p out && tar --sort=name --mtime=@$SOURCE_DATE_EPOCH --owner=0 --group=0 --numeric-owner -cf out/data.tar data \
                  && gzip -n -k out/data.tar && gzip -t out/data.tar.gz && tar -tzf out/data.tar.gz > out/listing";
    let report = build_json(
        &src,
        &out.path().join("t.tar.zst"),
        &["sh", "-c", script],
        &["out"],
    );
    assert_eq!(
        file_paths(&report),
        ["out", "out/data.tar", "out/data.tar.gz", "out/listing"]
    );
    let extracted = out.path().join("x");
    let file = std::fs::File::open(out.path().join("t.tar.zst")).unwrap();
    let mut archive = tar::Archive::new(zstd::Decoder::new(file).unwrap());
    archive.unpack(&extracted).unwrap();
    assert_eq!(
        std::fs::read_to_string(extracted.join("out/listing")).unwrap(),
        "data/\ndata/a.txt\ndata/b.txt\n"
    );
}

/// A source that fits the pipe is written before the sandbox starts; a larger one is
/// streamed by a thread while init unpacks it. Both arrive byte for byte.
#[test]
fn sources_arrive_whole_whether_or_not_they_fit_the_pipe() {
    let large: String = (0..300_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let list = "find . -type f | sort | xargs sha256sum";
    for files in [
        vec![("small.txt", "content\n")],
        vec![
            ("small.txt", "content\n"),
            ("dir/large.txt", large.as_str()),
        ],
    ] {
        let src = Source::new(&files);
        let inside = run_in(&src, &[], &["sh", "-c", list]);
        assert_status(&inside, 0);
        let host = std::process::Command::new("sh")
            .args(["-c", list])
            .current_dir(src.path())
            .output()
            .unwrap();
        assert_eq!(stdout(&inside), stdout(&host));
        assert_eq!(stdout(&host).lines().count(), files.len());
    }
}
