//! Which key signs new entries and which keys a restore trusts.
//!
//! Trust comes only from what the operator configured (`--trust-key`, or the config), and
//! from the embedded local key, never from an entry: an entry's key hint is ignored.
//!
//! The embedded local key is generated on first use in `<state-dir>/keys/cache-local.{key,pub}`
//! (mode 0600, empty password) so a single machine's cache works with no setup. It is
//! trusted for untrusted scopes always, and for trusted scopes only while no operator key
//! is configured: once an operator trusts their own keys, entries signed by the local key
//! (which any build on this machine can use) no longer satisfy a trusted scope.
use std::path::{Path, PathBuf};

use super::store::Scope;
use crate::signing::{write_key_pair, KeyError, Password, SigningKey, VerifyingKey};

/// Prefix (in the state dir) of the embedded local key pair.
const LOCAL_KEY_PREFIX: &str = "keys/cache-local";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("failed to read key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("failed to create the key directory {path}")]
    KeyDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The keys a restore may trust. Public keys only: no private key is decrypted to
/// restore an entry.
#[derive(Clone, Debug)]
pub struct Trust {
    /// Keys the operator configured (`--trust-key`).
    pub operator: Vec<VerifyingKey>,
    /// The embedded local key's public half.
    pub local: VerifyingKey,
}

impl Trust {
    /// Loads the operator's keys and the local key's public half, creating the local key
    /// pair in `state_dir` on first use.
    pub fn load(state_dir: &Path, trust_keys: &[PathBuf]) -> Result<Self, TrustError> {
        let operator = trust_keys
            .iter()
            .map(|path| {
                let pem = read(path)?;
                VerifyingKey::from_pem(&pem).map_err(|source| TrustError::Key {
                    path: path.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let local = local_public_key(state_dir)?;
        Ok(Self { operator, local })
    }

    /// The keys whose signatures a restore from `scope` accepts.
    pub fn keys_for(&self, scope: &Scope) -> Vec<VerifyingKey> {
        let mut keys = self.operator.clone();
        if !scope.is_trusted() || self.operator.is_empty() {
            keys.push(self.local.clone());
        }
        keys
    }

    /// Whether entries signed by `signer` would be accepted by restores from `scope`;
    /// storing an entry nobody will trust would only fill the cache with future
    /// quarantines.
    pub fn accepts(&self, scope: &Scope, signer: &VerifyingKey) -> bool {
        let hint = signer.hint();
        self.keys_for(scope).iter().any(|key| key.hint() == hint)
    }
}

/// The key new entries are signed with: `sign_key` (unlocked with `password` if
/// encrypted), else the local key from `state_dir`.
pub fn signing_key(
    state_dir: &Path,
    sign_key: Option<&Path>,
    password: &Password,
) -> Result<SigningKey, TrustError> {
    let (path, password) = match sign_key {
        Some(path) => (path.to_owned(), password.as_bytes()),
        None => {
            ensure_local_key(state_dir)?;
            (local_prefix(state_dir).with_extension("key"), &[][..])
        }
    };
    let pem = read(&path)?;
    SigningKey::from_pem(&pem, Some(password)).map_err(|source| TrustError::Key { path, source })
}

fn read(path: &Path) -> Result<String, TrustError> {
    std::fs::read_to_string(path).map_err(|source| TrustError::Read {
        path: path.to_owned(),
        source,
    })
}

fn local_prefix(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCAL_KEY_PREFIX)
}

/// Generates the local key pair if it is absent (mode 0600, empty password). Two processes
/// racing here both try; `write_key_pair` never replaces a file, so the loser uses the
/// winner's key.
fn ensure_local_key(state_dir: &Path) -> Result<(), TrustError> {
    let prefix = local_prefix(state_dir);
    if prefix.with_extension("key").exists() {
        return Ok(());
    }
    let dir = prefix.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir).map_err(|source| TrustError::KeyDir {
        path: dir.to_owned(),
        source,
    })?;
    match write_key_pair(&prefix, &Password::new(Vec::new())) {
        Ok(_) | Err(KeyError::Exists { .. }) => Ok(()),
        Err(source) => Err(TrustError::Key {
            path: prefix.with_extension("key"),
            source,
        }),
    }
}

/// The local key's public half, from its `.pub` file (or from the private key when a crash
/// left only that).
/// Where the local public key of `state_dir` is, made or not.
pub(crate) fn local_public_key_path(state_dir: &Path) -> PathBuf {
    local_prefix(state_dir).with_extension("pub")
}

fn local_public_key(state_dir: &Path) -> Result<VerifyingKey, TrustError> {
    ensure_local_key(state_dir)?;
    let public = local_public_key_path(state_dir);
    match std::fs::read_to_string(&public) {
        Ok(pem) => VerifyingKey::from_pem(&pem).map_err(|source| TrustError::Key {
            path: public,
            source,
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(signing_key(state_dir, None, &Password::new(Vec::new()))?.verifying_key())
        }
        Err(source) => Err(TrustError::Read {
            path: public,
            source,
        }),
    }
}
