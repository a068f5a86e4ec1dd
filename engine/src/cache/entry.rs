//! The signed entry manifest.
//!
//! An entry's manifest is an in-toto Statement v1 whose first subject is the archive
//! (sha256 and blake3) and whose predicate ([`EntryManifest`], predicate type
//! [`ENTRY_PREDICATE_TYPE`]) holds the cache key and its inputs, the scope, the verdict,
//! the builder, the archive's digests and size, and every file. An entry published to a
//! registry has a second subject, its OCI entry manifest (sha256 only), so that a
//! signature cannot be moved to another entry there. It is signed as a DSSE envelope
//! (payload type `application/vnd.in-toto+json`) in a Sigstore bundle v0.3, so the cache
//! key is inside the signed bytes and `cosign verify-blob-attestation --type
//! urn:hermetic:cache-entry:v1` (and, for a published entry, `cosign verify`) can check an
//! entry too.
//!
//! Parsing is strict: unknown fields and duplicate keys are refused at every level, and the
//! signed bytes are parsed once, after the signature checked out.
use serde::{Deserialize, Serialize};

use super::key::{CacheKey, KeyInputs};
use super::ARCHIVE_FILE;
use crate::archive::manifest::Manifest;
use crate::provenance::STATEMENT_TYPE;
use crate::signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::signing::{sign_dsse, verify_dsse, Bundle, SigningKey, VerifyError, VerifyingKey};

/// Predicate type of a cache entry statement.
pub const ENTRY_PREDICATE_TYPE: &str = "urn:hermetic:cache-entry:v1";

/// Version of the entry manifest. Changelog (bump on any change; a restore refuses every
/// version but this one):
/// - `hermetic.cache-entry/v1`: first version.
pub const ENTRY_SCHEMA: &str = "hermetic.cache-entry/v1";

/// Verdict of an entry made from a dual run: the only kind stored by default.
pub const VERDICT_REPRODUCIBLE: &str = "reproducible";
/// Verdict of an entry made from a single run (stored only when asked, and marked).
pub const VERDICT_SINGLE_RUN: &str = "built";

/// The predicate: what the entry is and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryManifest {
    /// [`ENTRY_SCHEMA`].
    pub schema: String,
    pub cache_key: CacheKey,
    pub key_inputs: KeyInputs,
    /// The scope the entry was written to; a restore requires it to be the scope read.
    pub scope: String,
    /// [`VERDICT_REPRODUCIBLE`] or [`VERDICT_SINGLE_RUN`].
    pub verdict: String,
    /// True for an entry from a single run (`--cache-single-run`).
    pub single_run: bool,
    pub builder: Builder,
    pub archive: ArchiveDigests,
    /// Every entry of the archive (`hermetic.manifest/v1`).
    pub manifest: Manifest,
    /// When the entry was signed, RFC 3339 UTC. Informational.
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Builder {
    /// `urn:hermetic:builder:key:<key id>` of the signing key.
    pub id: String,
    pub hermetic_version: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveDigests {
    pub sha256: String,
    pub blake3: String,
    pub size: u64,
}

impl ArchiveDigests {
    /// The digests of an archive held in memory (a crafted one, in drills and tests).
    pub fn of(archive: &[u8]) -> Self {
        Self {
            sha256: crate::digest::sha256_hex(archive),
            blake3: blake3::hash(archive).to_hex().to_string(),
            size: archive.len() as u64,
        }
    }
}

/// The signed payload of an entry: a statement about the archive (and, for a published
/// entry, its OCI entry manifest).
type Statement = crate::provenance::Statement<Subject, EntryManifest>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    name: String,
    digest: SubjectDigest,
}

/// The archive's subject has both digests; the OCI entry manifest's only sha256, the one
/// digest a registry names it by.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectDigest {
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blake3: Option<String>,
}

