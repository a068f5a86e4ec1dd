//! Sigstore bundles, v0.3, key-signed (docs/formats.md §2): the public key is named only by
//! a hint, there are no certificates, transparency log entries or timestamps.
//!
//! Reading is strict, because a verifier that accepts more than it checks invites
//! confusion: unknown fields, duplicate keys, other media types and anything but exactly
//! one of `dsseEnvelope` or `messageSignature` are refused.
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::dsse::Envelope;

/// The only media type read and written.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Larger bundles are refused before parsing (docs/restore-threats.md §8 step 1).
pub const MAX_BUNDLE_BYTES: usize = 1 << 20;
/// The protobuf enum name of SHA-256, the only digest P-256 signatures use here.
const SHA2_256: &str = "SHA2_256";

/// A parsed, structurally valid bundle. Nothing in it is trusted until verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `verificationMaterial.publicKey.hint`: which key the signer says it used. Only a
    /// lookup aid; see [`super::verify`].
    pub hint: Option<String>,
    /// The signed content.
    pub content: Content,
}

/// What a bundle signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `dsseEnvelope`: a signed payload with its type (attestations).
    Dsse(Envelope),
    /// `messageSignature`: a signature over an artifact that is not in the bundle.
    MessageSignature(MessageSignature),
}

impl Content {
    /// The JSON field name of this kind of content, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Dsse(_) => "dsseEnvelope",
            Content::MessageSignature(_) => "messageSignature",
        }
    }
}

/// A signature over an artifact's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSignature {
    /// `messageDigest` (algorithm SHA2_256): what the signer says the artifact's SHA-256
    /// is. Identification only: the signature is what is verified.
    pub sha256: [u8; 32],
    /// ASN.1 DER ECDSA P-256 signature over SHA-256 of the artifact.
    pub signature: Vec<u8>,
}

/// Why bytes are not an acceptable bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle is {len} bytes long (at most {max} are accepted)")]
    TooLarge { len: usize, max: usize },
    #[error("the bundle is not valid bundle JSON")]
    Json(#[source] serde_json::Error),
    #[error("unsupported bundle media type {found:?} (expected {MEDIA_TYPE:?})")]
    MediaType { found: Option<String> },
    #[error(
        "the bundle has `verificationMaterial.{field}`, which is not supported \
         (only key-signed bundles without transparency log entries or timestamps)"
    )]
    UnsupportedMaterial { field: &'static str },
    #[error("the bundle has no `verificationMaterial.publicKey`")]
    MissingPublicKey,
    #[error(
        "the bundle must hold exactly one of dsseEnvelope or messageSignature (found {found})"
    )]
    ContentKind { found: &'static str },
    #[error("unsupported message digest algorithm `{algorithm}` (expected {SHA2_256})")]
    DigestAlgorithm { algorithm: String },
    #[error("the message digest is {len} bytes long (SHA-256 has 32)")]
    DigestLength { len: usize },
}

impl BundleError {
    /// A stable, machine-readable name for the failure.
    pub fn reason(&self) -> &'static str {
        match self {
            BundleError::TooLarge { .. } => "too_large",
            BundleError::MediaType { .. } => "media_type",
            BundleError::UnsupportedMaterial { .. } | BundleError::DigestAlgorithm { .. } => {
                "unsupported"
            }
            BundleError::Json(_)
            | BundleError::MissingPublicKey
            | BundleError::ContentKind { .. }
            | BundleError::DigestLength { .. } => "malformed",
        }
    }
}

