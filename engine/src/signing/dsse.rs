//! DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1).
use serde::{Deserialize, Serialize};

/// The payload type of in-toto statements, which cosign requires for attestations.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope. In JSON the fields are lowerCamelCase and the bytes standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// The signed bytes (for attestations, an in-toto statement).
    #[serde(with = "super::b64")]
    pub payload: Vec<u8>,
    /// What the payload is; covered by the signature through the PAE.
    pub payload_type: String,
    /// Exactly one for anything we sign or accept.
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Unauthenticated and never used by the verifier; cosign leaves it out and so do we.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    /// For ECDSA: the ASN.1 DER signature over SHA-256 of the [`pae`].
    #[serde(with = "super::b64")]
    pub sig: Vec<u8>,
}

/// The pre-authentication encoding that is signed instead of the bare payload, so the
/// signature also covers the payload type:
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    );
    let mut encoded = Vec::with_capacity(header.len() + payload.len());
    encoded.extend_from_slice(header.as_bytes());
    encoded.extend_from_slice(payload);
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn pae_counts_bytes_not_characters() {
        // "é" and "ü" are two bytes each in UTF-8.
        assert_eq!(
            pae("type/é", "ü!".as_bytes()),
            "DSSEv1 7 type/é 3 ü!".as_bytes()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        let payload = vec![b'x'; 1000];
        let encoded = pae(IN_TOTO_PAYLOAD_TYPE, &payload);
        let header = b"DSSEv1 28 application/vnd.in-toto+json 1000 ";
        assert_eq!(&encoded[..header.len()], header);
        assert_eq!(&encoded[header.len()..], payload.as_slice());
    }

    #[test]
    fn envelope_json_is_camel_case_and_base64() {
        let envelope = Envelope {
            payload: b"hello world".to_vec(),
            payload_type: "http://example.com/HelloWorld".to_owned(),
            signatures: vec![Signature {
                keyid: None,
                sig: vec![0xff, 0x00],
            }],
        };
        let json = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            json,
            r#"{"payload":"aGVsbG8gd29ybGQ=","payloadType":"http://example.com/HelloWorld","signatures":[{"sig":"/wA="}]}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), envelope);
        let with_keyid = json.replace(r#"{"sig""#, r#"{"keyid":"k","sig""#);
        let parsed: Envelope = serde_json::from_str(&with_keyid).unwrap();
        assert_eq!(parsed.signatures[0].keyid.as_deref(), Some("k"));
    }

    #[test]
    fn envelope_json_is_strict() {
        let good = r#"{"payload":"aGk=","payloadType":"t","signatures":[]}"#;
        assert!(serde_json::from_str::<Envelope>(good).is_ok());
        for bad in [
            // Unpadded and URL-safe base64: one spelling per value.
            r#"{"payload":"aGk","payloadType":"t","signatures":[]}"#,
            r#"{"payload":"_w==","payloadType":"t","signatures":[]}"#,
            r#"{"payload":"aGk=","payloadType":"t","signatures":[],"extra":1}"#,
            r#"{"payload":"aGk=","payload":"aGk=","payloadType":"t","signatures":[]}"#,
            r#"{"payload":"aGk=","payloadType":"t","signatures":[{"sig":"aGk=","other":1}]}"#,
            r#"{"payload":"aGk=","signatures":[]}"#,
        ] {
            assert!(serde_json::from_str::<Envelope>(bad).is_err(), "{bad}");
        }
    }
}
