//! ECDSA P-256 keys in the formats cosign reads and writes (docs/formats.md §1.1).
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::encrypted;
use super::pem::{self, PemError};

/// The label cosign v3 writes for encrypted private keys, and the one we write.
pub const ENCRYPTED_SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign versions wrote; still read.
pub const ENCRYPTED_COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const PKCS8_LABEL: &str = "PRIVATE KEY";
const SEC1_LABEL: &str = "EC PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
const PRIVATE_LABELS: &str = "ENCRYPTED SIGSTORE PRIVATE KEY, ENCRYPTED COSIGN PRIVATE KEY, \
PRIVATE KEY or EC PRIVATE KEY";

/// Environment variables holding the key password, first match wins; cosign reads the
/// second one, so existing setups keep working.
pub const PASSWORD_VARIABLES: [&str; 2] = ["HERMETIC_PASSWORD", "COSIGN_PASSWORD"];

/// Why a key could not be read, decrypted or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to read the PEM text")]
    Pem(#[from] PemError),
    #[error("unsupported PEM block `{label}` (expected {expected})")]
    UnsupportedLabel {
        label: String,
        expected: &'static str,
    },
    #[error("the private key is encrypted but no password was given")]
    PasswordRequired,
    #[error("the encrypted private key is not valid cosign key JSON")]
    EncryptedJson(#[source] serde_json::Error),
    #[error("unsupported key derivation `{name}` in the encrypted private key (expected scrypt)")]
    Kdf { name: String },
    #[error("unsupported cipher `{name}` in the encrypted private key (expected nacl/secretbox)")]
    Cipher { name: String },
    #[error(
        "refused scrypt parameters N={n} r={r} p={p} in the encrypted private key \
         (accepted: N = 32768, 65536 or 131072 with r = 8 and p = 1)"
    )]
    ScryptParams { n: u64, r: u64, p: u64 },
    #[error("the encrypted private key's nonce is {len} bytes long (expected 24)")]
    NonceLength { len: usize },
    #[error(
        "wrong password: the private key could not be decrypted (or the key file is corrupted)"
    )]
    WrongPassword,
    #[error("the private key is not an ECDSA P-256 key in PKCS#8 form")]
    Pkcs8(#[source] p256::pkcs8::Error),
    #[error("the private key is not an ECDSA P-256 key in SEC1 form")]
    Sec1(#[source] p256::elliptic_curve::Error),
    #[error("the public key is not an ECDSA P-256 key in PKIX form")]
    PublicKey(#[source] p256::pkcs8::spki::Error),
    #[error("key prefix `{prefix}` does not end in a file name")]
    BadPrefix { prefix: PathBuf },
    #[error("failed to open directory `{path}` for the key files")]
    OpenDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("failed to check whether `{path}` exists")]
    CheckExists {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create a temporary file in `{dir}`")]
    CreateTemp {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write the key to a temporary file in `{dir}`")]
    WriteTemp {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to move the key into place at `{path}`")]
    Publish {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to flush directory `{path}` to disk")]
    SyncDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An ECDSA P-256 private key. It has no Debug or Display and cannot be turned into text
/// other than by encrypting it; the key material is wiped on drop.
pub struct SigningKey(ecdsa::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self(ecdsa::SigningKey::random(&mut OsRng))
    }

    /// Reads a private key: cosign's encrypted format (`ENCRYPTED SIGSTORE PRIVATE KEY` or
    /// `ENCRYPTED COSIGN PRIVATE KEY`, which need `password`; the empty password is a valid
    /// one), or unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`), for which
    /// `password` is not used.
    pub fn from_pem(pem: &str, password: Option<&[u8]>) -> Result<Self, KeyError> {
        let block = pem::first_block(pem)?;
        match block.label.as_str() {
            ENCRYPTED_SIGSTORE_LABEL | ENCRYPTED_COSIGN_LABEL => {
                let password = password.ok_or(KeyError::PasswordRequired)?;
                let pkcs8 = encrypted::decrypt(&block.der, password)?;
                Self::from_pkcs8_der(&pkcs8)
            }
            PKCS8_LABEL => Self::from_pkcs8_der(&block.der),
            SEC1_LABEL => p256::SecretKey::from_sec1_der(&block.der)
                .map(|secret| Self(secret.into()))
                .map_err(KeyError::Sec1),
            _ => Err(KeyError::UnsupportedLabel {
                label: block.label.clone(),
                expected: PRIVATE_LABELS,
            }),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        ecdsa::SigningKey::from_pkcs8_der(der)
            .map(Self)
            .map_err(KeyError::Pkcs8)
    }

    /// The key as an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block, as `cosign generate-key-pair`
    /// writes it: PKCS#8 DER sealed with NaCl secretbox under scrypt(N=65536, r=8, p=1) of
    /// `password` with a fresh 32-byte salt and 24-byte nonce.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> String {
        let pkcs8 = self
            .0
            .to_pkcs8_der()
            .expect("a P-256 key always encodes as PKCS#8");
        let json = encrypted::encrypt(pkcs8.as_bytes(), password);
        pem::encode(ENCRYPTED_SIGSTORE_LABEL, &json)
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::new(*self.0.verifying_key())
    }

    /// The underlying key, for the signing module.
    pub(super) fn ecdsa(&self) -> &ecdsa::SigningKey {
        &self.0
    }
}

/// An ECDSA P-256 public key. Debug shows its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key: ecdsa::VerifyingKey,
    /// SHA-256 of the DER SubjectPublicKeyInfo: the basis of both the hint and the key id.
    spki_sha256: [u8; 32],
}

impl VerifyingKey {
    fn new(key: ecdsa::VerifyingKey) -> Self {
        let spki_sha256 = Sha256::digest(Self::spki_der(&key)).into();
        Self { key, spki_sha256 }
    }

    fn spki_der(key: &ecdsa::VerifyingKey) -> Vec<u8> {
        key.to_public_key_der()
            .expect("a P-256 public key always encodes as SubjectPublicKeyInfo")
            .into_vec()
    }

    /// Reads a PKIX `PUBLIC KEY` PEM block (what `cosign generate-key-pair` and
    /// `openssl pkey -pubout` write).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let block = pem::first_block(pem)?;
        if block.label != PUBLIC_KEY_LABEL {
            return Err(KeyError::UnsupportedLabel {
                label: block.label.clone(),
                expected: PUBLIC_KEY_LABEL,
            });
        }
        ecdsa::VerifyingKey::from_public_key_der(&block.der)
            .map(Self::new)
            .map_err(KeyError::PublicKey)
    }

    /// The key as a PKIX `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> String {
        pem::encode(PUBLIC_KEY_LABEL, &Self::spki_der(&self.key))
    }

    /// The key hint cosign puts in bundles: standard base64 of SHA-256 of the DER
    /// SubjectPublicKeyInfo. It is an unauthenticated lookup aid, never a reason to trust.
    pub fn hint(&self) -> String {
        STANDARD.encode(self.spki_sha256)
    }

    /// The same digest as the hint in lowercase hex, for file names and logs.
    pub fn key_id(&self) -> String {
        hex::encode(self.spki_sha256)
    }

    /// The underlying key, for the verification module.
    pub(super) fn ecdsa(&self) -> &ecdsa::VerifyingKey {
        &self.key
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifyingKey").field(&self.key_id()).finish()
    }
}

/// A private key password. No Debug or Display; wiped on drop.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password given as bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The password from `HERMETIC_PASSWORD`, else `COSIGN_PASSWORD`, else the empty
    /// password (allowed, as in cosign). A variable that is set but empty counts as set.
    pub fn from_env() -> Self {
        Self::first_set(PASSWORD_VARIABLES.map(std::env::var_os))
    }

    fn first_set(values: impl IntoIterator<Item = Option<OsString>>) -> Self {
        let value = values.into_iter().flatten().next().unwrap_or_default();
        Self::new(value.into_vec())
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the empty password.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_keys;
    use super::*;

    /// `Result::unwrap_err` needs Debug on the key, which it deliberately lacks.
    fn key_error(result: Result<SigningKey, KeyError>) -> KeyError {
        result.err().expect("the key should have been refused")
    }

    #[test]
    fn encrypted_key_round_trips() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(b"correct horse");
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let read = SigningKey::from_pem(&pem, Some(b"correct horse")).unwrap();
        assert_eq!(read.verifying_key(), key.verifying_key());
    }

    #[test]
    fn empty_password_is_a_password() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(b"");
        let read = SigningKey::from_pem(&pem, Some(b"")).unwrap();
        assert_eq!(read.verifying_key(), key.verifying_key());
        assert!(matches!(
            key_error(SigningKey::from_pem(&pem, None)),
            KeyError::PasswordRequired
        ));
    }

    #[test]
    fn wrong_password_is_refused() {
        let pem = SigningKey::generate().to_encrypted_pem(b"right");
        assert!(matches!(
            key_error(SigningKey::from_pem(&pem, Some(b"wrong"))),
            KeyError::WrongPassword
        ));
        assert!(matches!(
            key_error(SigningKey::from_pem(&pem, Some(b""))),
            KeyError::WrongPassword
        ));
    }

    #[test]
    fn legacy_cosign_label_is_read() {
        let key = SigningKey::generate();
        let pem = key
            .to_encrypted_pem(b"pw")
            .replace(ENCRYPTED_SIGSTORE_LABEL, ENCRYPTED_COSIGN_LABEL);
        let read = SigningKey::from_pem(&pem, Some(b"pw")).unwrap();
        assert_eq!(read.verifying_key(), key.verifying_key());
    }

    #[test]
    fn pkcs8_and_sec1_keys_are_read() {
        let pkcs8 = SigningKey::from_pem(test_keys::PKCS8_PEM, None).unwrap();
        let sec1 = SigningKey::from_pem(test_keys::SEC1_PEM, Some(b"ignored")).unwrap();
        let public = VerifyingKey::from_pem(test_keys::PUBLIC_PEM).unwrap();
        assert_eq!(pkcs8.verifying_key(), public);
        assert_eq!(sec1.verifying_key(), public);
    }

    #[test]
    fn other_key_kinds_are_refused() {
        assert!(matches!(
            key_error(SigningKey::from_pem(test_keys::PUBLIC_PEM, None)),
            KeyError::UnsupportedLabel { label, .. } if label == "PUBLIC KEY"
        ));
        assert!(matches!(
            key_error(SigningKey::from_pem(test_keys::ED25519_PKCS8_PEM, None)),
            KeyError::Pkcs8(_)
        ));
        assert!(matches!(
            key_error(SigningKey::from_pem(test_keys::P384_SEC1_PEM, None)),
            KeyError::Sec1(_)
        ));
        assert!(matches!(
            VerifyingKey::from_pem(test_keys::PKCS8_PEM),
            Err(KeyError::UnsupportedLabel { label, .. }) if label == "PRIVATE KEY"
        ));
        assert!(matches!(
            VerifyingKey::from_pem(test_keys::ED25519_PUBLIC_PEM),
            Err(KeyError::PublicKey(_))
        ));
    }

    #[test]
    fn public_key_pem_round_trips() {
        let public = VerifyingKey::from_pem(test_keys::PUBLIC_PEM).unwrap();
        assert_eq!(public.to_pem(), test_keys::PUBLIC_PEM);
    }

    #[test]
    fn hint_and_key_id_are_sha256_of_the_spki() {
        let public = VerifyingKey::from_pem(test_keys::PUBLIC_PEM).unwrap();
        // `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`
        assert_eq!(public.key_id(), test_keys::PUBLIC_SPKI_SHA256_HEX);
        // `... | openssl dgst -sha256 -binary | base64`
        assert_eq!(public.hint(), test_keys::PUBLIC_HINT);
        assert_eq!(
            format!("{public:?}"),
            format!("VerifyingKey(\"{}\")", test_keys::PUBLIC_SPKI_SHA256_HEX)
        );
    }

    #[test]
    fn password_comes_from_the_first_set_variable() {
        let bytes = |values: [Option<&str>; 2]| {
            Password::first_set(values.map(|value| value.map(OsString::from)))
                .as_bytes()
                .to_vec()
        };
        assert_eq!(bytes([Some("mine"), Some("cosign")]), b"mine");
        assert_eq!(bytes([None, Some("cosign")]), b"cosign");
        assert_eq!(bytes([Some(""), Some("cosign")]), b"");
        assert_eq!(bytes([None, None]), b"");
        assert!(Password::first_set([None, None]).is_empty());
    }
}
