//! Provenance: `hermetic build --provenance FILE --sign-key KEY` and
//! `hermetic verify --bundle`: the statement's shape, offline verification by us and by
//! sigstore-js, and every tamper the verifier must refuse.
#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use base64::Engine;
use hermetic::signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use hermetic::signing::{sign_dsse, SigningKey};
use serde_json::{json, Value};
use support::{assert_status, hermetic, stderr, Source};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A build directory with a key pair and a reproducible build's archive and provenance.
struct Attested {
    dir: tempfile::TempDir,
    report: Value,
}

impl Attested {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn bundle(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path("prov.json")).unwrap()).unwrap()
    }

    fn statement(&self) -> Value {
        statement_of(&self.bundle())
    }
}

fn statement_of(bundle: &Value) -> Value {
    let payload = B64
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn keygen(dir: &Path, prefix: &str) {
    let output = hermetic()
        .current_dir(dir)
        .env("HERMETIC_PASSWORD", "test password")
        .args(["keygen", "--output-key-prefix", prefix])
        .output()
        .unwrap();
    assert_status(&output, 0);
}

fn build_with_provenance(
    src: &Source,
    dir: &Path,
    script: &str,
    extra: &[&str],
) -> std::process::Output {
    hermetic()
        .current_dir(dir)
        .env("HERMETIC_PASSWORD", "test password")
        .args(["build", "--json", "--src"])
        .arg(src.path())
        .args(["--provenance", "prov.json", "--sign-key", "key.key"])
        .args(extra)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap()
}

const REPRODUCIBLE: &str = "mkdir -p out && echo hello > out/hello && printf 'x' > out/x";

fn attested() -> Attested {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "key");
    let src = Source::new(&[("input.txt", "input\n")]);
    let output = build_with_provenance(&src, dir.path(), REPRODUCIBLE, &[]);
    assert_status(&output, 0);
    let report = serde_json::from_slice(&output.stdout).unwrap();
    Attested { dir, report }
}

/// `hermetic verify --json` on the attested directory with `bundle`, returning the exit
/// code and the report.
fn verify(
    at: &Attested,
    bundle: &str,
    artifact: &str,
    trust: &str,
    extra: &[&str],
) -> (i32, Value) {
    let output = hermetic()
        .current_dir(at.dir.path())
        .args([
            "verify",
            "--json",
            "--bundle",
            bundle,
            "--artifact",
            artifact,
            "--trust-key",
            trust,
        ])
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| json!({ "stderr": stderr(&output) }));
    (output.status.code().unwrap_or(-1), report)
}

fn assert_refused(at: &Attested, bundle: &str, artifact: &str, trust: &str, reason: &str) {
    let (code, report) = verify(at, bundle, artifact, trust, &[]);
    assert_eq!(
        (code, report["reason"].as_str()),
        (4, Some(reason)),
        "{report}"
    );
}

