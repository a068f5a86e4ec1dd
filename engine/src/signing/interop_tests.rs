//! Our keys, signatures and bundles against independent implementations: openssl, a
//! Python implementation of cosign's key format (tests/interop/cosign_key.py) and
//! sigstore-js (tests/interop/*.js).
//!
//! They need `openssl`, `python3` with PyNaCl and cryptography, `node`, and
//! `npm ci --prefix tests/interop`; .ci/run installs all of them. A missing tool fails the
//! test with that instruction instead of skipping it, so CI cannot pass without checking.
use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::bundle::{Bundle, Content};
use super::dsse::IN_TOTO_PAYLOAD_TYPE;
use super::keys::{KeyError, Password, SigningKey, VerifyingKey};
use super::sign::{sign_blob, sign_dsse};
use super::verify::{verify_blob, verify_dsse};
use super::write_key_pair;

const INSTALL_HINT: &str = "the interop tests need openssl, node, python3 with PyNaCl and \
cryptography (Debian: python3-nacl python3-cryptography) and `npm ci --prefix tests/interop`; \
see .ci/run";
const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
const ARTIFACT: &[u8] = b"the bytes of a build output\n";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// Runs `program`; a program that is not installed fails the test with [`INSTALL_HINT`].
fn run(program: &str, args: &[&str], env: &[(&str, &[u8])]) -> Output {
    let mut command = Command::new(program);
    command.args(args).env_remove("COSIGN_PASSWORD");
    for (name, value) in env {
        command.env(name, OsStr::from_bytes(value));
    }
    match command.output() {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            panic!("`{program}` is not installed: {INSTALL_HINT}")
        }
        Err(err) => panic!("failed to run `{program}`: {err}"),
    }
}

/// Runs `program` and requires success; returns its stdout.
fn run_ok(program: &str, args: &[&str], env: &[(&str, &[u8])]) -> String {
    let output = run(program, args, env);
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}): {}\n{}\n(if something is missing: {INSTALL_HINT})",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout),
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

fn openssl(args: &[&str]) -> String {
    run_ok("openssl", args, &[])
}

struct Scratch(TempDir);

impl Scratch {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// The path of `name` as a command-line argument (temporary paths are UTF-8).
    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }
}

/// An openssl P-256 key, as in docs/formats.md Appendix A: `key.pem` (PKCS#8),
/// `sec1.pem` and `pub.pem`.
fn openssl_key(scratch: &Scratch) {
    openssl(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        &scratch.arg("sec1.pem"),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        &scratch.arg("sec1.pem"),
        "-out",
        &scratch.arg("key.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &scratch.arg("key.pem"),
        "-pubout",
        "-out",
        &scratch.arg("pub.pem"),
    ]);
}

fn message_signature(bundle: &Bundle) -> &[u8] {
    match &bundle.content {
        Content::MessageSignature(message) => &message.signature,
        Content::Dsse(_) => panic!("expected a message signature bundle"),
    }
}

#[test]
fn openssl_keys_are_read_and_our_blob_signatures_verify_with_openssl() {
    let scratch = Scratch::new();
    openssl_key(&scratch);
    let key = SigningKey::from_pem(&scratch.read("key.pem"), None).unwrap();
    let sec1 = SigningKey::from_pem(&scratch.read("sec1.pem"), None).unwrap();
    let public = VerifyingKey::from_pem(&scratch.read("pub.pem")).unwrap();
    assert_eq!(key.verifying_key(), public);
    assert_eq!(sec1.verifying_key(), public);
    assert_eq!(public.to_pem(), scratch.read("pub.pem"));

    openssl(&[
        "pkey",
        "-pubin",
        "-in",
        &scratch.arg("pub.pem"),
        "-outform",
        "DER",
        "-out",
        &scratch.arg("pub.der"),
    ]);
    openssl(&[
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        &scratch.arg("pub.sha256"),
        &scratch.arg("pub.der"),
    ]);
    assert_eq!(
        public.hint(),
        STANDARD.encode(fs::read(scratch.path("pub.sha256")).unwrap())
    );

    let bundle = sign_blob(&key, ARTIFACT);
    scratch.write("artifact", ARTIFACT);
    scratch.write("sig.der", message_signature(&bundle));
    let verified = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &scratch.arg("pub.pem"),
        "-signature",
        &scratch.arg("sig.der"),
        &scratch.arg("artifact"),
    ]);
    assert_eq!(verified.trim(), "Verified OK");

    scratch.write("other", b"other bytes");
    let refused = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &scratch.arg("pub.pem"),
            "-signature",
            &scratch.arg("sig.der"),
            &scratch.arg("other"),
        ],
        &[],
    );
    assert!(
        !refused.status.success(),
        "openssl accepted another artifact"
    );
}

