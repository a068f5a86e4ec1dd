//! cosign's encrypted private key format (go-securesystemslib `encrypted`): the PEM body of
//! an `ENCRYPTED SIGSTORE PRIVATE KEY` is the JSON
//! `{"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":b64},"cipher":{"name":"nacl/secretbox","nonce":b64},"ciphertext":b64}`,
//! where the ciphertext is NaCl secretbox (XSalsa20-Poly1305, tag first) of the PKCS#8 DER,
//! keyed with scrypt(password, salt).
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keys::KeyError;

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
/// log2(N) written: 2^16, cosign's default ("Standard") level.
const WRITE_LOG_N: u8 = 16;
/// log2(N) accepted: 2^15 (legacy, and what sigstore-rs writes), 2^16, 2^17 (OWASP). Anything
/// else is refused before scrypt runs, so a hostile key file cannot make us allocate
/// gigabytes or spin for minutes (go-securesystemslib `CheckParams`).
const ACCEPTED_LOG_N: [u8; 3] = [15, 16, 17];
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Field names and order are Go's `json.Marshal` of go-securesystemslib's structs, so the
/// JSON we write is byte-for-byte what cosign writes for the same salt, nonce and key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "super::b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "super::b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    #[serde(with = "super::b64")]
    nonce: Vec<u8>,
}

/// Encrypts `plaintext` (a PKCS#8 DER key) under `password` with a fresh salt and nonce;
/// returns the JSON that goes into the PEM block.
pub(super) fn encrypt(plaintext: &[u8], password: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let params = scrypt::Params::new(WRITE_LOG_N, SCRYPT_R, SCRYPT_P, KEY_LEN)
        .expect("the scrypt parameters we write are valid");
    let key = derive_key(password, &salt, &params);
    let ciphertext = XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key.as_slice()))
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .expect("secretbox encryption cannot fail for in-memory keys");
    let encrypted = EncryptedKey {
        kdf: Kdf {
            name: KDF_NAME.to_owned(),
            params: ScryptParams {
                n: 1 << WRITE_LOG_N,
                r: SCRYPT_R.into(),
                p: SCRYPT_P.into(),
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: CIPHER_NAME.to_owned(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    serde_json::to_vec(&encrypted).expect("the encrypted key serializes")
}

/// Decrypts the JSON of an encrypted key; returns the PKCS#8 DER plaintext.
pub(super) fn decrypt(json: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let encrypted: EncryptedKey = serde_json::from_slice(json).map_err(KeyError::EncryptedJson)?;
    if encrypted.kdf.name != KDF_NAME {
        return Err(KeyError::Kdf {
            name: encrypted.kdf.name,
        });
    }
    if encrypted.cipher.name != CIPHER_NAME {
        return Err(KeyError::Cipher {
            name: encrypted.cipher.name,
        });
    }
    let params = accepted_params(&encrypted.kdf.params)?;
    if encrypted.cipher.nonce.len() != NONCE_LEN {
        return Err(KeyError::NonceLength {
            len: encrypted.cipher.nonce.len(),
        });
    }
    let key = derive_key(password, &encrypted.kdf.salt, &params);
    XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key.as_slice()))
        .decrypt(
            Nonce::from_slice(&encrypted.cipher.nonce),
            encrypted.ciphertext.as_slice(),
        )
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassword)
}

/// The scrypt parameters of a key file, if they are among the accepted ones.
fn accepted_params(params: &ScryptParams) -> Result<scrypt::Params, KeyError> {
    let refused = || KeyError::ScryptParams {
        n: params.n,
        r: params.r,
        p: params.p,
    };
    let log_n = ACCEPTED_LOG_N
        .into_iter()
        .find(|log_n| params.n == 1 << log_n)
        .ok_or_else(refused)?;
    if params.r != u64::from(SCRYPT_R) || params.p != u64::from(SCRYPT_P) {
        return Err(refused());
    }
    scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P, KEY_LEN).map_err(|_| refused())
}

fn derive_key(password: &[u8], salt: &[u8], params: &scrypt::Params) -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(password, salt, params, key.as_mut())
        .expect("a 32-byte output is a valid scrypt length");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_json(n: u64, r: u64, p: u64) -> Vec<u8> {
        format!(
            r#"{{"kdf":{{"name":"scrypt","params":{{"N":{n},"r":{r},"p":{p}}},"salt":"AAAA"}},"cipher":{{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},"ciphertext":"AAAA"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn writes_cosign_field_names_and_default_parameters() {
        let json: serde_json::Value = serde_json::from_slice(&encrypt(b"plain", b"pw")).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(json["kdf"]["params"]["N"], 65536);
        assert_eq!(json["kdf"]["params"]["r"], 8);
        assert_eq!(json["kdf"]["params"]["p"], 1);
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        let b64_len = |value: &serde_json::Value| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap())
                .unwrap()
                .len()
        };
        assert_eq!(b64_len(&json["kdf"]["salt"]), SALT_LEN);
        assert_eq!(b64_len(&json["cipher"]["nonce"]), NONCE_LEN);
        // secretbox: 16-byte Poly1305 tag, then one byte per plaintext byte.
        assert_eq!(b64_len(&json["ciphertext"]), 16 + b"plain".len());
    }

    #[test]
    fn refuses_unaccepted_scrypt_parameters_before_running_scrypt() {
        // N = 2^30 with r = 8 would need 1 TiB: if scrypt ran, the test process would abort
        // on the allocation instead of returning this error.
        for (n, r, p) in [
            (1 << 30, 8, 1),
            (1 << 20, 8, 1),
            (1 << 14, 8, 1),
            (65535, 8, 1),
            (0, 8, 1),
            (65536, 16, 1),
            (65536, 8, 2),
            (65536, 1 << 40, 1),
        ] {
            match decrypt(&key_json(n, r, p), b"") {
                Err(KeyError::ScryptParams {
                    n: got_n,
                    r: got_r,
                    p: got_p,
                }) => assert_eq!((got_n, got_r, got_p), (n, r, p)),
                other => panic!("N={n} r={r} p={p}: expected ScryptParams, got {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_other_algorithms_and_malformed_fields() {
        let with = |from: &str, to: &str| {
            String::from_utf8(key_json(65536, 8, 1))
                .unwrap()
                .replace(from, to)
                .into_bytes()
        };
        assert!(matches!(
            decrypt(&with(r#""name":"scrypt""#, r#""name":"pbkdf2""#), b""),
            Err(KeyError::Kdf { name }) if name == "pbkdf2"
        ));
        assert!(matches!(
            decrypt(&with("nacl/secretbox", "aes-gcm"), b""),
            Err(KeyError::Cipher { name }) if name == "aes-gcm"
        ));
        assert!(matches!(
            decrypt(&with("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAA"), b""),
            Err(KeyError::NonceLength { len: 3 })
        ));
        assert!(matches!(
            decrypt(&with(r#""salt":"AAAA""#, r#""salt":"AAA""#), b""),
            Err(KeyError::EncryptedJson(_))
        ));
        assert!(matches!(
            decrypt(&with(r#""ciphertext""#, r#""extra":1,"ciphertext""#), b""),
            Err(KeyError::EncryptedJson(_))
        ));
    }
}
