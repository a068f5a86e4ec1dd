//! Making bundles: ECDSA P-256 with SHA-256, DER signatures, the key named by its hint, as
//! `cosign attest-blob` / `cosign sign-blob --key` do (docs/formats.md §1.2, §1.4).
use p256::ecdsa::signature::{SignatureEncoding, Signer};
use p256::ecdsa::DerSignature;
use sha2::{Digest, Sha256};

use super::bundle::{Bundle, Content, MessageSignature};
use super::dsse::{self, Envelope, Signature};
use super::keys::SigningKey;

/// Signs `payload` as a DSSE envelope of type `payload_type` (the signature is over the
/// PAE, not the bare payload); the envelope's `keyid` is left out, as cosign does.
pub fn sign_dsse(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Bundle {
    let signature: DerSignature = key.ecdsa().sign(&dsse::pae(payload_type, payload));
    Bundle {
        hint: Some(key.verifying_key().hint()),
        content: Content::Dsse(Envelope {
            payload: payload.to_vec(),
            payload_type: payload_type.to_owned(),
            signatures: vec![Signature {
                keyid: None,
                sig: signature.to_vec(),
            }],
        }),
    }
}

/// Signs the bytes of an artifact; the bundle also records their SHA-256 as
/// `messageDigest`.
pub fn sign_blob(key: &SigningKey, blob: &[u8]) -> Bundle {
    let signature: DerSignature = key.ecdsa().sign(blob);
    Bundle {
        hint: Some(key.verifying_key().hint()),
        content: Content::MessageSignature(MessageSignature {
            sha256: Sha256::digest(blob).into(),
            signature: signature.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::Signature as EcdsaSignature;

    use super::*;
    use crate::signing::test_keys;

    fn test_key() -> SigningKey {
        SigningKey::from_pem(test_keys::PKCS8_PEM, None).unwrap()
    }

    #[test]
    fn dsse_signature_is_der_ecdsa_over_the_pae() {
        let key = test_key();
        let bundle = sign_dsse(&key, "text/plain", b"hello");
        assert_eq!(bundle.hint.as_deref(), Some(test_keys::PUBLIC_HINT));
        let Content::Dsse(envelope) = &bundle.content else {
            panic!("expected a DSSE bundle");
        };
        assert_eq!(envelope.payload, b"hello");
        assert_eq!(envelope.payload_type, "text/plain");
        let [signature] = envelope.signatures.as_slice() else {
            panic!("expected one signature");
        };
        assert_eq!(signature.keyid, None);
        let ecdsa = EcdsaSignature::from_der(&signature.sig).unwrap();
        let public = key.verifying_key();
        assert!(public
            .ecdsa()
            .verify(b"DSSEv1 10 text/plain 5 hello", &ecdsa)
            .is_ok());
        assert!(public.ecdsa().verify(b"hello", &ecdsa).is_err());
    }

    #[test]
    fn blob_signature_is_der_ecdsa_over_the_blob() {
        let key = test_key();
        let bundle = sign_blob(&key, b"artifact");
        assert_eq!(bundle.hint.as_deref(), Some(test_keys::PUBLIC_HINT));
        let Content::MessageSignature(message) = &bundle.content else {
            panic!("expected a message signature bundle");
        };
        assert_eq!(
            message.sha256,
            <[u8; 32]>::from(Sha256::digest(b"artifact"))
        );
        let ecdsa = EcdsaSignature::from_der(&message.signature).unwrap();
        assert!(key
            .verifying_key()
            .ecdsa()
            .verify(b"artifact", &ecdsa)
            .is_ok());
    }
}
