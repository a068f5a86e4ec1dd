//! A real cache entry, made the way a build makes one (pack, sign, store), and the tools to
//! attack it: raw tar streams the `tar` crate would refuse to write, re-signing, and checks
//! that a refused restore left everything as it was.
use std::path::{Path, PathBuf};

use hermetic::archive::outpath::OutputPath;
use hermetic::archive::pack::{pack_outputs, PackOptions};
use hermetic::cache::entry::{
    builder_id, ArchiveDigests, Builder, EntryManifest, ENTRY_SCHEMA, VERDICT_REPRODUCIBLE,
};
use hermetic::cache::quarantine::REASON_FILE;
use hermetic::cache::{
    restore, CacheKey, KeyInputs, Lookup, RestoreTargets, Scope, Store, ARCHIVE_FILE, BUNDLE_FILE,
};
use hermetic::signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use hermetic::signing::{sign_dsse, Bundle, Content, SigningKey, VerifyingKey};
use sha2::Digest;

pub const EPOCH: u64 = 315_532_800;
pub const PREVIOUS_ARTIFACT: &[u8] = b"the artifact from an earlier build";

/// Key inputs for a build of `command` (a build is not needed to make an entry).
pub fn inputs(command: &str) -> KeyInputs {
    serde_json::from_value(serde_json::json!({
        "schema": "hermetic.cache-key/v1",
        "hermeticVersion": "test",
        "specVersion": 1,
        "manifestSchema": "hermetic.manifest/v1",
        "sourceBlake3": "00".repeat(32),
        "command": ["sh", "-c", command],
        "outputs": ["out"],
        "profileSha256": "11".repeat(32),
        "seccompSha256": "22".repeat(32),
        "toolchain": { "kind": "host", "files": [["/usr/lib/os-release", "33".repeat(32)]] },
        "env": [["SOURCE_DATE_EPOCH", EPOCH.to_string()]],
        "sourceDateEpoch": EPOCH,
        "uid": 1000, "gid": 1000, "user": "build", "hostname": "hermetic",
        "buildDir": "/build", "umask": 18, "cpus": 2, "landlockAbi": 6, "zstdLevel": 3,
    }))
    .expect("valid key inputs")
}

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub store: Store,
    pub scope: Scope,
    pub key: CacheKey,
    pub signer: SigningKey,
    pub trusted: Vec<VerifyingKey>,
    /// The honest entry as signed.
    pub entry: EntryManifest,
    pub honest_archive: Vec<u8>,
}

impl Fixture {
    /// An honest entry for `make` in scope `local`, signed by the trusted key.
    pub fn new() -> Self {
        Self::in_scope("local")
    }