/// The second subject of a published entry's statement: the OCI entry manifest in the
/// registry (docs/cache-format.md §Remote cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciManifestSubject {
    /// The repository, `REPO/SCOPE`, without the registry's host.
    pub name: String,
    /// Lowercase hex SHA-256 of the OCI entry manifest's bytes.
    pub sha256: String,
}

/// An entry manifest whose signature and statement checked out ([`EntryManifest::open`]).
#[derive(Debug)]
pub struct OpenedEntry {
    pub entry: EntryManifest,
    /// The trusted key that signed it.
    pub signer: VerifyingKey,
    /// The OCI entry manifest it was signed for, when it was published to a registry. The
    /// caller that fetched that manifest requires its digest to be this one.
    pub oci_manifest: Option<OciManifestSubject>,
}

/// Why a bundle is not an acceptable entry manifest.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("the entry's signature is not accepted")]
    Signature(#[from] VerifyError),
    #[error("the signed payload is not a cache entry statement")]
    Malformed(#[source] serde_json::Error),
    #[error("the statement type is {found:?}, not {STATEMENT_TYPE:?}")]
    StatementType { found: String },
    #[error("the predicate type is {found:?}, not {ENTRY_PREDICATE_TYPE:?}")]
    PredicateType { found: String },
    #[error("the entry format is {found:?}; this hermetic reads only {ENTRY_SCHEMA:?}")]
    Version { found: String },
    #[error(
        "the statement has {count} subjects (the archive, and for a published entry its \
         OCI entry manifest)"
    )]
    SubjectCount { count: usize },
    #[error("the first subject ({name:?}) is not the archive {ARCHIVE_FILE:?} with its sha256 and blake3")]
    ArchiveSubject { name: String },
    #[error("the second subject ({name:?}) is not an OCI entry manifest: {problem}")]
    OciManifestSubject { name: String, problem: &'static str },
    #[error("the subject's {algorithm} {subject} differs from the predicate's {predicate}")]
    SubjectMismatch {
        algorithm: &'static str,
        subject: String,
        predicate: String,
    },
}

impl EntryError {
    /// A stable, machine-readable name for the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Signature(err) => err.reason(),
            Self::Malformed(_) => "statement_malformed",
            Self::StatementType { .. } => "statement_type",
            Self::PredicateType { .. } => "predicate_type",
            Self::Version { .. } => "format_version",
            Self::SubjectCount { .. }
            | Self::ArchiveSubject { .. }
            | Self::OciManifestSubject { .. }
            | Self::SubjectMismatch { .. } => "subject_mismatch",
        }
    }
}

impl EntryManifest {
    /// Signs the manifest: the statement about the archive, in a DSSE bundle.
    pub fn sign(&self, key: &SigningKey) -> Bundle {
        self.sign_subjects(key, None)
    }

    /// Signs the manifest of an entry published to a registry: the statement about the
    /// archive and about `oci_manifest`, the OCI entry manifest that names it there.
    pub fn sign_with_oci_manifest(
        &self,
        key: &SigningKey,
        oci_manifest: &OciManifestSubject,
    ) -> Bundle {
        self.sign_subjects(key, Some(oci_manifest))
    }

