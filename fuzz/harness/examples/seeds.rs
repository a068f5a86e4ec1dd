//! Writes the seed corpora, `fuzz/corpus/TARGET/`: a few valid inputs of each kind, made
//! by hermetic's own writers (archives, bundles, keys) or taken from the repo (profiles,
//! seccomp policies), so that mutations start from inputs that reach deep code.
//!
//!     cargo run -p hermetic-fuzz-harness --example seeds
use std::path::Path;

use hermetic::archive::outpath::OutputPath;
use hermetic::archive::pack::{pack_outputs, PackOptions};
use hermetic::signing::{sign_blob, sign_dsse};
use hermetic_fuzz_harness::{fuzz_key, join_prefixed, IN_TOTO_PAYLOAD_TYPE, SIGNED_BLOB, TARGETS};

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = fuzz.join("..");
    let corpus = fuzz.join("corpus");
    for (target, _) in TARGETS {
        std::fs::create_dir_all(corpus.join(target)).unwrap();
    }
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::write(corpus.join(target).join(name), bytes).unwrap();
    };

    for (name, tree) in archive_trees() {
        write("archive_extract", name, &packed(&tree));
    }

    let key = fuzz_key();
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"out.tar.zst","digest":{"sha256":"00"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}"#;
    write(
        "bundle_verify",
        "dsse",
        sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, statement)
            .to_json()
            .as_bytes(),
    );
    write(
        "bundle_verify",
        "message",
        sign_blob(&key, SIGNED_BLOB).to_json().as_bytes(),
    );
    let mut unhinted = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, b"{}");
    unhinted.hint = None;
    write(
        "bundle_verify",
        "dsse-no-hint",
        unhinted.to_json().as_bytes(),
    );

    let password = b"fuzz";
    let prefixed = |password: &[u8], pem: &str| {
        let mut bytes = vec![password.len() as u8];
        bytes.extend_from_slice(password);
        bytes.extend_from_slice(pem.as_bytes());
        bytes
    };
    write(
        "signing_keys",
        "pkcs8",
        &prefixed(b"", hermetic_fuzz_harness::FUZZ_SIGNING_KEY),
    );
    write(
        "signing_keys",
        "cosign-encrypted",
        &prefixed(password, &key.to_encrypted_pem(password)),
    );
    write(
        "signing_keys",
        "public",
        &prefixed(b"", &key.verifying_key().to_pem()),
    );

    for profile in ["default", "strict"] {
        let text = std::fs::read(repo.join("profiles").join(format!("{profile}.toml"))).unwrap();
        write("profile_parse", profile, &text);
    }
    let default = std::fs::read_to_string(repo.join("profiles/default.toml")).unwrap();
    write(
        "profile_parse",
        "renamed-host",
        default
            .replace("hostname = \"hermetic\"", "hostname = \"fuzz\"")
            .as_bytes(),
    );

    let policy = std::fs::read(repo.join("seccomp/default.json")).unwrap();
    write("seccomp_policy", "default", &policy);
    write(
        "seccomp_policy",
        "one-rule",
        br#"{"allowlist":{"mismatch_action":{"errno":38},"filter_action":"allow","filter":[{"syscall":"read"}]},"denylist":{"mismatch_action":"allow","filter_action":{"errno":1},"filter":[]}}"#,
    );
    write(
        "seccomp_policy",
        "with-args",
        br#"{"allowlist":{"mismatch_action":{"errno":38},"filter_action":"allow","filter":[{"syscall":"ioctl","args":[{"index":1,"type":"dword","op":"eq","val":21505}]},{"syscall":"write"}]},"denylist":{"mismatch_action":"allow","filter_action":{"errno":1},"filter":[{"syscall":"ptrace"}]}}"#,
    );

    write(
        "daemon_request",
        "build",
        br#"{"kind":"build","profile":"default","src":"/src","outputs":["out"],"artifact":"/tmp/out.tar.zst","extract":null,"single":false,"explain":false,"source_date_epoch":315532800,"command":["make"]}"#,
    );
    write(
        "daemon_request",
        "build-cached",
        br#"{"kind":"build","profile":"strict","src":"/src","outputs":[],"artifact":"/a","extract":"/x","single":true,"explain":true,"source_date_epoch":null,"command":["sh","-c","true"],"cache":{"dir":"/cache","scope":"main","trust_keys":["/k.pub"],"require":true,"remote":{"url":"oci://127.0.0.1:5000/ci","push":true}}}"#,
    );
    write(
        "daemon_request",
        "run",
        br#"{"kind":"run","profile":"default","src":"/src","source_date_epoch":1,"command":["/bin/true"]}"#,
    );

    let frame = |tag: u8, bytes: &[u8]| {
        let mut framed = vec![tag];
        framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        framed.extend_from_slice(bytes);
        framed
    };
    for (name, piece) in [("pieces-1", 1u8), ("pieces-7", 7), ("whole", 255)] {
        let mut log = vec![piece];
        log.extend(frame(1, b"compiling\n"));
        log.extend(frame(2, b"warning: x\n"));
        log.extend(frame(3, b"[hermeticd] done\n"));
        log.extend(frame(4, br#"{"id":1}"#));
        write("log_frames", name, &log);
    }

    let documents: [(&str, u8, &[u8]); 4] = [
        ("manifest", 0, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#),
        ("index", 1, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#),
        ("config", 0, br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin:/bin"],"WorkingDir":"/src"},"rootfs":{"type":"layers","diff_ids":["sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"]}}"#),
        ("docker-manifest", 2, br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#),
    ];
    for (name, pick, document) in documents {
        let mut bytes = vec![pick];
        bytes.extend_from_slice(document);
        write("oci_documents", name, &bytes);
    }

    for (name, layer) in layers() {
        write("image_layer", name, &layer);
    }
    println!("seeds written under {}", corpus.display());
}

/// Small trees for the archive seeds: files, an executable, a symlink, nesting, an empty
/// directory.
fn archive_trees() -> Vec<(&'static str, tempfile::TempDir)> {
    let make = |build: &dyn Fn(&Path)| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        build(&dir.path().join("out"));
        dir
    };
    vec![
        (
            "one-file",
            make(&|out| std::fs::write(out.join("hello"), b"hello\n").unwrap()),
        ),
        (
            "mixed",
            make(&|out| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir_all(out.join("bin/empty")).unwrap();
                std::fs::write(out.join("bin/tool"), b"#!/bin/sh\n").unwrap();
                std::fs::set_permissions(
                    out.join("bin/tool"),
                    std::fs::Permissions::from_mode(0o755),
                )
                .unwrap();
                std::os::unix::fs::symlink("bin/tool", out.join("link")).unwrap();
                std::fs::write(out.join("data"), vec![7u8; 3000]).unwrap();
            }),
        ),
        ("empty", make(&|_| {})),
    ]
}

fn packed(tree: &tempfile::TempDir) -> Vec<u8> {
    let mut archive = Vec::new();
    let options = PackOptions {
        mtime: 315_532_800,
        zstd_level: 3,
    };
    let packed = pack_outputs(
        tree.path(),
        &[OutputPath::parse("out").unwrap()],
        &options,
        &mut archive,
    )
    .unwrap();
    join_prefixed(&packed.manifest.to_canonical_json(), &archive)
}

/// Layer tars with what the applier handles: files, directories, a symlink, a hardlink,
/// a whiteout and an opaque directory.
fn layers() -> Vec<(&'static str, Vec<u8>)> {
    let tar = |members: &[(&str, tar::EntryType, &[u8], Option<&str>)]| {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, body, link) in members {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(*kind);
            header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            header.set_size(body.len() as u64);
            header.set_mtime(0);
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            header.set_path(path).unwrap();
            header.set_cksum();
            builder.append(&header, *body).unwrap();
        }
        builder.into_inner().unwrap()
    };
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    vec![
        (
            "files",
            tar(&[
                ("etc/", Directory, b"", None),
                ("etc/os-release", Regular, b"ID=fuzz\n", None),
                ("bin/", Directory, b"", None),
                ("bin/sh", Regular, b"\x7fELF", None),
            ]),
        ),
        (
            "links",
            tar(&[
                ("usr/", Directory, b"", None),
                ("usr/bin/", Directory, b"", None),
                ("usr/bin/busybox", Regular, b"bb", None),
                ("usr/bin/ls", Link, b"", Some("usr/bin/busybox")),
                ("bin", Symlink, b"", Some("usr/bin")),
            ]),
        ),
        (
            "whiteouts",
            tar(&[
                ("opt/", Directory, b"", None),
                ("opt/.wh..wh..opq", Regular, b"", None),
                ("opt/kept", Regular, b"k", None),
                ("etc/", Directory, b"", None),
                ("etc/.wh.motd", Regular, b"", None),
            ]),
        ),
    ]
}