#[test]
fn openssl_signatures_verify_with_us() {
    let scratch = Scratch::new();
    openssl_key(&scratch);
    let public = VerifyingKey::from_pem(&scratch.read("pub.pem")).unwrap();
    scratch.write("artifact", ARTIFACT);
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        &scratch.arg("key.pem"),
        "-out",
        &scratch.arg("sig.der"),
        &scratch.arg("artifact"),
    ]);
    let bundle_json = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": { "publicKey": { "hint": public.hint() } },
        "messageSignature": {
            "messageDigest": { "algorithm": "SHA2_256", "digest": STANDARD.encode(Sha256::digest(ARTIFACT)) },
            "signature": STANDARD.encode(fs::read(scratch.path("sig.der")).unwrap()),
        },
    });
    let bundle = Bundle::from_json(bundle_json.to_string().as_bytes()).unwrap();
    let verified = verify_blob(&bundle, ARTIFACT, std::slice::from_ref(&public)).unwrap();
    assert_eq!(verified.key, public);
    let error = verify_blob(&bundle, b"other", &[public]).unwrap_err();
    assert_eq!(error.reason(), "bad_signature", "{error}");
}

#[test]
fn our_dsse_signature_verifies_with_openssl_over_a_hand_built_pae() {
    let scratch = Scratch::new();
    openssl_key(&scratch);
    let key = SigningKey::from_pem(&scratch.read("key.pem"), None).unwrap();
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
    let bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, payload);
    let Content::Dsse(envelope) = &bundle.content else {
        panic!("expected a DSSE bundle");
    };
    // Written out from the DSSE spec, not with our pae().
    let pae = [
        b"DSSEv1 28 application/vnd.in-toto+json 43 ".as_slice(),
        payload,
    ]
    .concat();
    scratch.write("pae", pae);
    scratch.write("sig.der", &envelope.signatures[0].sig);
    let verified = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &scratch.arg("pub.pem"),
        "-signature",
        &scratch.arg("sig.der"),
        &scratch.arg("pae"),
    ]);
    assert_eq!(verified.trim(), "Verified OK");
}

/// Runs tests/interop/cosign_key.py with `password` in COSIGN_PASSWORD.
fn cosign_key_py(args: &[&str], password: &[u8]) -> Output {
    let script = interop_dir().join("cosign_key.py");
    let script = script.to_str().unwrap();
    let args: Vec<&str> = [script].into_iter().chain(args.iter().copied()).collect();
    run("python3", &args, &[("COSIGN_PASSWORD", password)])
}

