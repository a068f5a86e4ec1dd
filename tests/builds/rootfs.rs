//! A profile that uses a root filesystem directory instead of the host's /usr.
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::{assert_status, default_profile_text, hermetic, stdout, Source};

/// A minimal rootfs: a static busybox and the applets the test uses.
fn busybox_rootfs(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "this test needs busybox-static (apt-get install busybox-static; .ci/run installs it)"
    );
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "id", "ls", "mkdir"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/os-release"), "ID=tiny\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "intruder:x:0:0::/:/bin/sh\n").unwrap();
}

fn rootfs_profile(src: &Source) -> String {
    let text = default_profile_text();
    let start = text.find("[root]").unwrap();
    let end = text.find("[identity]").unwrap();
    let profile = format!(
        "{}[root]\nmode = \"rootfs\"\nrootfs = \"rootfs\"\n\n{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(src.join("tiny.toml"), profile).unwrap();
    src.join("tiny.toml").display().to_string()
}

#[test]
fn a_rootfs_profile_shows_the_rootfs_and_records_its_digest() {
    let src = Source::new(&[]);
    busybox_rootfs(&src.join("rootfs"));
    let profile = rootfs_profile(&src);
    let output = hermetic()
        .args(["run", "--profile", &profile, "--src"])
        .arg(src.path())
        .args([
            "--",
            "sh",
            "-c",
            "cat /etc/os-release; id -u; ls /usr 2>&1 || echo no-usr; cat /etc/passwd | cat",
        ])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let seen = stdout(&output);
    assert!(seen.starts_with("ID=tiny\n1000\n"), "{seen}");
    assert!(
        seen.contains("no-usr"),
        "the host's /usr is not visible: {seen}"
    );
    assert!(
        seen.contains("build:x:1000:1000") && !seen.contains("intruder"),
        "the synthetic passwd wins: {seen}"
    );

    let digest = |src: &Source| -> String {
        let out = tempfile::tempdir().unwrap();
        let output = hermetic()
            .args([
                "build",
                "--single",
                "--json",
                "--profile",
                &profile,
                "--src",
            ])
            .arg(src.path())
            .arg("--artifact")
            .arg(out.path().join("a.tar.zst"))
            .args(["--", "sh", "-c", "mkdir out && echo x > out/x"])
            .output()
            .unwrap();
        assert_status(&output, 0);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["profile"]["rootfs_blake3"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = digest(&src);
    assert_eq!(before.len(), 64);
    assert_eq!(before, digest(&src), "the digest is stable");
    std::fs::write(src.join("rootfs/etc/os-release"), "ID=changed\n").unwrap();
    assert_ne!(
        before,
        digest(&src),
        "the digest follows the rootfs content"
    );
}