    pub fn in_scope(scope: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("build");
        std::fs::create_dir_all(root.join("out/sub")).unwrap();
        std::fs::write(root.join("out/a.txt"), "alpha\n").unwrap();
        std::fs::write(root.join("out/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("out/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("../a.txt", root.join("out/sub/link")).unwrap();
        let mut honest_archive = Vec::new();
        let packed = pack_outputs(
            &root,
            &[OutputPath::parse("out").unwrap()],
            &PackOptions {
                mtime: EPOCH,
                zstd_level: 3,
            },
            &mut honest_archive,
        )
        .unwrap();
        let store = Store::open(&tmp.path().join("cache")).unwrap();
        let scope = Scope::parse(scope).unwrap();
        let inputs = inputs("make");
        let key = inputs.key();
        let signer = SigningKey::generate();
        let verifying = signer.verifying_key();
        let entry = EntryManifest {
            schema: ENTRY_SCHEMA.to_owned(),
            cache_key: key.clone(),
            key_inputs: inputs,
            scope: scope.as_str().to_owned(),
            verdict: VERDICT_REPRODUCIBLE.to_owned(),
            single_run: false,
            builder: Builder {
                id: builder_id(&verifying),
                hermetic_version: "test".to_owned(),
            },
            archive: ArchiveDigests {
                sha256: packed.sha256.clone(),
                blake3: packed.blake3.clone(),
                size: packed.size,
            },
            manifest: packed.manifest,
            created_at: "2026-11-27T00:00:00Z".to_owned(),
        };
        let archive_file = tmp.path().join("honest.tar.zst");
        std::fs::write(&archive_file, &honest_archive).unwrap();
        let bundle = entry.sign(&signer);
        store
            .put(&scope, &entry, &archive_file, &bundle, false)
            .unwrap();
        // What a refused restore must leave alone: an artifact from an earlier build, a
        // directory next to the destination, and the destination's absence.
        let work = tmp.path().join("work");
        std::fs::create_dir_all(work.join("outside")).unwrap();
        std::fs::write(work.join("outside/keep"), "keep me\n").unwrap();
        std::fs::write(work.join("artifact.tar.zst"), PREVIOUS_ARTIFACT).unwrap();
        Self {
            tmp,
            store,
            scope,
            key,
            signer,
            trusted: vec![verifying],
            entry,
            honest_archive,
        }
    }

    pub fn entry_dir(&self) -> PathBuf {
        self.store.entry_dir(&self.scope, &self.key)
    }

    pub fn archive_path(&self) -> PathBuf {
        self.entry_dir().join(ARCHIVE_FILE)
    }

    pub fn bundle_path(&self) -> PathBuf {
        self.entry_dir().join(BUNDLE_FILE)
    }

    pub fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    pub fn dest(&self) -> PathBuf {
        self.work().join("dest")
    }

    pub fn artifact(&self) -> PathBuf {
        self.work().join("artifact.tar.zst")
    }

    /// Restores into the work dir: the archive to `artifact.tar.zst`, the tree to `dest`.
    pub fn restore_with(&self, trusted: &[VerifyingKey]) -> Lookup {
        let (artifact, dest) = (self.artifact(), self.dest());
        restore(
            &self.store,
            &self.scope,
            &self.key,
            trusted,
            false,
            RestoreTargets {
                artifact: Some(&artifact),
                extract: Some(&dest),
            },
        )
    }

    pub fn restore(&self) -> Lookup {
        self.restore_with(&self.trusted)
    }

    pub fn write_bundle(&self, bundle: &Bundle) {
        std::fs::write(self.bundle_path(), bundle.to_json()).unwrap();
    }

    /// The signed statement, as JSON, for attacks on its content.
    pub fn statement(&self) -> serde_json::Value {
        let bundle = self.entry.sign(&self.signer);
        let Content::Dsse(envelope) = bundle.content else {
            unreachable!("entries are DSSE")
        };
        serde_json::from_slice(&envelope.payload).unwrap()
    }

    /// Signs `payload` as the entry's statement with `key`.
    pub fn sign_payload(&self, key: &SigningKey, payload: &[u8]) -> Bundle {
        sign_dsse(key, IN_TOTO_PAYLOAD_TYPE, payload)
    }

    /// Replaces the archive with `archive` and re-signs the entry for it with the trusted
    /// key: what a compromised or buggy trusted builder could publish. Only the archive
    /// digests change; the file manifest stays the honest one.
    pub fn resign_archive(&self, archive: &[u8]) {
        let mut entry = self.entry.clone();
        entry.archive = ArchiveDigests {
            sha256: hex::encode(sha2::Sha256::digest(archive)),
            blake3: blake3::hash(archive).to_hex().to_string(),
            size: archive.len() as u64,
        };
        self.resign(&entry, archive);
    }

    /// Writes `archive` and a bundle for `entry` signed by the trusted key.
    pub fn resign(&self, entry: &EntryManifest, archive: &[u8]) {
        std::fs::write(self.archive_path(), archive).unwrap();
        self.write_bundle(&entry.sign(&self.signer));
    }

    /// Everything under the work dir (path, content), to show it did not change.
    pub fn work_snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut seen = Vec::new();
        snapshot(&self.work(), &self.work(), &mut seen);
        seen.sort();
        seen
    }
}

fn snapshot(root: &Path, dir: &Path, seen: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            seen.push((format!("{name}/"), Vec::new()));
            snapshot(root, &path, seen);
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            seen.push((name, target.display().to_string().into_bytes()));
        } else {
            seen.push((name, std::fs::read(&path).unwrap()));
        }
    }
}