impl Bundle {
    /// Parses and checks a bundle's JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, BundleError> {
        Self::from_json_limited(json, MAX_BUNDLE_BYTES)
    }

    /// [`Bundle::from_json`] with another size cap, for bundles whose payload is known to
    /// be larger (a cache entry lists every file of its archive).
    pub fn from_json_limited(json: &[u8], max: usize) -> Result<Self, BundleError> {
        if json.len() > max {
            return Err(BundleError::TooLarge {
                len: json.len(),
                max,
            });
        }
        // The media type is looked at first, so a bundle of another version is reported as
        // such rather than as a field we do not know.
        let probe: MediaTypeProbe = serde_json::from_slice(json).map_err(BundleError::Json)?;
        if probe.media_type.as_deref() != Some(MEDIA_TYPE) {
            return Err(BundleError::MediaType {
                found: probe.media_type,
            });
        }
        let raw: RawBundle = serde_json::from_slice(json).map_err(BundleError::Json)?;
        let material = raw.verification_material;
        let unsupported = [
            (
                "x509CertificateChain",
                material.x509_certificate_chain.is_some(),
            ),
            ("certificate", material.certificate.is_some()),
            (
                "timestampVerificationData",
                material.timestamp_verification_data.is_some(),
            ),
            (
                "tlogEntries",
                material
                    .tlog_entries
                    .is_some_and(|entries| !entries.is_empty()),
            ),
        ];
        if let Some((field, _)) = unsupported.into_iter().find(|(_, present)| *present) {
            return Err(BundleError::UnsupportedMaterial { field });
        }
        let public_key = material.public_key.ok_or(BundleError::MissingPublicKey)?;
        let content = match (raw.dsse_envelope, raw.message_signature) {
            (Some(envelope), None) => Content::Dsse(envelope),
            (None, Some(signature)) => Content::MessageSignature(signature.try_into()?),
            (Some(_), Some(_)) => return Err(BundleError::ContentKind { found: "both" }),
            (None, None) => return Err(BundleError::ContentKind { found: "neither" }),
        };
        Ok(Bundle {
            hint: public_key.hint,
            content,
        })
    }

    /// The bundle as JSON (indented), in the form cosign writes.
    pub fn to_json(&self) -> String {
        let (dsse_envelope, message_signature) = match &self.content {
            Content::Dsse(envelope) => (Some(envelope.clone()), None),
            Content::MessageSignature(signature) => (
                None,
                Some(RawMessageSignature {
                    message_digest: RawHashOutput {
                        algorithm: SHA2_256.to_owned(),
                        digest: signature.sha256.to_vec(),
                    },
                    signature: signature.signature.clone(),
                }),
            ),
        };
        let raw = RawBundle {
            media_type: MEDIA_TYPE.to_owned(),
            verification_material: RawVerificationMaterial {
                public_key: Some(RawPublicKey {
                    hint: self.hint.clone(),
                }),
                x509_certificate_chain: None,
                certificate: None,
                tlog_entries: None,
                timestamp_verification_data: None,
            },
            dsse_envelope,
            message_signature,
        };
        serde_json::to_string_pretty(&raw).expect("a bundle serializes")
    }
}

#[derive(Deserialize)]
struct MediaTypeProbe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBundle {
    media_type: String,
    verification_material: RawVerificationMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<Envelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<RawMessageSignature>,
}