fn python_ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "cosign_key.py failed ({}): {}\n(if something is missing: {INSTALL_HINT})",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn independently_encrypted_keys_are_read() {
    let password = "pässwörd".as_bytes();
    for (label, log_n, crlf) in [
        ("SIGSTORE", "16", false),
        ("COSIGN", "15", true),
        ("SIGSTORE", "17", false),
    ] {
        let scratch = Scratch::new();
        let (key_path, pub_path) = (scratch.arg("k.key"), scratch.arg("k.pub"));
        let mut args = vec![
            "generate", &key_path, &pub_path, "--label", label, "--log-n", log_n,
        ];
        if crlf {
            args.push("--crlf");
        }
        python_ok(cosign_key_py(&args, password));
        let pem = scratch.read("k.key");
        assert!(pem.starts_with(&format!("-----BEGIN ENCRYPTED {label} PRIVATE KEY-----")));
        assert_eq!(pem.contains("\r\n"), crlf);

        let key = SigningKey::from_pem(&pem, Some(password)).unwrap();
        let public = VerifyingKey::from_pem(&scratch.read("k.pub")).unwrap();
        assert_eq!(key.verifying_key(), public, "{label} 2^{log_n}");
        if log_n == "15" {
            // Once is enough: each try at a wrong password costs a full scrypt run.
            let error = SigningKey::from_pem(&pem, Some(b"passwort")).err();
            assert!(matches!(error, Some(KeyError::WrongPassword)));
        }
    }
}

#[test]
fn our_encrypted_keys_decrypt_independently() {
    let scratch = Scratch::new();
    let password = "pässwörd".as_bytes();
    let files = write_key_pair(&scratch.path("cosign"), &Password::new(password.to_vec())).unwrap();
    let public_pem = python_ok(cosign_key_py(
        &["decrypt", files.private_key.to_str().unwrap()],
        password,
    ));
    assert_eq!(public_pem, scratch.read("cosign.pub"));
    assert_eq!(public_pem, files.verifying_key.to_pem());

    let wrong = cosign_key_py(
        &["decrypt", files.private_key.to_str().unwrap()],
        b"passwort",
    );
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    // The empty password is a password too, on both sides.
    let key = SigningKey::generate();
    scratch.write("empty.key", key.to_encrypted_pem(b""));
    let public_pem = python_ok(cosign_key_py(&["decrypt", &scratch.arg("empty.key")], b""));
    assert_eq!(public_pem, key.verifying_key().to_pem());
}

/// Runs a node script of tests/interop; fails with instructions if its packages are missing.
fn node(script: &str, args: &[&str]) -> Output {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@sigstore/verify").is_dir(),
        "tests/interop/node_modules is missing: {INSTALL_HINT}"
    );
    let script = dir.join(script);
    let script = script.to_str().unwrap();
    let args: Vec<&str> = [script].into_iter().chain(args.iter().copied()).collect();
    run("node", &args, &[])
}

/// The verdict of tests/interop/verify-bundle.js (sigstore-js plus the artifact checks of
/// docs/formats.md Appendix A) on `bundle_json`, with the key in `pub.pem` and the
/// artifact in file `artifact`.
fn sigstore_js_verdict(scratch: &Scratch, bundle_json: &str, artifact: &str) -> Value {
    scratch.write("bundle.json", bundle_json);
    let output = node(
        "verify-bundle.js",
        &[
            &scratch.arg("bundle.json"),
            &scratch.arg("pub.pem"),
            &scratch.arg(artifact),
            SLSA_PROVENANCE_V1,
        ],
    );
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "verify-bundle.js printed no verdict ({err}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        output.status.success(),
        verdict["verified"] == true,
        "exit status and verdict disagree: {verdict}"
    );
    verdict
}

fn statement_about(artifact: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "artifact", "digest": { "sha256": hex::encode(Sha256::digest(artifact)) } }],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": { "buildType": "https://example.invalid/hermetic/v1", "externalParameters": {} },
            "runDetails": { "builder": { "id": "https://example.invalid/builder/v1" } },
        },
    }))
    .unwrap()
}

