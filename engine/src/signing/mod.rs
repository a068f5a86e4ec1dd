//! Signing: cosign-compatible keys, DSSE envelopes and Sigstore bundles (v0.3, key-signed,
//! no transparency log).
//!
//! The formats are described in docs/formats.md §1–§2; bundles made here verify with
//! `cosign verify-blob[-attestation] --key … --insecure-ignore-tlog`, sigstore-js and
//! openssl, and the interop tests check that against independent implementations.
//!
//! Signing ([`sign`]) and verification ([`verify`]) live in separate modules: the verifier
//! takes its trust only from the keys its caller passes in, never from the bundle.
mod b64;
pub mod bundle;
pub mod dsse;
mod encrypted;
mod key_files;
pub mod keys;
mod pem;
pub mod sign;
pub mod verify;

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod test_keys;

pub use bundle::{Bundle, BundleError, Content, MessageSignature};
pub use dsse::Envelope;
pub use key_files::{write_key_pair, KeyPairFiles};
pub use keys::{KeyError, Password, SigningKey, VerifyingKey};
pub use pem::PemError;
pub use sign::{sign_blob, sign_dsse};
pub use verify::{verify_blob, verify_dsse, VerifiedBlob, VerifiedDsse, VerifyError};
