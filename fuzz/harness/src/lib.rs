//! What each fuzz target does with its input. The cargo-fuzz targets in `fuzz/` are one
//! line each around these functions, so the same code runs under libFuzzer (coverage
//! guided, `benches/fuzz.sh`) and in `cargo test` (tests/corpus.rs replays the committed
//! seed corpora and every input that ever crashed, `fuzz/regressions/`).
//!
//! A harness panics only when hermetic broke a promise: a parser may refuse anything, but
//! must not panic, hang or let through what its checks exist to stop. Where a checker
//! exists to compare against (the tree a restore wrote against its manifest, a value
//! against what it reads back as), the harness compares.
use std::io::Cursor;
use std::path::Path;

use hermetic::archive::extract::{extract_verified, ExtractLimits};
use hermetic::archive::manifest::Manifest;
use hermetic::archive::outpath::OutputPath;
use hermetic::archive::pack::manifest_of_tree;
use hermetic::image::spec::{Config, Document};
use hermetic::image::{ImageLimits, Store};
use hermetic::signing::{verify_blob, verify_dsse, Bundle, SigningKey, VerifyingKey};
use hermetic_contract::wire::{split_frames, JobRequest};

/// A harness: whether the input was accepted (parsed, verified, restored); seeds must be.
pub type Harness = fn(&[u8]) -> bool;

/// Every target, by the name its corpus directory and cargo-fuzz binary have.
pub const TARGETS: &[(&str, Harness)] = &[
    ("archive_extract", archive_extract),
    ("bundle_verify", bundle_verify),
    ("signing_keys", signing_keys),
    ("profile_parse", profile_parse),
    ("seccomp_policy", seccomp_policy),
    ("daemon_request", daemon_request),
    ("log_frames", log_frames),
    ("oci_documents", oci_documents),
    ("image_layer", image_layer),
];

/// The key the seed bundles are signed with, so that mutations of a signed bundle reach
/// the code after the signature check. A fuzzing key: it protects nothing.
pub const FUZZ_SIGNING_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPXoX8wY3fNjDAUls
JPU0RjCwV8HjdyZ6jeoYZU5jePChRANCAASuGpCY7D3HNXGecPBbElucf3+J2fQ/
ekYC8W4929F0mUQRhZRXthXpyOhsqiD7L6P2ldMPlomn11uS7NdZTl0S
-----END PRIVATE KEY-----
";

/// The artifact the seed message-signature bundles sign.
pub const SIGNED_BLOB: &[u8] = b"hermetic fuzz artifact\n";