    fn sign_subjects(&self, key: &SigningKey, oci_manifest: Option<&OciManifestSubject>) -> Bundle {
        let archive = Subject {
            name: ARCHIVE_FILE.to_owned(),
            digest: SubjectDigest {
                sha256: self.archive.sha256.clone(),
                blake3: Some(self.archive.blake3.clone()),
            },
        };
        let oci_manifest = oci_manifest.map(|subject| Subject {
            name: subject.name.clone(),
            digest: SubjectDigest {
                sha256: subject.sha256.clone(),
                blake3: None,
            },
        });
        let statement = Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: std::iter::once(archive).chain(oci_manifest).collect(),
            predicate_type: ENTRY_PREDICATE_TYPE.to_owned(),
            predicate: self.clone(),
        };
        let payload = serde_json::to_vec(&statement).expect("statements serialise");
        sign_dsse(key, IN_TOTO_PAYLOAD_TYPE, &payload)
    }

    /// Verifies `bundle` with `trusted` keys only (exactly one signature, payload type
    /// exactly in-toto), then parses the signed payload strictly. The statement has the
    /// archive as its subject, or (a published entry) the archive and then its OCI entry
    /// manifest, which is returned for the caller to compare with the manifest it fetched.
    /// The caller checks the key, scope and archive.
    pub fn open(bundle: &Bundle, trusted: &[VerifyingKey]) -> Result<OpenedEntry, EntryError> {
        let verified = verify_dsse(bundle, trusted, IN_TOTO_PAYLOAD_TYPE)?;
        let statement: Statement =
            serde_json::from_slice(&verified.payload).map_err(EntryError::Malformed)?;
        if statement.statement_type != STATEMENT_TYPE {
            return Err(EntryError::StatementType {
                found: statement.statement_type,
            });
        }
        if statement.predicate_type != ENTRY_PREDICATE_TYPE {
            return Err(EntryError::PredicateType {
                found: statement.predicate_type,
            });
        }
        let entry = statement.predicate;
        if entry.schema != ENTRY_SCHEMA {
            return Err(EntryError::Version {
                found: entry.schema,
            });
        }
        let (archive, oci_manifest) = match statement.subject.as_slice() {
            [archive] => (archive, None),
            [archive, oci_manifest] => (archive, Some(oci_manifest_subject(oci_manifest)?)),
            subjects => {
                return Err(EntryError::SubjectCount {
                    count: subjects.len(),
                })
            }
        };
        let archive_blake3 = match &archive.digest.blake3 {
            Some(blake3) if archive.name == ARCHIVE_FILE => blake3,
            _ => {
                return Err(EntryError::ArchiveSubject {
                    name: archive.name.clone(),
                })
            }
        };
        for (algorithm, subject, predicate) in [
            ("sha256", &archive.digest.sha256, &entry.archive.sha256),
            ("blake3", archive_blake3, &entry.archive.blake3),
        ] {
            if subject != predicate {
                return Err(EntryError::SubjectMismatch {
                    algorithm,
                    subject: subject.clone(),
                    predicate: predicate.clone(),
                });
            }
        }
        Ok(OpenedEntry {
            entry,
            signer: verified.key,
            oci_manifest,
        })
    }
}

/// The second subject, which must name an OCI manifest the way registries do: by a sha256
/// alone (a second archive, with its blake3, is not an entry manifest).
fn oci_manifest_subject(subject: &Subject) -> Result<OciManifestSubject, EntryError> {
    let refuse = |problem| EntryError::OciManifestSubject {
        name: subject.name.clone(),
        problem,
    };
    if subject.digest.blake3.is_some() {
        return Err(refuse("it has a blake3 digest, as only the archive does"));
    }
    let sha256 = &subject.digest.sha256;
    let is_hex = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_hex {
        return Err(refuse("its sha256 is not 64 lowercase hex digits"));
    }
    if subject.name.is_empty() || subject.name == ARCHIVE_FILE {
        return Err(refuse("it is not named after a repository"));
    }
    Ok(OciManifestSubject {
        name: subject.name.clone(),
        sha256: sha256.clone(),
    })
}

/// The first symlink of `manifest` whose target is absolute or, resolved from the link's
/// directory, leaves the restored tree: such an output is not cached (and refused on
/// restore), because whoever uses the restored tree could be sent outside it.
pub fn escaping_symlink(manifest: &Manifest) -> Option<(&str, &str)> {
    manifest.files.iter().find_map(|entry| {
        let target = entry.target.as_deref()?;
        let escapes = target.starts_with('/') || {
            let mut depth = entry.path.matches('/').count();
            target.split('/').any(|component| match component {
                "" | "." => false,
                ".." => match depth.checked_sub(1) {
                    Some(up) => {
                        depth = up;
                        false
                    }
                    None => true,
                },
                _ => {
                    depth += 1;
                    false
                }
            })
        };
        escapes.then_some((entry.path.as_str(), target))
    })
}

