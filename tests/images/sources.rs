//! The same image from the other sources: a docker-archive tarball made by `skopeo copy`
//! imports to the same tree (and, for uncompressed layers, the same digest), and `image
//! pull` from a real registry (Debian's docker-registry on loopback) resolves the tag once,
//! reports the digest, and stores what the layout import stores.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{base_image, describe_tree, tool, Compression, Scratch};
use crate::support::assert_status;

fn skopeo_copy(from: &str, to: &str, extra: &[&str]) {
    let output = Command::new(tool("skopeo"))
        .arg("copy")
        .arg("--quiet")
        .args(extra)
        .arg(from)
        .arg(to)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo copy {from} {to}: {output:?}"
    );
}

fn tree_of(imported: &serde_json::Value) -> PathBuf {
    PathBuf::from(imported["tree"].as_str().unwrap())
}

#[test]
fn a_docker_archive_imports_to_the_same_digest_and_tree() {
    let scratch = Scratch::new();
    let uncompressed = [Compression::None; 3];
    let layout = base_image(uncompressed).write_layout(&scratch.path("layout"), "v1");
    let archive = scratch.path("image.tar");
    skopeo_copy(
        &format!("oci:{}:v1", layout.dir.display()),
        &format!("docker-archive:{}:example/fixture:v1", archive.display()),
        &[],
    );
    let from_layout = scratch.import(&layout.dir);
    let from_archive = scratch.import(&archive);
    assert_eq!(
        from_archive["digest"],
        layout.manifest_digest.as_str(),
        "{from_archive}"
    );
    assert_eq!(
        from_archive["already_stored"], true,
        "one copy for one digest"
    );
    assert_eq!(
        from_archive["image"]["tree_digest"],
        from_layout["image"]["tree_digest"]
    );

    // Compressed layers: the tarball holds them uncompressed, so its derived manifest is
    // not the compressed layout's, but the config and the tree are the same.
    // skopeo 1.9 writes no zstd layer into a docker-archive.
    let compressed = base_image([Compression::Gzip, Compression::None, Compression::Gzip])
        .write_layout(&scratch.path("layout-gz"), "v2");
    let archive = scratch.path("image-gz.tar");
    skopeo_copy(
        &format!("oci:{}:v2", compressed.dir.display()),
        &format!("docker-archive:{}:example/fixture:v2", archive.display()),
        &[],
    );
    let from_compressed = scratch.import(&compressed.dir);
    let output = scratch.image(&["import", "--json", "--tag", "v2", archive.to_str().unwrap()]);
    assert_status(&output, 0);
    let from_archive: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        from_archive["image"]["config_digest"],
        from_compressed["image"]["config_digest"]
    );
    assert_eq!(
        from_archive["image"]["tree_digest"],
        from_compressed["image"]["tree_digest"]
    );
    // The same image with uncompressed layers: the uncompressed layout's manifest.
    assert_eq!(from_archive["digest"], layout.manifest_digest.as_str());
    assert_eq!(from_archive["already_stored"], true);
    assert_eq!(
        describe_tree(&tree_of(&from_archive)),
        describe_tree(&tree_of(&from_layout))
    );
    assert_eq!(scratch.stored().len(), 2);
}

/// Debian's docker-registry on a free loopback port, storing in a temporary directory.
struct Registry {
    child: Child,
    authority: String,
    _root: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let authority = format!("127.0.0.1:{port}");
        let config = root.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {authority}\n  secret: hermetic-test\n",
                root.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            authority,
            _root: root,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !registry.answers() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(&self.authority) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.authority);
        let mut answer = [0; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && answer.starts_with(b"HTTP/1.")
    }

    fn push(&self, layout: &Path, tag: &str, name: &str) -> String {
        let reference = format!("{}/{name}", self.authority);
        skopeo_copy(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker://{reference}"),
            &["--dest-tls-verify=false"],
        );
        reference
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pull_resolves_the_tag_once_and_stores_what_import_stores() {
    let registry = Registry::start();
    let scratch = Scratch::new();
    // gzip only: skopeo compresses an uncompressed layer on its way to a registry, and
    // writes no zstd there (1.9), so the registry would hold another manifest.
    let layout = base_image([Compression::Gzip; 3]).write_layout(&scratch.path("layout"), "v1");
    let reference = registry.push(&layout.dir, "v1", "fixtures/base:v1");

    let output = scratch.image(&["pull", "--json", &reference]);
    assert_status(&output, 0);
    let pulled: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(pulled["reference"], reference.as_str());
    assert_eq!(pulled["tag"], "v1");
    assert_eq!(pulled["resolved"], layout.manifest_digest.as_str());
    assert_eq!(pulled["digest"], layout.manifest_digest.as_str());
    assert_eq!(pulled["already_stored"], false);
    assert_eq!(pulled["image"]["source"], "registry");

    let text = scratch.image(&["pull", &reference]);
    assert_status(&text, 0);
    let line = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        line.starts_with(&format!(
            "{reference} -> {}: already stored",
            layout.manifest_digest
        )),
        "{line}"
    );

    let by_digest = format!(
        "{}/fixtures/base@{}",
        registry.authority, layout.manifest_digest
    );
    let output = scratch.image(&["pull", "--json", &by_digest]);
    assert_status(&output, 0);
    let again: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(again["tag"], serde_json::Value::Null);
    assert_eq!(again["already_stored"], true);

    let other = Scratch::new();
    let imported = other.import(&layout.dir);
    assert_eq!(
        imported["image"]["tree_digest"],
        pulled["image"]["tree_digest"]
    );
    assert_eq!(
        describe_tree(&tree_of(&imported)),
        describe_tree(&tree_of(&pulled))
    );

    let missing = scratch.image(&[
        "pull",
        &format!("{}/fixtures/base:nope", registry.authority),
    ]);
    assert_status(&missing, 2);
    let wrong_digest = format!(
        "{}/fixtures/base@sha256:{}",
        registry.authority,
        "0".repeat(64)
    );
    assert_status(&scratch.image(&["pull", &wrong_digest]), 2);
    assert_eq!(scratch.stored().len(), 1);
}
