//! Checking bundles against keys the caller trusts.
//!
//! Trust comes only from the `trusted` keys passed in. The bundle's key hint is
//! unauthenticated (an attacker writes whatever hint they like), so it never selects or
//! admits a key: every trusted key is tried, and the hint only decides which error
//! explains a failure (GHSA-fx35-mq7g-6g98 is what happens otherwise).
//!
//! What is NOT checked here, and is the caller's job: that a verified DSSE payload is about
//! the artifact at hand. [`verify_dsse`] returns the payload (for provenance, an in-toto
//! statement); the caller must parse it and require that a subject digest equals the
//! artifact's, that the predicate type is the expected one, and that its claims (cache
//! key, builder) are the ones asked for. sigstore-js does not bind the artifact either
//! (docs/formats.md §3, pitfall 2).
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;
use sha2::{Digest, Sha256};

use super::bundle::{Bundle, BundleError, Content};
use super::dsse;
use super::keys::VerifyingKey;

/// Why a bundle was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The bundle could not be parsed (for callers that parse and verify in one step).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("the bundle holds a {found}, but a {expected} was expected")]
    ContentKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("the DSSE envelope has {count} signatures (exactly one is required)")]
    SignatureCount { count: usize },
    #[error("the DSSE payload type is {found:?} (expected {expected:?})")]
    PayloadType { expected: String, found: String },
    #[error("the signature is not a DER-encoded ECDSA P-256 signature")]
    SignatureEncoding,
    #[error("no trusted keys were given")]
    NoTrustedKeys,
    #[error(
        "the signature does not verify with any of the {trusted} trusted keys, and the \
         bundle's key hint {hint:?} names none of them: signed by an untrusted key"
    )]
    UntrustedKey { trusted: usize, hint: String },
    #[error("the signature does not verify with any of the {trusted} trusted keys")]
    BadSignature { trusted: usize },
    #[error(
        "the bundle's message digest {claimed} is not the artifact's SHA-256 {actual}, \
         although the signature is valid"
    )]
    DigestMismatch { claimed: String, actual: String },
}

impl VerifyError {
    /// A stable, machine-readable name for the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Bundle(error) => error.reason(),
            VerifyError::ContentKind { .. } => "content_kind",
            VerifyError::SignatureCount { .. } => "signature_count",
            VerifyError::PayloadType { .. } => "payload_type",
            VerifyError::SignatureEncoding | VerifyError::BadSignature { .. } => "bad_signature",
            VerifyError::NoTrustedKeys | VerifyError::UntrustedKey { .. } => "untrusted_key",
            VerifyError::DigestMismatch { .. } => "digest_mismatch",
        }
    }
}

/// A DSSE bundle whose signature checked out.
#[derive(Debug)]
pub struct VerifiedDsse {
    /// The signed payload; not yet bound to any artifact (see the module docs).
    pub payload: Vec<u8>,
    /// The trusted key that made the signature.
    pub key: VerifyingKey,
}

/// A message signature bundle that checked out against an artifact.
#[derive(Debug)]
pub struct VerifiedBlob {
    /// The trusted key that made the signature.
    pub key: VerifyingKey,
}

/// Verifies a DSSE bundle: exactly one signature, payload type exactly
/// `expected_payload_type`, and a valid ECDSA signature over the PAE by one of `trusted`.
pub fn verify_dsse(
    bundle: &Bundle,
    trusted: &[VerifyingKey],
    expected_payload_type: &str,
) -> Result<VerifiedDsse, VerifyError> {
    let Content::Dsse(envelope) = &bundle.content else {
        return Err(VerifyError::ContentKind {
            expected: "dsseEnvelope",
            found: bundle.content.kind(),
        });
    };
    let [signature] = envelope.signatures.as_slice() else {
        return Err(VerifyError::SignatureCount {
            count: envelope.signatures.len(),
        });
    };
    if envelope.payload_type != expected_payload_type {
        return Err(VerifyError::PayloadType {
            expected: expected_payload_type.to_owned(),
            found: envelope.payload_type.clone(),
        });
    }
    let signature = decode_signature(&signature.sig)?;
    let pae = dsse::pae(&envelope.payload_type, &envelope.payload);
    let key = find_signer(trusted, bundle.hint.as_deref(), |key| {
        key.verify(&pae, &signature).is_ok()
    })?;
    Ok(VerifiedDsse {
        payload: envelope.payload.clone(),
        key: key.clone(),
    })
}

