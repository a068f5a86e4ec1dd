//! The oracle: for the fixture layouts, hermetic's stored tree and the rootfs
//! `umoci raw unpack --rootless` makes agree on every name, type, mode, content and link
//! target.
use std::path::PathBuf;
use std::process::Command;

use crate::fixture::{base_image, describe_tree, tool, Compression, Scratch};

fn umoci_unpack(layout: &std::path::Path, tag: &str, dest: &std::path::Path) {
    let output = Command::new(tool("umoci"))
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(dest)
        .output()
        .expect("run umoci");
    assert!(
        output.status.success(),
        "umoci raw unpack failed: {output:?}"
    );
}

#[test]
fn the_stored_tree_is_what_umoci_unpacks() {
    // Debian's umoci 0.4.7 reads no zstd layers: those are compared in the other tests.
    use Compression::{Gzip, None};
    for compressions in [[Gzip, Gzip, Gzip], [None, Gzip, None]] {
        let scratch = Scratch::new();
        let layout = base_image(compressions).write_layout(&scratch.path("layout"), "v1");
        let imported = scratch.import(&layout.dir);
        assert_eq!(imported["digest"], layout.manifest_digest.as_str());
        assert_eq!(imported["already_stored"], false);
        assert_eq!(
            imported["image"]["config_digest"],
            layout.config_digest.as_str()
        );
        let tree = PathBuf::from(imported["tree"].as_str().unwrap());
        let ours = describe_tree(&tree);

        let umoci = scratch.path("umoci");
        umoci_unpack(&layout.dir, "v1", &umoci);
        assert_eq!(ours, describe_tree(&umoci), "{compressions:?}");

        // What the oracle agreed on, spelled out.
        let has = |path: &str| {
            ours.iter()
                .any(|line| line.starts_with(&format!("{path} ")))
        };
        assert!(!has("etc/gone"), "the whiteout deleted etc/gone");
        assert!(
            !has("etc/opaque/lower") && !has("etc/opaque/sub"),
            "{ours:#?}"
        );
        assert!(has("etc/opaque/upper"), "the opaque layer's own file stays");
        assert!(ours.contains(&"bin/sh symlink -> busybox".to_owned()));
        assert!(ours.contains(&"tmp dir 1777".to_owned()));
        assert!(ours.contains(&"usr dir 750".to_owned()));
        assert_eq!(
            std::fs::read(tree.join("etc/keep")).unwrap(),
            b"second version\n"
        );
        assert_eq!(
            std::fs::read(tree.join("etc/keep-link")).unwrap(),
            b"first version\n"
        );
        let busybox = std::fs::read(tree.join("bin/busybox")).unwrap();
        assert_eq!(busybox, crate::fixture::busybox());
        let output = Command::new(tree.join("bin/busybox"))
            .args(["echo", "ran"])
            .output()
            .unwrap();
        assert_eq!(output.stdout, b"ran\n");
    }
}
