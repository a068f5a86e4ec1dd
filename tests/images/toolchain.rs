//! The real toolchain image: a Debian bookworm root with gcc and make made by mmdebstrap
//! (scripts/debian-toolchain-image.sh, cached under the target directory), imported by two
//! "runners" (two state directories), each building examples/hello in it. Both builds are
//! reproducible and give the same archive; the compiler is the image's; the host's /usr is
//! not seen; the variation shim loads in the image's glibc.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::fixture::Scratch;
use crate::support::{assert_status, hermetic, stderr, stdout};

/// The toolchain image's OCI layout, built on first use (a few minutes) and kept under the
/// target directory between test runs.
pub fn debian_layout() -> PathBuf {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_hermetic")).parent().unwrap();
    let dest = profile_dir.join("../images/debian-toolchain");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/debian-toolchain-image.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&dest)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/debian-toolchain-image.sh");
    assert_status(&output, 0);
    dest
}

/// `image import --allow-setuid` (Debian has su, passwd, ...) into `scratch`; the digest.
fn import(scratch: &Scratch, layout: &Path) -> String {
    let output = scratch.image(&[
        "import",
        "--json",
        "--allow-setuid",
        layout.to_str().unwrap(),
    ]);
    assert_status(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["digest"].as_str().unwrap().to_owned()
}

/// A file placed in the host's /usr/bin for the test's length (the test needs root).
struct HostMarker(PathBuf);

impl Drop for HostMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn examples_hello() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello")
}

#[test]
fn two_runners_build_examples_hello_in_the_debian_image_to_the_same_bytes() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test places a marker in the host's /usr/bin: run it as root"
    );
    let layout = debian_layout();
    let runners = [Scratch::new(), Scratch::new()];
    let digests: Vec<String> = runners
        .iter()
        .map(|runner| import(runner, &layout))
        .collect();
    assert_eq!(digests[0], digests[1], "both runners store one image");
    let image = format!("debian-toolchain@{}", digests[0]);

    // The compiler the build runs is the image's: its path inside, and the bytes of the
    // stored tree's copy; the host's /usr is not there.
    let marker = HostMarker(PathBuf::from(format!(
        "/usr/bin/hermetic-host-marker-{}",
        std::process::id()
    )));
    std::fs::write(&marker.0, b"host\n").unwrap();
    let probe = hermetic()
        .args(["run", "--image", &image, "--state-dir"])
        .arg(runners[0].state())
        .arg("--src")
        .arg(examples_hello())
        .args(["--", "sh", "-c"])
        .arg(format!(
            "cc=$(readlink -f \"$(command -v cc)\"); echo $cc; sha256sum $cc | cut -d' ' -f1; \
             cat /etc/debian_version; test -e {} && echo marker present || echo marker absent",
            marker.0.display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&probe, 0);
    let lines: Vec<String> = stdout(&probe).lines().map(str::to_owned).collect();
    let tree = runners[0]
        .state()
        .join("images/sha256")
        .join(&digests[0]["sha256:".len()..])
        .join("rootfs");
    let compiler = tree.join(lines[0].trim_start_matches('/'));
    let stored = sha256_hex(&std::fs::read(&compiler).unwrap());
    assert_eq!(
        lines[1],
        stored,
        "the compiler run is the image's {}",
        compiler.display()
    );
    assert_eq!(
        lines[2],
        std::fs::read_to_string(tree.join("etc/debian_version"))
            .unwrap()
            .trim()
    );
    assert_eq!(lines[3], "marker absent", "{}", stderr(&probe));

    let mut outputs = Vec::new();
    for runner in &runners {
        let output = hermetic()
            .args(["build", "--json", "--image", &image, "--state-dir"])
            .arg(runner.state())
            .arg("--src")
            .arg(examples_hello())
            .arg("--artifact")
            .arg(runner.path("hello.tar.zst"))
            .args(["--", "make"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_status(&output, 0);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["verdict"], "reproducible", "{report:#}");
        assert_eq!(report["image"]["digest"], digests[0].as_str());
        // glibc image: run b's clock was shifted by the shim, as on the host.
        let clock = report["varied"]
            .as_array()
            .unwrap()
            .iter()
            .find(|varied| varied["what"] == "clock")
            .unwrap();
        assert!(
            clock["how"].as_str().unwrap().starts_with("shifted"),
            "{clock:#}"
        );
        outputs.push(report["output"]["digest"].clone());
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the second runner built the same archive"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