/// `urn:hermetic:builder:key:<key id>`, the builder id of entries signed by `key`.
pub fn builder_id(key: &VerifyingKey) -> String {
    format!("{}{}", crate::provenance::BUILDER_ID_PREFIX, key.key_id())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::archive::manifest::FileEntry;
    use crate::cache::key::tests::sample_inputs;

    /// An entry for tests that need a signed manifest but no archive.
    pub(crate) fn sample_entry(scope: &str) -> EntryManifest {
        let inputs = sample_inputs("make");
        EntryManifest {
            schema: ENTRY_SCHEMA.to_owned(),
            cache_key: inputs.key(),
            key_inputs: inputs,
            scope: scope.to_owned(),
            verdict: VERDICT_REPRODUCIBLE.to_owned(),
            single_run: false,
            builder: Builder {
                id: "urn:hermetic:builder:key:test".to_owned(),
                hermetic_version: "test".to_owned(),
            },
            archive: ArchiveDigests {
                sha256: "aa".repeat(32),
                blake3: "bb".repeat(32),
                size: 100,
            },
            manifest: Manifest::new(vec![FileEntry::dir("out")]),
            created_at: "2026-11-27T05:00:00Z".to_owned(),
        }
    }

    fn oci_subject() -> OciManifestSubject {
        OciManifestSubject {
            name: "ci/cache/main".to_owned(),
            sha256: "cc".repeat(32),
        }
    }

    /// A statement about `entry` with these subjects, signed by `key`.
    fn signed_with_subjects(
        entry: &EntryManifest,
        subjects: serde_json::Value,
        key: &SigningKey,
    ) -> Bundle {
        let payload = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": subjects,
            "predicateType": ENTRY_PREDICATE_TYPE,
            "predicate": entry,
        });
        sign_dsse(
            key,
            IN_TOTO_PAYLOAD_TYPE,
            &serde_json::to_vec(&payload).unwrap(),
        )
    }

    fn archive_subject(entry: &EntryManifest) -> serde_json::Value {
        serde_json::json!({"name": ARCHIVE_FILE, "digest": {
            "sha256": entry.archive.sha256, "blake3": entry.archive.blake3}})
    }

    fn refusal(bundle: &Bundle, key: &SigningKey) -> EntryError {
        EntryManifest::open(bundle, &[key.verifying_key()]).unwrap_err()
    }

    #[test]
    fn a_local_entry_has_one_subject_and_opens_without_a_manifest() {
        let key = SigningKey::generate();
        let entry = sample_entry("main");
        let opened = EntryManifest::open(&entry.sign(&key), &[key.verifying_key()]).unwrap();
        assert_eq!(opened.entry, entry);
        assert_eq!(opened.signer, key.verifying_key());
        assert_eq!(opened.oci_manifest, None);
    }

    #[test]
    fn a_published_entry_names_its_oci_manifest_as_the_second_subject() {
        let key = SigningKey::generate();
        let entry = sample_entry("main");
        let bundle = entry.sign_with_oci_manifest(&key, &oci_subject());
        let opened = EntryManifest::open(&bundle, &[key.verifying_key()]).unwrap();
        assert_eq!(opened.entry, entry);
        assert_eq!(opened.oci_manifest, Some(oci_subject()));

        let crate::signing::Content::Dsse(envelope) = &bundle.content else {
            panic!("an entry is a DSSE bundle");
        };
        let statement: serde_json::Value = serde_json::from_slice(&envelope.payload).unwrap();
        assert_eq!(
            statement["subject"],
            serde_json::json!([
                archive_subject(&entry),
                {"name": "ci/cache/main", "digest": {"sha256": "cc".repeat(32)}},
            ])
        );
    }

    #[test]
    fn a_second_subject_must_be_a_manifest_digest_and_nothing_else() {
        let key = SigningKey::generate();
        let entry = sample_entry("main");
        let second_archive = serde_json::json!([archive_subject(&entry), {
            "name": "ci/cache/main",
            "digest": {"sha256": "cc".repeat(32), "blake3": "dd".repeat(32)}}]);
        let error = refusal(&signed_with_subjects(&entry, second_archive, &key), &key);
        assert!(
            matches!(error, EntryError::OciManifestSubject { .. }),
            "{error}"
        );
        assert_eq!(error.reason(), "subject_mismatch");

        let not_hex = serde_json::json!([archive_subject(&entry), {
            "name": "ci/cache/main", "digest": {"sha256": "CC".repeat(32)}}]);
        let error = refusal(&signed_with_subjects(&entry, not_hex, &key), &key);
        assert!(
            matches!(error, EntryError::OciManifestSubject { .. }),
            "{error}"
        );

        let other_algorithm = serde_json::json!([archive_subject(&entry), {
            "name": "ci/cache/main", "digest": {"sha512": "cc".repeat(64)}}]);
        let error = refusal(&signed_with_subjects(&entry, other_algorithm, &key), &key);
        assert_eq!(error.reason(), "statement_malformed", "{error}");
    }

    #[test]
    fn three_subjects_are_refused() {
        let key = SigningKey::generate();
        let entry = sample_entry("main");
        let manifest = serde_json::json!({"name": "ci/cache/main",
            "digest": {"sha256": "cc".repeat(32)}});
        let three = serde_json::json!([archive_subject(&entry), manifest, manifest]);
        let error = refusal(&signed_with_subjects(&entry, three, &key), &key);
        assert!(
            matches!(error, EntryError::SubjectCount { count: 3 }),
            "{error}"
        );
        assert_eq!(error.reason(), "subject_mismatch");
        let none = serde_json::json!([]);
        let error = refusal(&signed_with_subjects(&entry, none, &key), &key);
        assert!(
            matches!(error, EntryError::SubjectCount { count: 0 }),
            "{error}"
        );
    }

    #[test]
    fn the_archive_must_be_the_first_subject() {
        let key = SigningKey::generate();
        let entry = sample_entry("main");
        let manifest = serde_json::json!({"name": "ci/cache/main",
            "digest": {"sha256": "cc".repeat(32)}});
        for subjects in [
            serde_json::json!([manifest]),
            serde_json::json!([manifest, archive_subject(&entry)]),
            serde_json::json!([manifest, manifest]),
            serde_json::json!([{"name": "other.tar.zst", "digest": {
                "sha256": entry.archive.sha256, "blake3": entry.archive.blake3}}]),
        ] {
            let error = refusal(&signed_with_subjects(&entry, subjects.clone(), &key), &key);
            assert_eq!(error.reason(), "subject_mismatch", "{subjects}: {error}");
        }
        let other_archive = serde_json::json!([{"name": ARCHIVE_FILE, "digest": {
            "sha256": "ee".repeat(32), "blake3": entry.archive.blake3}}, manifest]);
        let error = refusal(&signed_with_subjects(&entry, other_archive, &key), &key);
        assert!(
            matches!(
                error,
                EntryError::SubjectMismatch {
                    algorithm: "sha256",
                    ..
                }
            ),
            "{error}"
        );
    }

    fn with_link(path: &str, target: &str) -> Manifest {
        let mut files = vec![FileEntry::dir("out"), FileEntry::dir("out/sub")];
        files.push(FileEntry::symlink(path, target));
        Manifest::new(files)
    }

    #[test]
    fn symlinks_must_stay_inside_the_tree() {
        for inside in ["a", "../x", "./a/../b", "../../top", "../sub/../a"] {
            assert_eq!(
                escaping_symlink(&with_link("out/sub/l", inside)),
                None,
                "{inside}"
            );
        }
        for outside in ["/etc/passwd", "../../../x", "../../..", "a/../../../../x"] {
            assert!(
                escaping_symlink(&with_link("out/sub/l", outside)).is_some(),
                "{outside}"
            );
        }
    }
}
