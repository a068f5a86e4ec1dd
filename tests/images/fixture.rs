//! Images made by the tests: tar members written byte by byte (so that hostile names stay
//! as given), layers compressed as asked, and OCI layouts written around them; the tools
//! the oracle and the sources need; a scratch state directory and its checks.
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::support::{assert_status, hermetic};

const SETUP_HINT: &str = "run scripts/test-setup.sh (as root) to install the test dependencies";

/// The path of a program the tests need; fails (does not skip) when it is missing.
pub fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: {SETUP_HINT}"))
}

/// busybox-static's binary, the fixture's one real program.
pub fn busybox() -> Vec<u8> {
    let path = Path::new("/bin/busybox");
    std::fs::read(path)
        .unwrap_or_else(|_| std::fs::read(tool("busybox")).expect("read busybox (busybox-static)"))
}

/// One tar member: a ustar header with `name` and `link` as given (a GNU long name first
/// when the name does not fit), then the data.
pub fn member(typeflag: u8, name: &str, mode: u32, data: &[u8], link: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    if name.len() > 100 {
        bytes.extend(member(
            b'L',
            "././@LongLink",
            0o644,
            &[name.as_bytes(), b"\0"].concat(),
            "",
        ));
    }
    let mut header = tar::Header::new_gnu();
    let short = &name.as_bytes()[..name.len().min(100)];
    header.as_old_mut().name[..short.len()].copy_from_slice(short);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.as_old_mut().linkflag = [typeflag];
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

pub fn dir(name: &str, mode: u32) -> Vec<u8> {
    member(b'5', name, mode, b"", "")
}

pub fn file(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    member(b'0', name, mode, data, "")
}

pub fn symlink(name: &str, target: &str) -> Vec<u8> {
    member(b'2', name, 0o777, b"", target)
}

pub fn hardlink(name: &str, target: &str) -> Vec<u8> {
    member(b'1', name, 0o644, b"", target)
}

/// A PAX extended header for the member after it.
pub fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = [key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len} ").as_bytes());
        data.extend_from_slice(&body);
    }
    member(b'x', "PaxHeaders/x", 0o644, &data, "")
}

/// The members and the end marker.
pub fn tar(members: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = members.concat();
    bytes.resize(bytes.len() + 1024, 0);
    bytes
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
            Compression::Gzip => {
                let mut child = Command::new(tool("gzip"))
                    .args(["-n", "-c"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("run gzip");
                let mut stdin = child.stdin.take().unwrap();
                let input = tar.to_vec();
                let feeder = std::thread::spawn(move || stdin.write_all(&input));
                let output = child.wait_with_output().unwrap();
                feeder.join().unwrap().unwrap();
                assert!(output.status.success());
                output.stdout
            }
        }
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An image as layers (uncompressed tar, how each is stored), and its config's `config`
/// object (what a run applies: `Env`, `WorkingDir`), `{}` unless given.
pub struct Image {
    pub layers: Vec<(Vec<u8>, Compression)>,
    pub run_config: String,
}

/// A layout written on disk.
pub struct Layout {
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub config_digest: String,
    /// The layers' blob digests, in order.
    pub layer_digests: Vec<String>,
}

impl Image {
    pub fn new(layers: Vec<(Vec<u8>, Compression)>) -> Self {
        Self {
            layers,
            run_config: "{}".to_owned(),
        }
    }

    /// Writes an OCI layout for the image at `dir`, tagged `tag`: the config and manifest
    /// as the OCI Go types serialise them (compact, in field order).
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Layout {
        self.write_layout_with(dir, tag, |_| {})
    }

    /// As `write_layout`, with `edit` changing the config's diff_ids first.
    pub fn write_layout_with(
        &self,
        dir: &Path,
        tag: &str,
        edit: impl FnOnce(&mut Vec<String>),
    ) -> Layout {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let digest = sha256(bytes);
            std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
            digest
        };
        let mut diff_ids: Vec<String> = self.layers.iter().map(|(tar, _)| sha256(tar)).collect();
        edit(&mut diff_ids);
        let mut layer_descriptors = Vec::new();
        let mut layer_digests = Vec::new();
        for (tar, compression) in &self.layers {
            let blob = compression.compress(tar);
            let digest = put(&blob);
            layer_descriptors.push(format!(
                r#"{{"mediaType":"{}","digest":"{digest}","size":{}}}"#,
                compression.media_type(),
                blob.len()
            ));
            layer_digests.push(digest);
        }
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            self.run_config,
            diff_ids
                .iter()
                .map(|id| format!("\"{id}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let config_digest = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            layer_descriptors.join(",")
        );
        let manifest_digest = put(manifest.as_bytes());
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            dir.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
                manifest.len()
            ),
        )
        .unwrap();
        Layout {
            dir: dir.to_owned(),
            manifest_digest,
            config_digest,
            layer_digests,
        }
    }
}

