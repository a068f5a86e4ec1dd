//! SLSA v1 provenance for a reproducible build: an in-toto Statement v1 whose subject is
//! the output archive, signed as a DSSE envelope in a Sigstore bundle v0.3
//! ([`crate::signing`]), and its offline verification. The format is documented in
//! docs/provenance.md.
pub mod rebuild;
pub mod statement;
pub mod verify;

pub use statement::{statement_for, ProvenanceError, ProvenanceInputs};
pub use verify::{verify_provenance, ProvenanceVerifyError, VerifiedProvenance};

/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// An in-toto Statement v1 as signed payloads carry it: subjects of type `S` and a
/// predicate of type `P`. Unknown top-level fields are refused, as cosign's protojson
/// parsing does. Provenance and cache entries each bring their own subject and predicate.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Statement<S, P> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<S>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}
/// SLSA Provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// Our build type. Version 1: a dual run (canonical run a, varied run b) in the hermetic
/// sandbox; `externalParameters` and `internalParameters` as in docs/provenance.md.
pub const BUILD_TYPE: &str = "urn:hermetic:buildtype:dual-run:v1";
/// The byproduct whose annotations carry the verdict, the mode and what was varied.
const VERDICT_BYPRODUCT: &str = "hermetic-verdict";
/// The builder id when the caller names none: derived from the signing key.
pub const BUILDER_ID_PREFIX: &str = "urn:hermetic:builder:key:";