/// Tar streams member by member, including what the `tar` crate refuses to write: the
/// poison drill's writer.
pub use hermetic::drill::poison::rawtar::RawTar;

/// The honest entry's members, in order, up to (not including) the end marker.
pub fn honest_members() -> RawTar {
    RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"alpha\n")
        .file("out/run.sh", 0o755, b"#!/bin/sh\necho hi\n")
        .dir("out/sub")
        .symlink("out/sub/link", "../a.txt")
}

/// zstd with a content checksum, as the packer writes it.
pub fn zstd(tar: &[u8]) -> Vec<u8> {
    hermetic::drill::poison::rawtar::zstd(tar).unwrap()
}

/// Asserts that the restore was refused for `reason` at `step`, and everything the issue
/// asks of a refusal: the entry is in quarantine with a matching `reason.json`, a
/// `cache_quarantine` event names it, the entry left its scope (so the next lookup is a
/// miss and the build runs fresh), and the work dir (artifact, destination, a directory
/// beside it) is exactly as before.
pub fn assert_refused(fx: &Fixture, reason: &str, step: &str) -> serde_json::Value {
    assert_refused_with(fx, &fx.trusted, reason, step)
}

/// [`assert_refused`] for a reader that trusts `trusted` (a key revoked, an operator key
/// configured).
pub fn assert_refused_with(
    fx: &Fixture,
    trusted: &[VerifyingKey],
    reason: &str,
    step: &str,
) -> serde_json::Value {
    let before = fx.work_snapshot();
    let lookup = fx.restore_with(trusted);
    let (error, quarantined) = match lookup {
        Lookup::Refused { error, quarantined } => (error, quarantined),
        other => panic!("expected a refusal ({reason}), got {other:?}"),
    };
    assert_eq!(error.reason(), reason, "{}", error.message());
    assert_eq!(error.step().as_str(), step, "{}", error.message());
    let quarantined = quarantined.expect("the entry is quarantined");
    assert!(quarantined.starts_with(fx.store.quarantine_dir()));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(quarantined.join(REASON_FILE)).unwrap()).unwrap();
    assert_eq!(record["schema"], "hermetic.cache-quarantine/v1");
    assert_eq!(record["reason"], reason);
    assert_eq!(record["step"], step);
    assert_eq!(record["key"], fx.key.as_str());
    assert_eq!(record["scope"], fx.scope.as_str());
    assert!(record["time"].as_str().unwrap().ends_with('Z'));
    assert!(!record["message"].as_str().unwrap().is_empty());

    let events = std::fs::read_to_string(fx.store.events_path()).unwrap();
    let event: serde_json::Value =
        serde_json::from_str(events.lines().last().expect("an event")).unwrap();
    assert_eq!(event["event"], "cache_quarantine");
    assert_eq!(event["schema"], "hermetic.event/v1");
    assert_eq!(event["reason"], reason);
    assert_eq!(event["key"], fx.key.as_str());
    assert_eq!(event["path"], quarantined.to_str().unwrap());

    assert!(!fx.entry_dir().exists(), "the entry left its scope");
    assert_eq!(fx.work_snapshot(), before, "the work dir changed");
    assert!(!fx.dest().exists());
    assert_eq!(std::fs::read(fx.artifact()).unwrap(), PREVIOUS_ARTIFACT);
    assert!(
        matches!(fx.restore_with(trusted), Lookup::Miss { reason: None }),
        "after quarantine the lookup is a plain miss, so the build runs"
    );
    record
}
