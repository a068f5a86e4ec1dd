//! Verifying a provenance bundle against an artifact, offline, with trusted keys only.
//!
//! Order: the signature first (exactly one, exact payload type, a trusted key; the
//! bundle's key hint is never trusted), then the statement: its type, the predicate type,
//! a subject whose sha256 (and blake3, when present) is the artifact's, and the builder id
//! when the caller pins one.
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::signing::{verify_dsse, Bundle, VerifiedDsse, VerifyError, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceVerifyError {
    #[error("failed to read {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signature is not accepted")]
    Signature(#[from] VerifyError),
    #[error("the signed payload is not an in-toto statement: {0}")]
    Statement(String),
    #[error("the statement type is {0:?}, not {expected:?}", expected = super::STATEMENT_TYPE)]
    StatementType(String),
    #[error("the predicate type is {0:?}, not {expected:?}", expected = super::SLSA_PROVENANCE_V1)]
    PredicateType(String),
    #[error("no subject has the artifact's sha256 {sha256}")]
    SubjectMismatch { sha256: String },
    #[error("the subject with the artifact's sha256 has blake3 {claimed}, but the artifact's is {actual}")]
    Blake3Mismatch { claimed: String, actual: String },
    #[error("the builder id is {found:?}, not the expected {expected:?}")]
    BuilderId { expected: String, found: String },
}

impl ProvenanceVerifyError {
    /// A stable, machine-readable name for the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            ProvenanceVerifyError::Read { .. } => "read",
            ProvenanceVerifyError::Signature(err) => err.reason(),
            ProvenanceVerifyError::Statement(_) => "statement_malformed",
            ProvenanceVerifyError::StatementType(_) => "statement_type",
            ProvenanceVerifyError::PredicateType(_) => "predicate_type",
            ProvenanceVerifyError::SubjectMismatch { .. } => "subject_mismatch",
            ProvenanceVerifyError::Blake3Mismatch { .. } => "subject_mismatch",
            ProvenanceVerifyError::BuilderId { .. } => "builder_id",
        }
    }
}

/// What a verified bundle says.
#[derive(Debug, serde::Serialize)]
pub struct VerifiedProvenance {
    pub key_id: String,
    pub builder_id: String,
    pub subject: String,
    pub sha256: String,
    pub blake3: String,
    /// The build's verdict, as the `hermetic-verdict` byproduct states it.
    pub verdict: Option<String>,
}

/// Any in-toto statement: the predicate is read only once its type is checked.
type Statement = super::Statement<Subject, Value>;

/// What verification reads of a SLSA v1 predicate; a part it lacks reads as empty.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Predicate {
    run_details: RunDetails,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RunDetails {
    builder: Builder,
    byproducts: Vec<Byproduct>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Builder {
    id: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Byproduct {
    name: String,
    annotations: Annotations,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Annotations {
    verdict: Option<String>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

/// Why [`read_signed_statement`] read no statement.
pub(crate) enum SignedStatementError {
    Read(std::io::Error),
    Signature(VerifyError),
    /// The signed payload is not the statement asked for.
    Malformed(String),
}

/// The in-toto statement (of type `T`) signed in the DSSE bundle at `bundle_path`, read up
/// to the bundle size limit and accepted only under a signature by one of `trusted`; and
/// the verification's result (the key that signed it).
pub(crate) fn read_signed_statement<T: serde::de::DeserializeOwned>(
    bundle_path: &Path,
    trusted: &[VerifyingKey],
) -> Result<(VerifiedDsse, T), SignedStatementError> {
    let mut bytes = Vec::new();
    std::fs::File::open(bundle_path)
        .and_then(|file| {
            file.take(crate::signing::bundle::MAX_BUNDLE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(SignedStatementError::Read)?;
    let verified = Bundle::from_json(&bytes)
        .map_err(VerifyError::from)
        .and_then(|bundle| verify_dsse(&bundle, trusted, IN_TOTO_PAYLOAD_TYPE))
        .map_err(SignedStatementError::Signature)?;
    let statement = serde_json::from_slice(&verified.payload)
        .map_err(|err| SignedStatementError::Malformed(err.to_string()))?;
    Ok((verified, statement))
}

pub fn verify_provenance(
    bundle_path: &Path,
    artifact_path: &Path,
    trusted: &[VerifyingKey],
    builder_id: Option<&str>,
) -> Result<VerifiedProvenance, ProvenanceVerifyError> {
    let read = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProvenanceVerifyError::Read { path, source }
    };
    let (verified, statement): (_, Statement) = read_signed_statement(bundle_path, trusted)
        .map_err(|err| match err {
            SignedStatementError::Read(source) => ProvenanceVerifyError::Read {
                path: bundle_path.to_path_buf(),
                source,
            },
            SignedStatementError::Signature(err) => err.into(),
            SignedStatementError::Malformed(why) => ProvenanceVerifyError::Statement(why),
        })?;
    if statement.statement_type != super::STATEMENT_TYPE {
        return Err(ProvenanceVerifyError::StatementType(
            statement.statement_type,
        ));
    }
    if statement.predicate_type != super::SLSA_PROVENANCE_V1 {
        return Err(ProvenanceVerifyError::PredicateType(
            statement.predicate_type,
        ));
    }
    let (sha256, blake3) =
        crate::digest::sha256_and_blake3_file(artifact_path).map_err(read(artifact_path))?;
    let subject = statement
        .subject
        .iter()
        .find(|s| s.digest.get("sha256") == Some(&sha256))
        .ok_or_else(|| ProvenanceVerifyError::SubjectMismatch {
            sha256: sha256.clone(),
        })?;
    if let Some(claimed) = subject.digest.get("blake3") {
        if *claimed != blake3 {
            return Err(ProvenanceVerifyError::Blake3Mismatch {
                claimed: claimed.clone(),
                actual: blake3,
            });
        }
    }
    let predicate: Predicate = serde_json::from_value(statement.predicate)
        .map_err(|err| ProvenanceVerifyError::Statement(err.to_string()))?;
    let RunDetails {
        builder: Builder { id: found },
        byproducts,
    } = predicate.run_details;
    if let Some(expected) = builder_id {
        if found != expected {
            return Err(ProvenanceVerifyError::BuilderId {
                expected: expected.to_string(),
                found,
            });
        }
    }
    let verdict = byproducts
        .into_iter()
        .find(|byproduct| byproduct.name == super::VERDICT_BYPRODUCT)
        .and_then(|byproduct| byproduct.annotations.verdict);
    Ok(VerifiedProvenance {
        key_id: verified.key.key_id(),
        builder_id: found,
        subject: subject.name.clone(),
        sha256,
        blake3,
        verdict,
    })
}