/// Verifies a message signature bundle against the artifact `blob`: a valid ECDSA
/// signature over it by one of `trusted`, and, as a consistency check sigstore-js skips,
/// a `messageDigest` equal to its SHA-256.
pub fn verify_blob(
    bundle: &Bundle,
    blob: &[u8],
    trusted: &[VerifyingKey],
) -> Result<VerifiedBlob, VerifyError> {
    let Content::MessageSignature(message) = &bundle.content else {
        return Err(VerifyError::ContentKind {
            expected: "messageSignature",
            found: bundle.content.kind(),
        });
    };
    let signature = decode_signature(&message.signature)?;
    let sha256: [u8; 32] = Sha256::digest(blob).into();
    let key = find_signer(trusted, bundle.hint.as_deref(), |key| {
        key.verify_prehash(&sha256, &signature).is_ok()
    })?;
    // After the signature, so that a different artifact is reported as what it is (a bad
    // signature) and this only catches a signer that described the artifact wrongly.
    if message.sha256 != sha256 {
        return Err(VerifyError::DigestMismatch {
            claimed: hex::encode(message.sha256),
            actual: hex::encode(sha256),
        });
    }
    Ok(VerifiedBlob { key: key.clone() })
}

/// Signatures are accepted in strict DER only, as cosign writes and Go's
/// `ecdsa.VerifyASN1` reads them, so each signature has one encoding.
fn decode_signature(der: &[u8]) -> Result<Signature, VerifyError> {
    Signature::from_der(der).map_err(|_| VerifyError::SignatureEncoding)
}

