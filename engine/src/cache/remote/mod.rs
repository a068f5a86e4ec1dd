//! The remote cache: entries shared between runners through an OCI registry
//! (docs/cache-format.md §Remote cache). The local store stays in front: a build looks
//! its key up locally first, then here; a verified remote entry is committed into the
//! local store and restored from there, so a remote restore is never less strict than a
//! local one.
//!
//! - [`layout`]: the entry manifest's exact bytes, the signature manifest, and the checks
//!   of what the registry hands back.
//! - [`fetch`]: lookup and verified fetch (steps `entry` to `archive`), then the commit and
//!   the local restore; a refused entry's fetched parts are quarantined locally.
//! - [`push`]: publishing an entry, and the conflicts a push finds.
//! - [`scrub`]: `cache ls --remote` and `cache verify --remote`.
//!
//! Each scope is its own repository, `REPO/SCOPE`. Every request is bounded by the
//! configured timeout; an outage or a refusal by the registry is a miss, never a failed
//! build. Trust comes from the same keys as for local entries: the registry's tags and
//! referrers are lookup hints only.
pub mod fetch;
pub mod layout;
pub mod push;
pub mod scrub;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hermetic_contract::build::RemoteCacheOptions;
use hermetic_registry::{
    ClientConfig, ClientError, Credentials, ErrorKind, PlainHttp, ReferenceError, RegistryError,
    Repository,
};

use super::key::CacheKey;
use super::store::Scope;
use crate::errors::Chain;

pub use fetch::{pull, restore, RemoteEntryError, RemoteLookup, SignatureCandidateError};
pub use push::{push, PushError, Pushed};
pub use scrub::{list, verify, Listed, ListedSignature, Scrubbed, ScrubbedOutcome};

/// How far a blob transfer got: bytes done, bytes in all. Called often, from the thread
/// that reads the blob (an upload's is not the caller's); for a progress display.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

static CONFLICTS: AtomicU64 = AtomicU64::new(0);

/// Conflicts this process found (the registry held another entry for a key it pushed).
pub fn conflicts_total() -> u64 {
    CONFLICTS.load(Ordering::Relaxed)
}

fn count_conflict() {
    CONFLICTS.fetch_add(1, Ordering::Relaxed);
}