fn write_bundle(at: &Attested, name: &str, bundle: &Value) {
    std::fs::write(at.path(name), serde_json::to_vec(bundle).unwrap()).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn is_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

#[test]
fn a_reproducible_build_gets_a_signed_slsa_v1_statement() {
    let at = attested();
    let bundle = at.bundle();
    assert_eq!(
        bundle["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert!(bundle["verificationMaterial"]["publicKey"]["hint"].is_string());
    assert_eq!(bundle["dsseEnvelope"]["payloadType"], IN_TOTO_PAYLOAD_TYPE);
    assert_eq!(
        bundle["dsseEnvelope"]["signatures"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let statement = at.statement();
    let archive = std::fs::read(at.path("hermetic-out.tar.zst")).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let subject = &statement["subject"][0];
    assert_eq!(subject["name"], "hermetic-out.tar.zst");
    assert_eq!(subject["digest"]["sha256"], sha256_hex(&archive));
    assert_eq!(
        subject["digest"]["blake3"],
        blake3::hash(&archive).to_hex().as_str()
    );
    assert_eq!(
        subject["digest"]["sha256"],
        at.report["output"]["digest"]["sha256"]
    );

    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(
        definition["buildType"],
        "urn:hermetic:buildtype:dual-run:v1"
    );
    let external = &definition["externalParameters"];
    assert_eq!(external["command"], json!(["sh", "-c", REPRODUCIBLE]));
    assert_eq!(external["outputs"], json!(["out"]));
    assert_eq!(external["profile"], "default");
    assert!(external["source"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("file:///"));
    assert_eq!(
        external["source"]["digest"]["blake3"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let internal = &definition["internalParameters"];
    for pin in [
        "source_date_epoch",
        "uid",
        "hostname",
        "build_dir",
        "umask",
        "env",
    ] {
        assert!(!internal["pins"][pin].is_null(), "pin {pin} is recorded");
    }
    assert_eq!(internal["sandbox"]["seccomp_policy"], "default");
    assert_eq!(
        internal["sandbox"]["namespaces"].as_array().unwrap().len(),
        8
    );
    let dependencies: Vec<&str> = definition["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    for name in ["source", "profile", "seccomp-policy", "toolchain"] {
        assert!(dependencies.contains(&name), "{name} in {dependencies:?}");
    }

    let run = &statement["predicate"]["runDetails"];
    assert!(run["builder"]["id"]
        .as_str()
        .unwrap()
        .starts_with("urn:hermetic:builder:key:"));
    assert!(run["builder"]["version"]["hermetic"].is_string());
    assert_eq!(run["metadata"]["invocationId"].as_str().unwrap().len(), 32);
    for time in ["startedOn", "finishedOn"] {
        assert!(
            is_rfc3339_utc(run["metadata"][time].as_str().unwrap()),
            "{time}: {}",
            run["metadata"][time]
        );
    }
    let byproduct = |name: &str| {
        run["byproducts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        byproduct("hermetic-verdict")["annotations"]["verdict"],
        "reproducible"
    );
    assert_eq!(
        byproduct("run-b-output")["digest"]["sha256"],
        subject["digest"]["sha256"]
    );
    assert_eq!(
        byproduct("manifest")["digest"]["blake3"],
        at.report["output"]["manifest_blake3"]
    );
    assert_eq!(
        byproduct("log")["digest"]["sha256"],
        at.report["log"]["sha256"]
    );
}

#[test]
fn hermetic_verify_and_sigstore_js_accept_it() {
    let at = attested();
    let (code, report) = verify(&at, "prov.json", "hermetic-out.tar.zst", "key.pub", &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verified"], true);
    assert_eq!(report["verdict"], "reproducible");

    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/verify-bundle.js");
    let output = std::process::Command::new("node")
        .arg(&verifier)
        .args([
            at.path("prov.json"),
            at.path("key.pub"),
            at.path("hermetic-out.tar.zst"),
        ])
        .arg("https://slsa.dev/provenance/v1")
        .output()
        .expect("node runs (CI installs tests/interop with npm ci)");
    assert!(
        output.status.success(),
        "sigstore-js refused: {}{}",
        support::stdout(&output),
        stderr(&output)
    );
    // sigstore-js does not bind the artifact to a DSSE payload; the test does.
    let archive = std::fs::read(at.path("hermetic-out.tar.zst")).unwrap();
    assert_eq!(
        at.statement()["subject"][0]["digest"]["sha256"],
        sha256_hex(&archive)
    );
}

#[test]
fn tampering_is_refused_with_the_right_reason() {
    let at = attested();
    let bundle = at.bundle();

    std::fs::write(at.path("other.tar.zst"), b"not the archive").unwrap();
    assert_refused(
        &at,
        "prov.json",
        "other.tar.zst",
        "key.pub",
        "subject_mismatch",
    );

    let mut statement = at.statement();
    statement["subject"][0]["digest"]["sha256"] = json!(sha256_hex(b"not the archive"));
    let mut modified = bundle.clone();
    modified["dsseEnvelope"]["payload"] =
        json!(B64.encode(serde_json::to_vec(&statement).unwrap()));
    write_bundle(&at, "modified.json", &modified);
    assert_refused(
        &at,
        "modified.json",
        "other.tar.zst",
        "key.pub",
        "bad_signature",
    );

    keygen(at.dir.path(), "attacker");
    let attacker_pem = std::fs::read_to_string(at.path("attacker.key")).unwrap();
    let attacker = SigningKey::from_pem(&attacker_pem, Some(b"test password")).unwrap();
    let payload = B64
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let forged: Value =
        serde_json::from_str(&sign_dsse(&attacker, IN_TOTO_PAYLOAD_TYPE, &payload).to_json())
            .unwrap();

    let mut swapped = bundle.clone();
    swapped["dsseEnvelope"]["signatures"] = forged["dsseEnvelope"]["signatures"].clone();
    write_bundle(&at, "swapped.json", &swapped);
    assert_refused(
        &at,
        "swapped.json",
        "hermetic-out.tar.zst",
        "key.pub",
        "bad_signature",
    );

    assert_refused(
        &at,
        "prov.json",
        "hermetic-out.tar.zst",
        "attacker.pub",
        "untrusted_key",
    );

    // The attacker's signature, claiming to come from the trusted key: hints are never
    // trusted, so it is still refused.
    let mut hinted = forged.clone();
    hinted["verificationMaterial"]["publicKey"]["hint"] =
        bundle["verificationMaterial"]["publicKey"]["hint"].clone();
    assert_ne!(hinted, forged, "the hint was changed");
    write_bundle(&at, "attacker-hint.json", &hinted);
    assert_refused(
        &at,
        "attacker-hint.json",
        "hermetic-out.tar.zst",
        "key.pub",
        "bad_signature",
    );

    let trusted_pem = std::fs::read_to_string(at.path("key.key")).unwrap();
    let trusted = SigningKey::from_pem(&trusted_pem, Some(b"test password")).unwrap();
    let mut wrong_type = at.statement();
    wrong_type["predicateType"] = json!("https://slsa.dev/provenance/v0.2");
    let resigned = sign_dsse(
        &trusted,
        IN_TOTO_PAYLOAD_TYPE,
        &serde_json::to_vec(&wrong_type).unwrap(),
    );
    std::fs::write(at.path("wrong-type.json"), resigned.to_json()).unwrap();
    assert_refused(
        &at,
        "wrong-type.json",
        "hermetic-out.tar.zst",
        "key.pub",
        "predicate_type",
    );

    let mut two = bundle.clone();
    let mut signatures = bundle["dsseEnvelope"]["signatures"]
        .as_array()
        .unwrap()
        .clone();
    signatures.push(forged["dsseEnvelope"]["signatures"][0].clone());
    two["dsseEnvelope"]["signatures"] = json!(signatures);
    write_bundle(&at, "two.json", &two);
    assert_refused(
        &at,
        "two.json",
        "hermetic-out.tar.zst",
        "key.pub",
        "signature_count",
    );

    let (code, report) = verify(
        &at,
        "prov.json",
        "hermetic-out.tar.zst",
        "key.pub",
        &["--builder-id", "urn:someone:else"],
    );
    assert_eq!(
        (code, report["reason"].as_str()),
        (4, Some("builder_id")),
        "{report}"
    );
    let archive = std::fs::read(at.path("hermetic-out.tar.zst")).unwrap();
    assert_eq!(
        archive,
        std::fs::read(at.path("hermetic-out.tar.zst")).unwrap(),
        "the artifact is untouched"
    );
}

#[test]
fn a_nondeterministic_build_gets_no_signed_provenance() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "key");
    let src = Source::new(&[]);
    let leaky = "mkdir -p out && date +%s%N > out/stamp";
    let output = build_with_provenance(&src, dir.path(), leaky, &[]);
    assert_status(&output, 3);
    assert!(
        stderr(&output).contains("only issued for reproducible builds"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("prov.json").exists());

    let output = build_with_provenance(&src, dir.path(), leaky, &["--unsigned-provenance"]);
    assert_status(&output, 3);
    let statement: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("prov.json")).unwrap()).unwrap();
    assert!(
        statement.get("dsseEnvelope").is_none(),
        "an unsigned report, not a bundle"
    );
    let verdict =
        statement["predicate"]["runDetails"]["byproducts"][0]["annotations"]["verdict"].clone();
    assert_eq!(verdict, "nondeterministic");
}

#[test]
fn two_builds_of_the_same_inputs_differ_only_in_run_metadata() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "key");
    let src = Source::new(&[("input.txt", "input\n")]);
    let mut statements = Vec::new();
    for _ in 0..2 {
        let output = build_with_provenance(&src, dir.path(), REPRODUCIBLE, &[]);
        assert_status(&output, 0);
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("prov.json")).unwrap()).unwrap();
        let mut statement = statement_of(&bundle);
        let metadata = &mut statement["predicate"]["runDetails"]["metadata"];
        for field in ["invocationId", "startedOn", "finishedOn"] {
            assert!(metadata[field].is_string());
            metadata[field] = Value::Null;
        }
        statements.push(statement);
        std::fs::remove_file(dir.path().join("prov.json")).unwrap();
    }
    assert_eq!(statements[0], statements[1]);
}