/// The fixture image: busybox and its symlinks, a file deleted by a whiteout, a directory
/// made opaque, a hard link whose target a later layer replaces, a directory whose mode a
/// later layer changes, and odd modes; each layer compressed as `compressions` says.
pub fn base_image(compressions: [Compression; 3]) -> Image {
    let busybox = busybox();
    let first = tar(&[
        dir("bin/", 0o755),
        file("bin/busybox", 0o755, &busybox),
        symlink("bin/sh", "busybox"),
        symlink("bin/ls", "/bin/busybox"),
        dir("etc/", 0o755),
        file("etc/gone", 0o644, b"deleted by the next layer\n"),
        file("etc/keep", 0o644, b"first version\n"),
        dir("etc/opaque/", 0o755),
        file(
            "etc/opaque/lower",
            0o644,
            b"hidden by the opaque whiteout\n",
        ),
        dir("etc/opaque/sub/", 0o755),
        file("etc/opaque/sub/deep", 0o644, b"hidden too\n"),
        dir("usr/", 0o755),
        dir("usr/bin/", 0o755),
        hardlink("usr/bin/busybox", "bin/busybox"),
    ]);
    let second = tar(&[
        file("etc/.wh.gone", 0o644, b""),
        file(
            "etc/opaque/upper",
            0o640,
            b"written with the opaque whiteout\n",
        ),
        file("etc/opaque/.wh..wh..opq", 0o644, b""),
        dir("tmp/", 0o1777),
        dir("var/", 0o755),
        dir("var/lib/", 0o700),
        file("var/lib/secret", 0o600, b"s\n"),
        file("etc/keep-link-target", 0o644, b"linked\n"),
    ]);
    let third = tar(&[
        hardlink("etc/keep-link", "etc/keep"),
        file("etc/keep", 0o644, b"second version\n"),
        dir("usr/", 0o750),
        dir("proc/", 0o555),
    ]);
    Image::new(vec![
        (first, compressions[0]),
        (second, compressions[1]),
        (third, compressions[2]),
    ])
}

/// A scratch state directory, an `outside` directory escapes would hit, and room for
/// layouts.
pub struct Scratch {
    pub tmp: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("hermetic-images")
            .tempdir()
            .unwrap();
        std::fs::create_dir(tmp.path().join("state")).unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        Self { tmp }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub fn outside(&self) -> PathBuf {
        self.path("outside")
    }

    /// `hermetic image ARGS --state-dir STATE`.
    pub fn image(&self, args: &[&str]) -> Output {
        hermetic()
            .arg("image")
            .args(args)
            .arg("--state-dir")
            .arg(self.state())
            .stdin(Stdio::null())
            .output()
            .expect("spawn hermetic")
    }

    /// `image import --json PATH` that must succeed; its JSON.
    pub fn import(&self, path: &Path) -> serde_json::Value {
        let output = self.image(&["import", "--json", path.to_str().unwrap()]);
        assert_status(&output, 0);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The stored images' directory names.
    pub fn stored(&self) -> Vec<String> {
        names(&self.state().join("images/sha256"))
    }

    /// Requires the store to hold no image and no leftover, and nothing to have been
    /// written outside it: the state directory holds the store only, `outside` is empty.
    pub fn assert_untouched(&self, context: &str) {
        assert_eq!(
            self.stored(),
            Vec::<String>::new(),
            "an image was stored: {context}"
        );
        assert_eq!(
            names(&self.state().join("images/tmp")),
            Vec::<String>::new(),
            "leftovers: {context}"
        );
        assert_eq!(
            names(&self.state()),
            ["images"],
            "written beside the store: {context}"
        );
        assert_eq!(
            names(&self.state().join("images")),
            ["VERSION", "locks", "sha256", "tmp"],
            "written in the store: {context}"
        );
        for lock in names(&self.state().join("images/locks")) {
            let size = std::fs::metadata(self.state().join("images/locks").join(&lock))
                .unwrap()
                .size();
            assert_eq!(size, 0, "a lock file holds data: {context}");
        }
        assert_eq!(
            names(&self.outside()),
            Vec::<String>::new(),
            "written outside: {context}"
        );
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every path under `root` with its type, mode, content digest or link target, for
/// comparing trees made by different unpackers.
pub fn describe_tree(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for name in names(&root.join(&relative)) {
            let path = relative.join(&name);
            let full = root.join(&path);
            let metadata = std::fs::symlink_metadata(&full).unwrap();
            let mode = metadata.mode() & 0o7777;
            let kind = metadata.file_type();
            let line = if kind.is_symlink() {
                format!(
                    "{} symlink -> {}",
                    path.display(),
                    std::fs::read_link(&full).unwrap().display()
                )
            } else if kind.is_dir() {
                pending.push(path.clone());
                format!("{} dir {mode:o}", path.display())
            } else {
                format!(
                    "{} file {mode:o} {}",
                    path.display(),
                    sha256(&std::fs::read(&full).unwrap())
                )
            };
            lines.push(line);
        }
    }
    lines.sort();
    lines
}
