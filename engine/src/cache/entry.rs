//! The signed entry manifest.
//!
//! An entry's manifest is an in-toto Statement v1 whose single subject is the archive
//! (sha256 and blake3) and whose predicate ([`EntryManifest`], predicate type
//! [`ENTRY_PREDICATE_TYPE`]) holds the cache key and its inputs, the scope, the verdict,
//! the builder, the archive's digests and size, and every file. It is signed as a DSSE
//! envelope (payload type `application/vnd.in-toto+json`) in a Sigstore bundle v0.3, so
//! the cache key is inside the signed bytes and `cosign verify-blob-attestation --type
//! urn:hermetic:cache-entry:v1` can check an entry too.
//!
//! Parsing is strict: unknown fields and duplicate keys are refused at every level, and the
//! signed bytes are parsed once, after the signature checked out.
use serde::{Deserialize, Serialize};

use super::key::{CacheKey, KeyInputs};
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

/// The signed payload of an entry: a statement about the archive.
type Statement = crate::provenance::Statement<Subject, EntryManifest>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    name: String,
    digest: SubjectDigest,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectDigest {
    sha256: String,
    blake3: String,
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
    #[error("the statement has {count} subjects (exactly one, the archive, is required)")]
    SubjectCount { count: usize },
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
            Self::SubjectCount { .. } | Self::SubjectMismatch { .. } => "subject_mismatch",
        }
    }
}

impl EntryManifest {
    /// Signs the manifest: the statement about the archive, in a DSSE bundle.
    pub fn sign(&self, key: &SigningKey) -> Bundle {
        let statement = Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject: vec![Subject {
                name: super::ARCHIVE_FILE.to_owned(),
                digest: SubjectDigest {
                    sha256: self.archive.sha256.clone(),
                    blake3: self.archive.blake3.clone(),
                },
            }],
            predicate_type: ENTRY_PREDICATE_TYPE.to_owned(),
            predicate: self.clone(),
        };
        let payload = serde_json::to_vec(&statement).expect("statements serialise");
        sign_dsse(key, IN_TOTO_PAYLOAD_TYPE, &payload)
    }

    /// Verifies `bundle` with `trusted` keys only (exactly one signature, payload type
    /// exactly in-toto), then parses the signed payload strictly. Returns the manifest and
    /// the key that signed it. The caller checks the key, scope and archive.
    pub fn open(
        bundle: &Bundle,
        trusted: &[VerifyingKey],
    ) -> Result<(Self, VerifyingKey), EntryError> {
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
        let manifest = statement.predicate;
        if manifest.schema != ENTRY_SCHEMA {
            return Err(EntryError::Version {
                found: manifest.schema,
            });
        }
        let [subject] = statement.subject.as_slice() else {
            return Err(EntryError::SubjectCount {
                count: statement.subject.len(),
            });
        };
        for (algorithm, subject, predicate) in [
            ("sha256", &subject.digest.sha256, &manifest.archive.sha256),
            ("blake3", &subject.digest.blake3, &manifest.archive.blake3),
        ] {
            if subject != predicate {
                return Err(EntryError::SubjectMismatch {
                    algorithm,
                    subject: subject.clone(),
                    predicate: predicate.clone(),
                });
            }
        }
        Ok((manifest, verified.key))
    }
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
mod tests {
    use super::*;
    use crate::archive::manifest::FileEntry;

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