/// Why the remote cache cannot be used as configured.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSetupError {
    #[error("--cache-remote {url:?}")]
    Url {
        url: String,
        #[source]
        source: ReferenceError,
    },
    #[error(
        "cache scope {scope:?} cannot be used with --cache-remote: in the registry a scope is \
         a repository path component (lowercase letters and digits separated by single \
         `.`, `_` or `-`)"
    )]
    ScopeNotARepository { scope: String },
    #[error("--registry-ca")]
    CaFile(#[source] ClientError),
    #[error("registry credentials")]
    Credentials(#[source] ClientError),
}

impl RemoteSetupError {
    /// Whether the request itself is wrong (a usage error), rather than the credentials of
    /// the process that runs the build, which only keep the registry from being used.
    pub fn is_usage_error(&self) -> bool {
        !matches!(self, RemoteSetupError::Credentials(_))
    }
}

/// The base repository of a `--cache-remote` URL (`oci://HOST[:PORT]/REPO`), checked.
pub fn parse_url(url: &str) -> Result<Repository, RemoteSetupError> {
    Repository::parse_oci_url(url).map_err(|source| RemoteSetupError::Url {
        url: url.to_owned(),
        source,
    })
}

/// A scope's repository in the registry, and the client that reaches it.
pub struct Remote {
    client: hermetic_registry::Client,
    repository: Repository,
    scope: Scope,
}

impl Remote {
    /// Sets up the client for `options` (its timeout bounds every request) and the
    /// repository of `scope`, `REPO/SCOPE`. Credentials come from the docker and podman
    /// auth files named by this process's environment.
    pub fn connect(options: &RemoteCacheOptions, scope: &Scope) -> Result<Self, RemoteSetupError> {
        let base = parse_url(&options.url)?;
        let repository = Repository::new(
            base.registry().authority(),
            &format!("{}/{}", base.name(), scope.as_str()),
        )
        .map_err(|_| RemoteSetupError::ScopeNotARepository {
            scope: scope.as_str().to_owned(),
        })?;
        let credentials = Credentials::from_environment().map_err(RemoteSetupError::Credentials)?;
        let timeout = Duration::from_secs(options.timeout_secs);
        let config = ClientConfig {
            connect_timeout: timeout,
            request_timeout: timeout,
            extra_ca_file: options.registry_ca.clone(),
            plain_http: if options.plain_http {
                PlainHttp::Insecure
            } else {
                PlainHttp::Loopback
            },
            ..ClientConfig::default()
        };
        let client = hermetic_registry::Client::new(config, credentials)
            .map_err(RemoteSetupError::CaFile)?;
        Ok(Remote {
            client,
            repository,
            scope: scope.clone(),
        })
    }

    /// `HOST/REPO/SCOPE`.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The registry client, for what else lives beside the cache (`repro::fleet`, the
    /// poison drill's scratch repository).
    pub(crate) fn client(&self) -> &hermetic_registry::Client {
        &self.client
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// `HOST/REPO/SCOPE:<key>`, the entry's tag.
    pub fn reference(&self, key: &CacheKey) -> String {
        format!("{}:{key}", self.repository)
    }

    pub(crate) fn tag(&self, key: &CacheKey) -> hermetic_registry::ManifestReference {
        hermetic_registry::ManifestReference::Tag(
            hermetic_registry::Tag::new(key.as_str()).expect("a cache key is a valid tag"),
        )
    }
}

/// What a registry failure means for the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trouble {
    /// 404: no such tag, blob or repository.
    NotFound,
    /// Down, slow, 5xx, 429, or an answer that is not the API's: status `unavailable`.
    Unavailable,
    /// Credentials or the request refused (4xx): status `denied`.
    Denied,
    /// The content failed a check (size, digest, media type): the entry's fault.
    Content,
    /// Our own side: the local file could not be read or written.
    Local,
}

fn trouble(error: &RegistryError) -> Trouble {
    match error.kind() {
        ErrorKind::TooLong { .. }
        | ErrorKind::Truncated { .. }
        | ErrorKind::DigestMismatch { .. }
        | ErrorKind::ManifestTooLarge { .. }
        | ErrorKind::UnexpectedMediaType { .. }
        | ErrorKind::InvalidManifest(_)
        | ErrorKind::UnsupportedDigest { .. } => Trouble::Content,
        ErrorKind::Write(_) | ErrorKind::ReadSource(_) | ErrorKind::SourceMismatch { .. } => {
            Trouble::Local
        }
        ErrorKind::CredentialsRequired { .. }
        | ErrorKind::CredentialsRefused { .. }
        | ErrorKind::UnsupportedChallenge { .. }
        | ErrorKind::InsecureTokenRealm { .. } => Trouble::Denied,
        _ if error.is_not_found() => Trouble::NotFound,
        _ if error.is_unavailable() => Trouble::Unavailable,
        ErrorKind::Status { .. } => Trouble::Denied,
        // A TLS failure, an answer that is not the API's, a lost push: nothing to use now.
        _ => Trouble::Unavailable,
    }
}

/// Why a remote lookup or listing ended without an entry, when it is not the entry's
/// fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// The registry was down, slow, or answered 5xx or 429.
    Unavailable(String),
    /// The registry refused the credentials or the request.
    Denied(String),
}

impl Unusable {
    fn of(error: &RegistryError) -> Option<Unusable> {
        let reason = Chain(error).to_string();
        match trouble(error) {
            Trouble::Unavailable => Some(Unusable::Unavailable(reason)),
            Trouble::Denied => Some(Unusable::Denied(reason)),
            Trouble::NotFound | Trouble::Content | Trouble::Local => None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Unusable::Unavailable(reason) | Unusable::Denied(reason) => reason,
        }
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Unavailable(reason) => write!(f, "registry unavailable: {reason}"),
            Unusable::Denied(reason) => write!(f, "registry denied the request: {reason}"),
        }
    }
}

/// A private directory in the local store's `tmp/` that receives what is fetched; removed
/// unless handed on (committed as an entry, or quarantined).
struct FetchDir {
    path: Option<PathBuf>,
}

impl FetchDir {
    fn new(store: &super::Store) -> Result<Self, super::StoreError> {
        Ok(FetchDir {
            path: Some(store.temp_dir("pull")?),
        })
    }

    fn path(&self) -> &std::path::Path {
        self.path.as_deref().expect("held until taken")
    }

    fn take(mut self) -> PathBuf {
        self.path.take().expect("held until taken")
    }
}

impl Drop for FetchDir {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            if let Err(error) = std::fs::remove_dir_all(path) {
                tracing::warn!(path = %path.display(), error = %error, "could not remove a fetched cache entry");
            }
        }
    }
}