/// The fields we never write are read only to refuse them with a precise message.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVerificationMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<RawPublicKey>,
    #[serde(default, skip_serializing)]
    x509_certificate_chain: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    certificate: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    tlog_entries: Option<Vec<IgnoredAny>>,
    #[serde(default, skip_serializing)]
    timestamp_verification_data: Option<IgnoredAny>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublicKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMessageSignature {
    message_digest: RawHashOutput,
    #[serde(with = "super::b64")]
    signature: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHashOutput {
    algorithm: String,
    #[serde(with = "super::b64")]
    digest: Vec<u8>,
}

impl TryFrom<RawMessageSignature> for MessageSignature {
    type Error = BundleError;

    fn try_from(raw: RawMessageSignature) -> Result<Self, BundleError> {
        if raw.message_digest.algorithm != SHA2_256 {
            return Err(BundleError::DigestAlgorithm {
                algorithm: raw.message_digest.algorithm,
            });
        }
        let len = raw.message_digest.digest.len();
        let sha256 = raw
            .message_digest
            .digest
            .try_into()
            .map_err(|_| BundleError::DigestLength { len })?;
        Ok(MessageSignature {
            sha256,
            signature: raw.signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::dsse::Signature;

    const DSSE_BUNDLE: &str = r#"{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": { "publicKey": { "hint": "aGludA==" } },
  "dsseEnvelope": {
    "payload": "aGk=",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [ { "sig": "c2ln" } ]
  }
}"#;

    const BLOB_BUNDLE: &str = r#"{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": { "publicKey": { "hint": "aGludA==" } },
  "messageSignature": {
    "messageDigest": { "algorithm": "SHA2_256", "digest": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
    "signature": "c2ln"
  }
}"#;

    fn parse_error(json: &str) -> BundleError {
        Bundle::from_json(json.as_bytes()).expect_err("the bundle should have been refused")
    }

    #[test]
    fn reads_the_documented_forms() {
        let dsse = Bundle::from_json(DSSE_BUNDLE.as_bytes()).unwrap();
        assert_eq!(dsse.hint.as_deref(), Some("aGludA=="));
        assert_eq!(
            dsse.content,
            Content::Dsse(Envelope {
                payload: b"hi".to_vec(),
                payload_type: "application/vnd.in-toto+json".to_owned(),
                signatures: vec![Signature {
                    keyid: None,
                    sig: b"sig".to_vec()
                }],
            })
        );
        let blob = Bundle::from_json(BLOB_BUNDLE.as_bytes()).unwrap();
        assert_eq!(
            blob.content,
            Content::MessageSignature(MessageSignature {
                sha256: [0; 32],
                signature: b"sig".to_vec()
            })
        );
    }

    #[test]
    fn round_trips_through_json() {
        for json in [DSSE_BUNDLE, BLOB_BUNDLE] {
            let bundle = Bundle::from_json(json.as_bytes()).unwrap();
            let written = bundle.to_json();
            assert_eq!(Bundle::from_json(written.as_bytes()).unwrap(), bundle);
            let as_value = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
            assert_eq!(as_value(&written), as_value(json));
        }
    }

    #[test]
    fn accepts_empty_tlog_entries_and_a_missing_hint() {
        let json = DSSE_BUNDLE.replace(
            r#"{ "publicKey": { "hint": "aGludA==" } }"#,
            r#"{ "publicKey": {}, "tlogEntries": [] }"#,
        );
        assert_eq!(Bundle::from_json(json.as_bytes()).unwrap().hint, None);
    }

    #[test]
    fn refuses_other_media_types() {
        for (from, to) in [
            ("bundle.v0.3+json", "bundle.v0.4+json"),
            ("bundle.v0.3+json", "bundle+json;version=0.2"),
            (r#""mediaType""#, r#""mediatype""#),
        ] {
            let error = parse_error(&DSSE_BUNDLE.replace(from, to));
            assert!(matches!(error, BundleError::MediaType { .. }), "{error}");
            assert_eq!(error.reason(), "media_type");
        }
    }

    #[test]
    fn refuses_certificates_tlog_entries_and_timestamps() {
        for (material, field) in [
            (
                r#"{ "x509CertificateChain": { "certificates": [] } }"#,
                "x509CertificateChain",
            ),
            (
                r#"{ "certificate": { "rawBytes": "AA==" } }"#,
                "certificate",
            ),
            (
                r#"{ "publicKey": {}, "tlogEntries": [ { "logIndex": "1" } ] }"#,
                "tlogEntries",
            ),
            (
                r#"{ "publicKey": {}, "timestampVerificationData": {} }"#,
                "timestampVerificationData",
            ),
        ] {
            let json = DSSE_BUNDLE.replace(r#"{ "publicKey": { "hint": "aGludA==" } }"#, material);
            let error = parse_error(&json);
            assert!(
                matches!(error, BundleError::UnsupportedMaterial { field: got } if got == field),
                "{error}"
            );
            assert_eq!(error.reason(), "unsupported");
        }
        let error = parse_error(&DSSE_BUNDLE.replace(r#"{ "hint": "aGludA==" }"#, "null"));
        assert!(matches!(error, BundleError::MissingPublicKey), "{error}");
    }

    #[test]
    fn refuses_anything_but_exactly_one_content() {
        let both = DSSE_BUNDLE.replace(
            r#""dsseEnvelope""#,
            r#""messageSignature": { "messageDigest": { "algorithm": "SHA2_256", "digest": "" }, "signature": "" }, "dsseEnvelope""#,
        );
        let error = parse_error(&both);
        assert!(
            matches!(error, BundleError::ContentKind { found: "both" }),
            "{error}"
        );
        let neither = r#"{ "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": { "publicKey": {} } }"#;
        let error = parse_error(neither);
        assert!(
            matches!(error, BundleError::ContentKind { found: "neither" }),
            "{error}"
        );
        assert_eq!(error.reason(), "malformed");
    }

    #[test]
    fn refuses_unknown_and_duplicate_fields() {
        for json in [
            DSSE_BUNDLE.replace(r#""mediaType""#, r#""extra": 1, "mediaType""#),
            DSSE_BUNDLE.replace(r#""publicKey""#, r#""extra": 1, "publicKey""#),
            DSSE_BUNDLE.replace(r#""hint""#, r#""extra": 1, "hint""#),
            DSSE_BUNDLE.replace(r#""payload""#, r#""extra": 1, "payload""#),
            DSSE_BUNDLE.replace(r#""payload""#, r#""payload": "aGk=", "payload""#),
            DSSE_BUNDLE.replace(
                r#""mediaType""#,
                r#""mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "mediaType""#,
            ),
            DSSE_BUNDLE.replace("c2ln", "c2ln!"),
            BLOB_BUNDLE.replace(r#""signature""#, r#""extra": 1, "signature""#),
            "not json".to_owned(),
        ] {
            let error = parse_error(&json);
            assert!(matches!(error, BundleError::Json(_)), "{json}: {error}");
            assert_eq!(error.reason(), "malformed");
        }
    }

    #[test]
    fn refuses_other_digests() {
        let error = parse_error(&BLOB_BUNDLE.replace("SHA2_256", "SHA2_384"));
        assert!(
            matches!(error, BundleError::DigestAlgorithm { .. }),
            "{error}"
        );
        let error = parse_error(
            &BLOB_BUNDLE.replace("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAA"),
        );
        assert!(
            matches!(error, BundleError::DigestLength { len: 3 }),
            "{error}"
        );
    }

    #[test]
    fn refuses_oversized_bundles_before_parsing() {
        let json = vec![b' '; MAX_BUNDLE_BYTES + 1];
        let error = Bundle::from_json(&json).unwrap_err();
        assert!(matches!(error, BundleError::TooLarge { .. }), "{error}");
        assert_eq!(error.reason(), "too_large");
    }
}
