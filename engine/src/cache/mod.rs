//! The signed cache: a build's outputs stored under a key derived from everything that
//! decides them, signed, and restored only after every check passed.
//!
//! - [`key`]: the cache key (`hermetic.cache-key/v1`), a SHA-256 over the key inputs.
//! - [`entry`]: the entry manifest, an in-toto statement about the archive whose predicate
//!   (`hermetic.cache-entry/v1`) carries the cache key, scope, verdict, builder and every
//!   file; signed as a DSSE envelope in a Sigstore bundle v0.3 with [`crate::signing`].
//! - [`store`]: the local directory store, its scopes, atomic writes and `gc`.
//! - [`restore`]: the ordered verification (signature, statement, key, archive digests
//!   while decompressing, entries against the manifest) before anything is published.
//! - [`quarantine`]: where a refused entry goes, with `reason.json` and an event.
//! - [`trust`]: which keys sign and which keys are trusted, per scope.
//! - [`remote`]: the same entries shared through an OCI registry, behind the local store.
//!
//! The format is documented in docs/cache-format.md.
pub mod entry;
#[cfg(feature = "fault-hooks")]
pub mod fault;
pub mod key;
pub mod quarantine;
pub mod remote;
pub mod restore;
pub mod store;
pub mod trust;

pub use entry::{EntryError, EntryManifest, OciManifestSubject, OpenedEntry};
pub use key::{CacheKey, KeyError, KeyInputs};
pub use quarantine::{QuarantineError, QuarantineRecord};
pub use restore::{
    restore, signed_by, verify_detached, Lookup, RestoreError, RestoreStep, RestoreTargets,
    Restored,
};
pub use store::{Scope, Store, StoreError};
pub use trust::{Trust, TrustError};

/// File name of an entry's archive inside its directory.
pub const ARCHIVE_FILE: &str = "archive.tar.zst";
/// File name of an entry's signed manifest (a Sigstore bundle) inside its directory.
pub const BUNDLE_FILE: &str = "entry.sigstore.json";