#[test]
fn sigstore_js_verifies_our_dsse_bundles_and_refuses_tampered_ones() {
    let scratch = Scratch::new();
    let key = SigningKey::generate();
    scratch.write("pub.pem", key.verifying_key().to_pem());
    scratch.write("artifact", ARTIFACT);
    scratch.write("other", b"another artifact");
    let bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, &statement_about(ARTIFACT));

    let verdict = sigstore_js_verdict(&scratch, &bundle.to_json(), "artifact");
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert_eq!(verdict["content"], "dsseEnvelope");

    let mut tampered_payload = bundle.clone();
    if let Content::Dsse(envelope) = &mut tampered_payload.content {
        envelope.payload = statement_about(b"another artifact");
    }
    let mut tampered_type = bundle.clone();
    if let Content::Dsse(envelope) = &mut tampered_type.content {
        envelope.payload_type = "application/json".to_owned();
    }
    let attacker = SigningKey::generate();
    let mut attacker_signed =
        sign_dsse(&attacker, IN_TOTO_PAYLOAD_TYPE, &statement_about(ARTIFACT));
    attacker_signed.hint = bundle.hint.clone();
    for (name, tampered) in [
        ("payload", &tampered_payload),
        ("payload type", &tampered_type),
        ("signer", &attacker_signed),
    ] {
        let verdict = sigstore_js_verdict(&scratch, &tampered.to_json(), "artifact");
        assert_eq!(verdict["verified"], false, "tampered {name}: {verdict}");
        let ours = verify_dsse(tampered, &[key.verifying_key()], IN_TOTO_PAYLOAD_TYPE);
        assert!(ours.is_err(), "we accepted a tampered {name}");
    }

    // The signature does not bind the artifact: that is the statement's subject, which
    // the independent verifier checks and our callers must (see verify.rs).
    let verdict = sigstore_js_verdict(&scratch, &bundle.to_json(), "other");
    assert_eq!(verdict["verified"], false, "{verdict}");
    assert!(
        verdict["error"].as_str().unwrap().contains("subject"),
        "{verdict}"
    );
}

#[test]
fn sigstore_js_verifies_our_blob_bundles_and_refuses_tampered_ones() {
    let scratch = Scratch::new();
    let key = SigningKey::generate();
    scratch.write("pub.pem", key.verifying_key().to_pem());
    scratch.write("artifact", ARTIFACT);
    scratch.write("other", b"another artifact");
    let bundle = sign_blob(&key, ARTIFACT);

    let verdict = sigstore_js_verdict(&scratch, &bundle.to_json(), "artifact");
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert_eq!(verdict["content"], "messageSignature");

    let verdict = sigstore_js_verdict(&scratch, &bundle.to_json(), "other");
    assert_eq!(verdict["verified"], false, "{verdict}");

    let mut wrong_digest = bundle.clone();
    if let Content::MessageSignature(message) = &mut wrong_digest.content {
        message.sha256 = Sha256::digest(b"another artifact").into();
    }
    let verdict = sigstore_js_verdict(&scratch, &wrong_digest.to_json(), "artifact");
    assert_eq!(verdict["verified"], false, "{verdict}");
}

#[test]
fn we_verify_dsse_bundles_made_by_node() {
    let scratch = Scratch::new();
    openssl_key(&scratch);
    let public = VerifyingKey::from_pem(&scratch.read("pub.pem")).unwrap();
    scratch.write("artifact", ARTIFACT);
    let output = node(
        "make-bundle.js",
        &[&scratch.arg("key.pem"), &scratch.arg("artifact")],
    );
    assert!(
        output.status.success(),
        "make-bundle.js failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bundle = Bundle::from_json(&output.stdout).unwrap();
    assert_eq!(bundle.hint.as_deref(), Some(public.hint().as_str()));
    let verified =
        verify_dsse(&bundle, std::slice::from_ref(&public), IN_TOTO_PAYLOAD_TYPE).unwrap();
    assert_eq!(verified.key, public);
    let statement: Value = serde_json::from_slice(&verified.payload).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        hex::encode(Sha256::digest(ARTIFACT))
    );
}