/// The trusted key for which `verifies` holds. The hint is consulted only after every
/// trusted key failed, to tell an untrusted signer from a broken signature.
fn find_signer<'k>(
    trusted: &'k [VerifyingKey],
    hint: Option<&str>,
    verifies: impl Fn(&p256::ecdsa::VerifyingKey) -> bool,
) -> Result<&'k VerifyingKey, VerifyError> {
    if trusted.is_empty() {
        return Err(VerifyError::NoTrustedKeys);
    }
    if let Some(key) = trusted.iter().find(|key| verifies(key.ecdsa())) {
        return Ok(key);
    }
    match hint {
        Some(hint) if !trusted.iter().any(|key| key.hint() == hint) => {
            Err(VerifyError::UntrustedKey {
                trusted: trusted.len(),
                hint: hint.to_owned(),
            })
        }
        _ => Err(VerifyError::BadSignature {
            trusted: trusted.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::dsse::{Envelope, Signature as DsseSignature, IN_TOTO_PAYLOAD_TYPE};
    use crate::signing::keys::SigningKey;
    use crate::signing::sign::{sign_blob, sign_dsse};

    const STATEMENT: &[u8] = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;

    fn envelope_mut(bundle: &mut Bundle) -> &mut Envelope {
        match &mut bundle.content {
            Content::Dsse(envelope) => envelope,
            Content::MessageSignature(_) => panic!("expected a DSSE bundle"),
        }
    }

    fn dsse_error(bundle: &Bundle, trusted: &[VerifyingKey]) -> VerifyError {
        verify_dsse(bundle, trusted, IN_TOTO_PAYLOAD_TYPE)
            .expect_err("the bundle should have been refused")
    }

    #[test]
    fn dsse_round_trip() {
        let key = SigningKey::generate();
        let bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let parsed = Bundle::from_json(bundle.to_json().as_bytes()).unwrap();
        let verified = verify_dsse(&parsed, &[key.verifying_key()], IN_TOTO_PAYLOAD_TYPE).unwrap();
        assert_eq!(verified.payload, STATEMENT);
        assert_eq!(verified.key, key.verifying_key());
    }

    #[test]
    fn dsse_finds_the_signer_among_several_trusted_keys() {
        let key = SigningKey::generate();
        let others = [SigningKey::generate(), SigningKey::generate()];
        let bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let trusted = [
            others[0].verifying_key(),
            key.verifying_key(),
            others[1].verifying_key(),
        ];
        let verified = verify_dsse(&bundle, &trusted, IN_TOTO_PAYLOAD_TYPE).unwrap();
        assert_eq!(verified.key, key.verifying_key());
    }

    #[test]
    fn dsse_modified_payload_is_refused() {
        let key = SigningKey::generate();
        let mut bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        envelope_mut(&mut bundle).payload.push(b' ');
        let error = dsse_error(&bundle, &[key.verifying_key()]);
        assert!(
            matches!(error, VerifyError::BadSignature { trusted: 1 }),
            "{error}"
        );
        assert_eq!(error.reason(), "bad_signature");
    }

    #[test]
    fn dsse_signature_from_another_envelope_is_refused() {
        let key = SigningKey::generate();
        let mut bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let mut other = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, b"{}");
        envelope_mut(&mut bundle).signatures = envelope_mut(&mut other).signatures.clone();
        let error = dsse_error(&bundle, &[key.verifying_key()]);
        assert_eq!(error.reason(), "bad_signature", "{error}");
    }

    #[test]
    fn dsse_untrusted_key_is_refused() {
        let trusted = SigningKey::generate();
        let attacker = SigningKey::generate();
        let bundle = sign_dsse(&attacker, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let error = dsse_error(&bundle, &[trusted.verifying_key()]);
        assert!(matches!(error, VerifyError::UntrustedKey { .. }), "{error}");
        assert_eq!(error.reason(), "untrusted_key");
        let error = dsse_error(&bundle, &[]);
        assert!(matches!(error, VerifyError::NoTrustedKeys), "{error}");
        assert_eq!(error.reason(), "untrusted_key");
    }

    #[test]
    fn dsse_attacker_signature_with_the_trusted_hint_is_refused() {
        let trusted = SigningKey::generate();
        let attacker = SigningKey::generate();
        let mut bundle = sign_dsse(&attacker, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        bundle.hint = Some(trusted.verifying_key().hint());
        let error = dsse_error(&bundle, &[trusted.verifying_key()]);
        assert!(matches!(error, VerifyError::BadSignature { .. }), "{error}");
        // The trusted bundle with the attacker's signature spliced in: the same case.
        let mut spliced = sign_dsse(&trusted, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let mut attacker_bundle = sign_dsse(&attacker, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        envelope_mut(&mut spliced).signatures =
            envelope_mut(&mut attacker_bundle).signatures.clone();
        let error = dsse_error(&spliced, &[trusted.verifying_key()]);
        assert_eq!(error.reason(), "bad_signature", "{error}");
    }

    #[test]
    fn dsse_hint_neither_grants_nor_denies_trust() {
        let trusted = SigningKey::generate();
        let attacker = SigningKey::generate();
        // A trusted signature under a hint naming the attacker's key is still the trusted
        // key's signature: the result names the key that verified, not the hint.
        for hint in [
            Some(attacker.verifying_key().hint()),
            None,
            Some("junk".into()),
        ] {
            let mut bundle = sign_dsse(&trusted, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
            bundle.hint = hint;
            let verified =
                verify_dsse(&bundle, &[trusted.verifying_key()], IN_TOTO_PAYLOAD_TYPE).unwrap();
            assert_eq!(verified.key, trusted.verifying_key());
        }
        // Trusting the attacker's key too does not make the attacker's hint pick it.
        let bundle = sign_dsse(&trusted, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let mut relabelled = bundle.clone();
        relabelled.hint = Some(attacker.verifying_key().hint());
        let both = [attacker.verifying_key(), trusted.verifying_key()];
        let verified = verify_dsse(&relabelled, &both, IN_TOTO_PAYLOAD_TYPE).unwrap();
        assert_eq!(verified.key, trusted.verifying_key());
    }

    #[test]
    fn dsse_wrong_payload_type_is_refused() {
        let key = SigningKey::generate();
        let bundle = sign_dsse(&key, "application/json", STATEMENT);
        let error = dsse_error(&bundle, &[key.verifying_key()]);
        assert!(matches!(error, VerifyError::PayloadType { .. }), "{error}");
        assert_eq!(error.reason(), "payload_type");
        // Relabelling the type breaks the signature, because the PAE covers it; but the
        // type check comes first and names the problem.
        let mut relabelled = bundle.clone();
        envelope_mut(&mut relabelled).payload_type = IN_TOTO_PAYLOAD_TYPE.to_owned();
        let error = dsse_error(&relabelled, &[key.verifying_key()]);
        assert_eq!(error.reason(), "bad_signature", "{error}");
        let error = verify_dsse(&bundle, &[key.verifying_key()], "application/JSON").unwrap_err();
        assert_eq!(error.reason(), "payload_type", "{error}");
    }

    #[test]
    fn dsse_needs_exactly_one_signature() {
        let key = SigningKey::generate();
        let mut bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let valid = envelope_mut(&mut bundle).signatures[0].clone();
        envelope_mut(&mut bundle).signatures.push(valid.clone());
        let error = dsse_error(&bundle, &[key.verifying_key()]);
        assert!(
            matches!(error, VerifyError::SignatureCount { count: 2 }),
            "{error}"
        );
        assert_eq!(error.reason(), "signature_count");
        envelope_mut(&mut bundle).signatures.clear();
        let error = dsse_error(&bundle, &[key.verifying_key()]);
        assert!(
            matches!(error, VerifyError::SignatureCount { count: 0 }),
            "{error}"
        );
    }

    #[test]
    fn dsse_signature_must_be_strict_der() {
        let key = SigningKey::generate();
        let mut bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let signature = &mut envelope_mut(&mut bundle).signatures[0];
        let der = signature.sig.clone();
        let raw = Signature::from_der(&der).unwrap().to_bytes().to_vec();
        for bad in [[der.as_slice(), &[0]].concat(), raw, Vec::new()] {
            envelope_mut(&mut bundle).signatures[0] = DsseSignature {
                keyid: None,
                sig: bad,
            };
            let error = dsse_error(&bundle, &[key.verifying_key()]);
            assert!(matches!(error, VerifyError::SignatureEncoding), "{error}");
            assert_eq!(error.reason(), "bad_signature");
        }
    }

    #[test]
    fn content_kinds_are_not_interchangeable() {
        let key = SigningKey::generate();
        let blob_bundle = sign_blob(&key, STATEMENT);
        let error = dsse_error(&blob_bundle, &[key.verifying_key()]);
        assert!(matches!(error, VerifyError::ContentKind { .. }), "{error}");
        assert_eq!(error.reason(), "content_kind");
        let dsse_bundle = sign_dsse(&key, IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let error = verify_blob(&dsse_bundle, STATEMENT, &[key.verifying_key()]).unwrap_err();
        assert_eq!(error.reason(), "content_kind", "{error}");
    }

    #[test]
    fn parse_failures_keep_their_reason() {
        let error = VerifyError::from(Bundle::from_json(b"{}").unwrap_err());
        assert_eq!(error.reason(), "media_type", "{error}");
        let error = VerifyError::from(
            Bundle::from_json(br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#)
                .unwrap_err(),
        );
        assert_eq!(error.reason(), "malformed", "{error}");
    }

    #[test]
    fn blob_round_trip() {
        let key = SigningKey::generate();
        let bundle = sign_blob(&key, b"artifact bytes");
        let parsed = Bundle::from_json(bundle.to_json().as_bytes()).unwrap();
        let verified = verify_blob(&parsed, b"artifact bytes", &[key.verifying_key()]).unwrap();
        assert_eq!(verified.key, key.verifying_key());
    }

    #[test]
    fn blob_other_artifact_is_refused() {
        let key = SigningKey::generate();
        let bundle = sign_blob(&key, b"artifact bytes");
        let error = verify_blob(&bundle, b"artifact bytez", &[key.verifying_key()]).unwrap_err();
        assert!(matches!(error, VerifyError::BadSignature { .. }), "{error}");
    }

    #[test]
    fn blob_wrong_message_digest_is_refused() {
        let key = SigningKey::generate();
        let mut bundle = sign_blob(&key, b"artifact bytes");
        if let Content::MessageSignature(message) = &mut bundle.content {
            message.sha256 = Sha256::digest(b"something else").into();
        }
        let error = verify_blob(&bundle, b"artifact bytes", &[key.verifying_key()]).unwrap_err();
        assert!(
            matches!(error, VerifyError::DigestMismatch { .. }),
            "{error}"
        );
        assert_eq!(error.reason(), "digest_mismatch");
    }

    #[test]
    fn blob_untrusted_key_is_refused() {
        let trusted = SigningKey::generate();
        let attacker = SigningKey::generate();
        let mut bundle = sign_blob(&attacker, b"artifact bytes");
        let error =
            verify_blob(&bundle, b"artifact bytes", &[trusted.verifying_key()]).unwrap_err();
        assert_eq!(error.reason(), "untrusted_key", "{error}");
        bundle.hint = Some(trusted.verifying_key().hint());
        let error =
            verify_blob(&bundle, b"artifact bytes", &[trusted.verifying_key()]).unwrap_err();
        assert_eq!(error.reason(), "bad_signature", "{error}");
    }
}