/// The payload type the seed DSSE bundles carry (in-toto statements).
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Small bounds, so an input that asks for gigabytes is refused at the limit (which is
/// what is under test) instead of making the fuzzer write them.
fn extract_limits() -> ExtractLimits {
    ExtractLimits {
        max_entries: 256,
        max_total_bytes: 1 << 20,
        max_file_bytes: 1 << 20,
        max_path_bytes: 4096,
        max_component_bytes: 255,
    }
}

/// Splits `data` into a u32-LE-length-prefixed head and the rest.
pub fn split_prefixed(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let head = data.get(4..4usize.checked_add(length)?)?;
    Some((head, &data[4 + length..]))
}

/// Joins what [`split_prefixed`] splits (for making seeds).
pub fn join_prefixed(head: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut joined = (head.len() as u32).to_le_bytes().to_vec();
    joined.extend_from_slice(head);
    joined.extend_from_slice(rest);
    joined
}

/// The strict tar+zstd restore against a manifest (the cache's restore path): input is a
/// manifest (JSON) and an archive. Either the tree written is exactly the manifest, or
/// nothing is left: no destination, no staging directory.
pub fn archive_extract(data: &[u8]) -> bool {
    let Some((manifest_json, archive)) = split_prefixed(data) else {
        return false;
    };
    let Ok(manifest) = Manifest::parse(manifest_json) else {
        return false;
    };
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let dest = scratch.path().join("dest");
    match extract_verified(Cursor::new(archive), &manifest, &dest, &extract_limits()) {
        Ok(_) => {
            let outputs = top_level_names(&manifest);
            let written = manifest_of_tree(&dest, &outputs).expect("the restored tree reads");
            assert_eq!(written, manifest, "the restored tree is not its manifest");
            true
        }
        Err(_) => {
            assert_eq!(
                entries(scratch.path()),
                Vec::<String>::new(),
                "a refused archive left something behind"
            );
            false
        }
    }
}

fn top_level_names(manifest: &Manifest) -> Vec<OutputPath> {
    let mut names: Vec<&str> = manifest
        .files
        .iter()
        .map(|entry| entry.path.split('/').next().unwrap_or(&entry.path))
        .collect();
    names.dedup();
    names
        .into_iter()
        .map(|name| OutputPath::parse(name).expect("a manifest's top-level name is an output"))
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the scratch directory reads")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Sigstore bundles (JSON), then both verifications against the fuzzing key. A bundle
/// that parses writes JSON that parses back to the same bundle.
pub fn bundle_verify(data: &[u8]) -> bool {
    let Ok(bundle) = Bundle::from_json(data) else {
        return false;
    };
    let reread = Bundle::from_json(bundle.to_json().as_bytes()).expect("written bundles read");
    assert_eq!(reread, bundle, "a bundle changed through its JSON");
    let trusted = [fuzz_key().verifying_key()];
    let mut verified_any = false;
    if let Ok(verified) = verify_dsse(&bundle, &trusted, IN_TOTO_PAYLOAD_TYPE) {
        verified_any = true;
        // What the signature covered is exactly the envelope's payload.
        let hermetic::signing::Content::Dsse(envelope) = &bundle.content else {
            panic!("a verified DSSE bundle holds no envelope");
        };
        assert_eq!(verified.payload, envelope.payload);
    }
    if verify_blob(&bundle, SIGNED_BLOB, &trusted).is_ok() {
        verified_any = true;
        assert!(
            verify_blob(&bundle, b"another artifact", &trusted).is_err(),
            "one signature verified two artifacts"
        );
    }
    verified_any
}

pub fn fuzz_key() -> SigningKey {
    SigningKey::from_pem(FUZZ_SIGNING_KEY, None).expect("the fuzzing key reads")
}

/// PEM keys: cosign's encrypted private keys (password first: one length byte, then the
/// password), PKCS#8 and SEC1 private keys, public keys. A key that reads writes PEM that
/// reads back as the same key.
pub fn signing_keys(data: &[u8]) -> bool {
    let Some((&length, rest)) = data.split_first() else {
        return false;
    };
    let Some((password, pem)) = rest.split_at_checked(usize::from(length)) else {
        return false;
    };
    let Ok(pem) = std::str::from_utf8(pem) else {
        return false;
    };
    let mut read_any = false;
    for password in [None, Some(password)] {
        if let Ok(key) = SigningKey::from_pem(pem, password) {
            read_any = true;
            let public = key.verifying_key();
            let reread = VerifyingKey::from_pem(&public.to_pem()).expect("written keys read");
            assert_eq!(reread.key_id(), public.key_id());
        }
    }
    if let Ok(public) = VerifyingKey::from_pem(pem) {
        read_any = true;
        let reread = VerifyingKey::from_pem(&public.to_pem()).expect("written keys read");
        assert_eq!(reread.key_id(), public.key_id());
    }
    read_any
}

/// Sandbox profiles (TOML).
pub fn profile_parse(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    hermetic::sandbox::profile::parse("fuzz", "fuzz", text, None).is_ok()
}

/// Seccomp policies (JSON) compiled to BPF: a policy that compiles gives a program the
/// kernel would take (at most 4096 instructions, ends in a return).
pub fn seccomp_policy(data: &[u8]) -> bool {
    let Ok(program) = hermetic_seccomp::program(data) else {
        return false;
    };
    assert!(
        !program.is_empty() && program.len() <= 4096,
        "{}",
        program.len()
    );
    true
}

/// The daemon's job request bodies: parse, the checks `submit` makes, and the request
/// reads back as itself.
pub fn daemon_request(data: &[u8]) -> bool {
    let Ok(request) = serde_json::from_slice::<JobRequest>(data) else {
        return false;
    };
    let valid = hermetic_daemon::queue::validate(&request).is_ok();
    let written = serde_json::to_vec(&request).expect("a request writes");
    let reread: JobRequest = serde_json::from_slice(&written).expect("a written request reads");
    assert_eq!(
        serde_json::to_vec(&reread).expect("a request writes"),
        written
    );
    valid
}

/// A framed log as a client reads it, arriving in pieces (the first byte sets their
/// size): the frames found are the same whatever the pieces, and never read past what
/// arrived.
pub fn log_frames(data: &[u8]) -> bool {
    let Some((&piece, log)) = data.split_first() else {
        return false;
    };
    let piece = usize::from(piece).max(1);
    let mut whole = Vec::new();
    let used = split_frames(log, |frame| {
        whole.push((frame.tag, frame.bytes.to_vec()));
        true
    });
    assert!(used <= log.len());
    let mut pending = Vec::new();
    let mut pieced = Vec::new();
    for arrived in log.chunks(piece) {
        pending.extend_from_slice(arrived);
        let used = split_frames(&pending, |frame| {
            pieced.push((frame.tag, frame.bytes.to_vec()));
            true
        });
        pending.drain(..used);
    }
    assert_eq!(pieced, whole, "frames depend on how the bytes arrived");
    assert_eq!(pending.len(), log.len() - used);
    used == log.len() && !whole.is_empty()
}

/// OCI and Docker manifests, indexes and configs, as a registry or a layout serves them
/// (the first byte picks the media type they are served as).
pub fn oci_documents(data: &[u8]) -> bool {
    const MEDIA_TYPES: [&str; 4] = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];
    let Some((&pick, document)) = data.split_first() else {
        return false;
    };
    let media_type = MEDIA_TYPES[usize::from(pick) % MEDIA_TYPES.len()];
    let document_read = match Document::parse(document, media_type) {
        Ok(Document::Index(index)) => hermetic::image::spec::select_platform(&index).is_ok(),
        Ok(Document::Manifest(_)) => true,
        Err(_) => false,
    };
    let config_read = Config::parse(document).is_ok_and(|config| config.platform().is_some());
    document_read || config_read
}

/// An image layer (an uncompressed tar) applied by the strict applier: the input is
/// wrapped in a one-layer OCI layout and imported into a scratch state dir. A refused
/// layer leaves no image in the store and nothing outside it.
pub fn image_layer(data: &[u8]) -> bool {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let layout = scratch.path().join("layout");
    write_one_layer_layout(&layout, data).expect("the layout is written");
    let state = scratch.path().join("state");
    let limits = ImageLimits {
        max_layers: 4,
        max_entries: 256,
        max_total_bytes: 1 << 20,
        max_file_bytes: 1 << 20,
        max_path_bytes: 4096,
        max_component_bytes: 255,
        max_document_bytes: 1 << 20,
        max_end_padding: 1 << 16,
        allow_setuid: false,
    };
    let imported = hermetic::image::import(&state, &layout, None, &limits);
    let store = Store::open(&state).expect("the store opens");
    let images = store.list().expect("the store lists");
    match &imported {
        Ok(_) => assert_eq!(images.len(), 1, "an imported image is listed"),
        Err(_) => assert!(images.is_empty(), "a refused image was stored"),
    }
    assert_eq!(
        entries(scratch.path()),
        ["layout", "state"],
        "the import wrote outside the store"
    );
    imported.is_ok()
}

/// An OCI image layout whose one image has `layer` (uncompressed) as its only layer, with
/// the digests and diff_id it needs to reach the applier.
pub fn write_one_layer_layout(dir: &Path, layer: &[u8]) -> std::io::Result<()> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let put = |bytes: &[u8]| -> std::io::Result<(String, usize)> {
        let digest = hermetic::digest::sha256_hex(bytes);
        std::fs::write(blobs.join(&digest), bytes)?;
        Ok((format!("sha256:{digest}"), bytes.len()))
    };
    let (layer_digest, layer_size) = put(layer)?;
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let (config_digest, config_size) = put(config.as_bytes())?;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{layer_size}}}]}}"#
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes())?;
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{manifest_size},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        ),
    )?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
}
