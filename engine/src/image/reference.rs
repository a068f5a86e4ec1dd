//! What names an image: its sha256 digests, and what resolving a reference found (a tag is
//! looked up once; from then on the digest is the image's identity).
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A string that is not `sha256:` and 64 lowercase hex digits.
#[derive(Debug, thiserror::Error)]
#[error("{input:?} is not a sha256 digest (`sha256:` and 64 lowercase hex digits)")]
pub struct DigestError {
    input: String,
}

/// A `sha256:<hex>` digest: of a blob, a manifest (the identity of a stored image), an index
/// or a config. Only sha256 is accepted, as the registry client checks only that.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageDigest {
    hex: String,
}

impl ImageDigest {
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let hex = input.strip_prefix("sha256:").unwrap_or_default();
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(DigestError {
                input: input.to_owned(),
            });
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    pub(crate) fn from_hasher(hasher: Sha256) -> Self {
        Self {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The 64 hex digits, as in `blobs/sha256/<hex>` and the store's directory names.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The same digest as the registry client spells it.
    pub fn to_registry(&self) -> hermetic_registry::Digest {
        hermetic_registry::parse_sha256_digest(&self.to_string())
            .expect("a parsed sha256 digest is one for the registry client too")
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(out, "sha256:{}", self.hex)
    }
}

impl TryFrom<String> for ImageDigest {
    type Error = DigestError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::parse(&input)
    }
}

impl From<ImageDigest> for String {
    fn from(digest: ImageDigest) -> String {
        digest.to_string()
    }
}

/// How a reference was resolved to the manifest that fixes the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// What the caller named: a registry reference, or the path imported (with its tag).
    pub reference: String,
    /// The tag looked up, when the reference had one.
    pub tag: Option<String>,
    /// The digest the reference resolved to first: the image index of a multi-platform
    /// image, else the manifest itself.
    pub resolved: ImageDigest,
    /// The manifest: the stored image's identity.
    pub manifest: ImageDigest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_sha256_digests_parse() {
        let hex = "a".repeat(64);
        let digest = ImageDigest::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(digest.hex(), hex);
        assert_eq!(digest.to_string(), format!("sha256:{hex}"));
        assert_eq!(digest.to_registry().to_string(), format!("sha256:{hex}"));
        for bad in [
            hex.clone(),
            format!("sha512:{hex}"),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{hex}/"),
        ] {
            assert!(ImageDigest::parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            ImageDigest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
