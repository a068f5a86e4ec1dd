//! Remote restore (docs/cache-format.md §Remote cache, Remote restore), in order:
//!
//! 1. `entry`: the manifest tagged with the key (at most 64 KiB, an OCI image manifest);
//!    no tag is a miss.
//! 2. `signature`: its referrers of the bundle's type, at most 16 tried; each bundle is
//!    verified as a local one with the keys trusted for the scope, the first that
//!    verifies is the entry's signature. None listed: a miss (unsigned); listed but none
//!    verifies: refused. `statement`: two subjects, the second the digest of the bytes
//!    fetched in step 1.
//! 3. `key`: the signed format version, cache key and scope.
//! 4. `archive`: the entry manifest is byte for byte the one written for the signed
//!    archive; the blob is streamed into a private file in the store's `tmp/`, hashed
//!    (sha256 by the client, blake3 here) and cut off past the signed size.
//! 5. `entries`: the entry is committed into the local store and restored from there by
//!    the local restore.
//!
//! A refusal quarantines what was fetched (with a `reason.json` naming the registry
//! reference and digests); nothing is ever deleted from the registry.
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hermetic_registry::{
    Digest, ErrorKind, FetchedManifest, ManifestReference, RegistryError, OCI_MANIFEST,
};

use super::layout::{self, MAX_MANIFEST_BYTES, MAX_SIGNATURES, SIGNATURE_ARTIFACT_TYPE};
use super::{trouble, FetchDir, Progress, Remote, Trouble, Unusable};
use crate::cache::entry::{EntryError, EntryManifest, OpenedEntry};
use crate::cache::key::CacheKey;
use crate::cache::quarantine::{self, QuarantineRecord, Refusal, RemoteOrigin};
use crate::cache::restore::{
    entry_step, restore_entry, Lookup, RestoreError, RestoreStep, RestoreTargets, Restored,
    MAX_ENTRY_BUNDLE_BYTES,
};
use crate::cache::store::Store;
use crate::cache::{ARCHIVE_FILE, BUNDLE_FILE};
use crate::errors::Chain;
use crate::signing::{Bundle, BundleError, VerifyError, VerifyingKey};

/// File name, in quarantine, of a refused entry's OCI entry manifest.
pub const OCI_MANIFEST_FILE: &str = "oci-manifest.json";

/// What a remote lookup found.
#[derive(Debug)]
pub enum RemoteLookup {
    /// Verified, committed into the local store and restored from there.
    Hit {
        restored: Box<Restored>,
        /// The entry manifest's digest, `sha256:…`.
        manifest: String,
    },
    /// No usable entry: no tag, no signature yet, a single-run entry for a dual build, or
    /// a local failure (the reason says which).
    Miss { reason: String },
    /// The entry was refused; what was fetched of it went to `quarantined`.
    Refused {
        error: RemoteEntryError,
        quarantined: Option<PathBuf>,
    },
    /// The registry could not be used; the reason names the request and why.
    Unusable(Unusable),
}

/// Why a registry's entry was refused. Each names the restore step and what was expected
/// against what was found.
#[derive(Debug, thiserror::Error)]
pub enum RemoteEntryError {
    #[error("step entry: the entry manifest {reference} is not acceptable")]
    EntryManifest {
        reference: String,
        #[source]
        source: RegistryError,
    },
    #[error(
        "step signature: none of the {listed} signatures attached to {reference} verifies \
         with a key trusted for the scope; the first"
    )]
    NoTrustedSignature {
        reference: String,
        listed: usize,
        #[source]
        first: SignatureCandidateError,
    },
    #[error("step {}: the signature {referrer}", entry_step(.source))]
    Statement {
        referrer: String,
        #[source]
        source: EntryError,
    },
    #[error(
        "step statement: the signature {referrer} was made for the entry manifest {signed}, \
         not for {fetched} (a signature moved from another entry)"
    )]
    SignedForAnotherManifest {
        referrer: String,
        signed: String,
        fetched: String,
    },
    #[error("step key: the signed cache key is {found}, not the requested {expected} (an entry replayed under another key)")]
    KeyMismatch { expected: String, found: String },
    #[error("step key: the entry was signed for scope {found:?}, not {expected:?} (an entry moved between scopes)")]
    ScopeMismatch { expected: String, found: String },
    #[error(
        "step archive: the entry manifest {reference} is {found}, not the {expected} written \
         for the signed archive (its layer, config or annotations differ)"
    )]
    EntryManifestMismatch {
        reference: String,
        expected: String,
        found: String,
    },
    #[error("step archive: the archive of {reference} is not the signed one")]
    Archive {
        reference: String,
        /// The signed size.
        size: u64,
        #[source]
        source: RegistryError,
    },
    #[error(
        "step archive: the archive of {reference} has blake3 {found}, the signed one is {expected}"
    )]
    ArchiveBlake3 {
        reference: String,
        expected: String,
        found: String,
    },
    /// Step 5, the local restore of the committed entry.
    #[error(transparent)]
    Restore(RestoreError),
}

/// Why one signature attached to an entry was not the entry's signature.
#[derive(Debug, thiserror::Error)]
pub enum SignatureCandidateError {
    #[error("failed to fetch the signature {referrer}")]
    Fetch {
        referrer: String,
        #[source]
        source: RegistryError,
    },
    #[error("the signature manifest {referrer} is not a signature: {problem}")]
    Layout { referrer: String, problem: String },
    #[error("the signature {referrer} is not an acceptable bundle")]
    Bundle {
        referrer: String,
        #[source]
        source: BundleError,
    },
    #[error("the signature {referrer} is refused")]
    Signature {
        referrer: String,
        #[source]
        source: VerifyError,
    },
}

impl SignatureCandidateError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Fetch { source, .. } => match source.kind() {
                ErrorKind::ManifestTooLarge { .. } | ErrorKind::TooLong { .. } => "too_large",
                ErrorKind::UnexpectedMediaType { .. } => "media_type",
                _ => "malformed",
            },
            Self::Layout { .. } => "malformed",
            Self::Bundle { source, .. } => source.reason(),
            Self::Signature { source, .. } => source.reason(),
        }
    }
}

impl RemoteEntryError {
    /// The restore step that refused the entry.
    pub fn step(&self) -> RestoreStep {
        match self {
            Self::EntryManifest { .. } => RestoreStep::Entry,
            Self::NoTrustedSignature { .. } => RestoreStep::Signature,
            Self::Statement { source, .. } => entry_step(source),
            Self::SignedForAnotherManifest { .. } => RestoreStep::Statement,
            Self::KeyMismatch { .. } | Self::ScopeMismatch { .. } => RestoreStep::Key,
            Self::EntryManifestMismatch { .. }
            | Self::Archive { .. }
            | Self::ArchiveBlake3 { .. } => RestoreStep::Archive,
            Self::Restore(error) => error.step(),
        }
    }

    /// A stable, machine-readable name for the failure (the local ones, and
    /// `entry_manifest_mismatch`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::EntryManifest { source, .. } => match source.kind() {
                ErrorKind::ManifestTooLarge { .. } => "too_large",
                ErrorKind::UnexpectedMediaType { .. } => "media_type",
                _ => "malformed",
            },
            Self::NoTrustedSignature { first, .. } => first.reason(),
            Self::Statement { source, .. } => source.reason(),
            Self::SignedForAnotherManifest { .. } => "subject_mismatch",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::ScopeMismatch { .. } => "scope_mismatch",
            Self::EntryManifestMismatch { .. } => "entry_manifest_mismatch",
            Self::Archive { source, .. } => match source.kind() {
                ErrorKind::DigestMismatch { .. } => "archive_digest_mismatch",
                _ => "archive_size",
            },
            Self::ArchiveBlake3 { .. } => "archive_digest_mismatch",
            Self::Restore(error) => error.reason(),
        }
    }

    /// The file of the quarantined entry the failure is about.
    pub fn file(&self) -> Option<String> {
        match self {
            Self::EntryManifest { .. } | Self::EntryManifestMismatch { .. } => {
                Some(OCI_MANIFEST_FILE.to_owned())
            }
            Self::NoTrustedSignature { .. }
            | Self::Statement { .. }
            | Self::SignedForAnotherManifest { .. }
            | Self::KeyMismatch { .. }
            | Self::ScopeMismatch { .. } => Some(BUNDLE_FILE.to_owned()),
            Self::Archive { .. } | Self::ArchiveBlake3 { .. } => Some(ARCHIVE_FILE.to_owned()),
            Self::Restore(error) => error.file(),
        }
    }

    pub fn expected(&self) -> Option<String> {
        match self {
            Self::SignedForAnotherManifest { fetched, .. } => Some(fetched.clone()),
            Self::KeyMismatch { expected, .. }
            | Self::ScopeMismatch { expected, .. }
            | Self::EntryManifestMismatch { expected, .. }
            | Self::ArchiveBlake3 { expected, .. } => Some(expected.clone()),
            // As a local record has them: the signed sha256 in hex, or the signed size.
            Self::Archive { source, size, .. } => Some(match source.kind() {
                ErrorKind::DigestMismatch { expected, .. } => expected.digest().to_owned(),
                _ => size.to_string(),
            }),
            Self::Restore(error) => error.expected(),
            _ => None,
        }
    }

    pub fn found(&self) -> Option<String> {
        match self {
            Self::SignedForAnotherManifest { signed, .. } => Some(signed.clone()),
            Self::KeyMismatch { found, .. }
            | Self::ScopeMismatch { found, .. }
            | Self::EntryManifestMismatch { found, .. }
            | Self::ArchiveBlake3 { found, .. } => Some(found.clone()),
            Self::Archive { source, .. } => match source.kind() {
                ErrorKind::DigestMismatch { actual, .. } => Some(actual.digest().to_owned()),
                ErrorKind::TooLong { expected } => Some(format!("more than {expected}")),
                ErrorKind::Truncated { received, .. } | ErrorKind::Interrupted { received, .. } => {
                    Some(received.to_string())
                }
                _ => None,
            },
            Self::Restore(error) => error.found(),
            _ => None,
        }
    }

    /// The error and its sources, joined with `: `.
    pub fn message(&self) -> String {
        crate::errors::error_chain(self)
    }
}

/// Why a lookup stopped before it had an entry.
pub(super) enum Stop {
    Miss(String),
    Unusable(Unusable),
    Refused(RemoteEntryError),
}

impl Stop {
    /// A registry failure in a request about the entry itself: content that failed a
    /// check refuses it (`refuse`), anything else is a miss or an outage.
    fn registry(
        error: RegistryError,
        not_found: impl FnOnce() -> String,
        refuse: impl FnOnce(RegistryError) -> RemoteEntryError,
    ) -> Stop {
        match trouble(&error) {
            Trouble::NotFound => Stop::Miss(not_found()),
            Trouble::Content => Stop::Refused(refuse(error)),
            Trouble::Local => {
                Stop::Miss(format!("not fetched: a local failure: {}", Chain(&error)))
            }
            Trouble::Unavailable | Trouble::Denied => {
                Stop::Unusable(Unusable::of(&error).expect("an outage or a refusal is unusable"))
            }
        }
    }
}

/// An entry whose signature, statement and key checked out (steps 1 to 3).
pub(super) struct Signed {
    pub(super) manifest: FetchedManifest,
    /// The signature's bundle as the registry served it.
    pub(super) bundle_json: Vec<u8>,
    pub(super) opened: OpenedEntry,
}

/// What was fetched of an entry so far, quarantined with it when it is refused.
#[derive(Default)]
pub(super) struct Fetched {
    manifest: Option<FetchedManifest>,
    /// The signature bundles read, in the order tried.
    bundles: Vec<Vec<u8>>,
    /// The index in `bundles` of the one that verified.
    signature: Option<usize>,
    /// The signed archive sha256, once a signature named it.
    archive_sha256: Option<String>,
}

impl Fetched {
    /// The entry manifest's digest, `sha256:…`, once it was fetched.
    pub(super) fn manifest_digest(&self) -> Option<String> {
        self.manifest
            .as_ref()
            .map(|manifest| manifest.digest.to_string())
    }
}

/// Steps 1 to 3: the entry manifest tagged with `key`, a signature that a `trusted` key
/// made over a statement naming that manifest, and the signed key and scope.
pub(super) fn fetch_signed(
    remote: &Remote,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    fetched: &mut Fetched,
) -> Result<Signed, Stop> {
    let reference = remote.reference(key);
    // 1. entry
    let manifest = remote
        .client
        .get_manifest(
            &remote.repository,
            &remote.tag(key),
            &[OCI_MANIFEST],
            MAX_MANIFEST_BYTES,
        )
        .map_err(|error| {
            Stop::registry(
                error,
                || format!("no entry {reference}"),
                |source| RemoteEntryError::EntryManifest {
                    reference: reference.clone(),
                    source,
                },
            )
        })?;
    fetched.manifest = Some(manifest.clone());

    // 2. signature, then statement
    let listed = match remote.client.referrers(
        &remote.repository,
        &manifest.digest,
        Some(SIGNATURE_ARTIFACT_TYPE),
    ) {
        Ok(listed) => listed,
        Err(error) => match Unusable::of(&error) {
            Some(unusable) => return Err(Stop::Unusable(unusable)),
            // The referrers index is a hint anyone who may push can write: one that cannot
            // be read lists nothing.
            None => {
                return Err(Stop::Miss(format!(
                    "unsigned: the signatures of {reference} cannot be listed: {}",
                    Chain(&error)
                )))
            }
        },
    };
    if listed.is_empty() {
        return Err(Stop::Miss(format!(
            "unsigned: no signature is attached to {reference}@{} (a push in progress, or \
             never signed)",
            manifest.digest
        )));
    }
    let mut first_failure = None;
    let mut chosen = None;
    for descriptor in listed.iter().take(MAX_SIGNATURES) {
        let referrer = format!("{}@{}", remote.repository, descriptor.digest());
        let bytes = match fetch_signature(remote, descriptor.digest(), &referrer) {
            Ok(bytes) => bytes,
            Err(Candidate::Gone) => continue,
            Err(Candidate::Unusable(unusable)) => return Err(Stop::Unusable(unusable)),
            Err(Candidate::Refused(error)) => {
                first_failure.get_or_insert(error);
                continue;
            }
        };
        fetched.bundles.push(bytes);
        let bytes = fetched.bundles.last().expect("just pushed");
        let bundle = match Bundle::from_json_limited(bytes, MAX_ENTRY_BUNDLE_BYTES) {
            Ok(bundle) => bundle,
            Err(source) => {
                first_failure.get_or_insert(SignatureCandidateError::Bundle { referrer, source });
                continue;
            }
        };
        match EntryManifest::open(&bundle, trusted) {
            Ok(opened) => {
                chosen = Some((referrer, bytes.clone(), opened));
                break;
            }
            Err(EntryError::Signature(source)) => {
                first_failure
                    .get_or_insert(SignatureCandidateError::Signature { referrer, source });
            }
            // It verified: it is the entry's signature, and its statement is refused.
            Err(source) => {
                fetched.signature = Some(fetched.bundles.len() - 1);
                return Err(Stop::Refused(RemoteEntryError::Statement {
                    referrer,
                    source,
                }));
            }
        }
    }
    let Some((referrer, bundle_json, opened)) = chosen else {
        return Err(match first_failure {
            Some(first) => Stop::Refused(RemoteEntryError::NoTrustedSignature {
                reference,
                listed: listed.len(),
                first,
            }),
            None => Stop::Miss(format!(
                "unsigned: the signatures listed for {reference} are gone from the registry"
            )),
        });
    };
    fetched.signature = Some(fetched.bundles.len() - 1);
    fetched.archive_sha256 = Some(opened.entry.archive.sha256.clone());
    check_signed_manifest(&referrer, &opened, &manifest.digest).map_err(Stop::Refused)?;

    // 3. key (the format version was checked while opening)
    let entry = &opened.entry;
    if entry.cache_key != *key {
        return Err(Stop::Refused(RemoteEntryError::KeyMismatch {
            expected: key.to_string(),
            found: entry.cache_key.to_string(),
        }));
    }
    if entry.scope != remote.scope.as_str() {
        return Err(Stop::Refused(RemoteEntryError::ScopeMismatch {
            expected: remote.scope.as_str().to_owned(),
            found: entry.scope.clone(),
        }));
    }
    Ok(Signed {
        manifest,
        bundle_json,
        opened,
    })
}

/// The statement's second subject must be the entry manifest fetched (`fetched`): a
/// signature made for another entry, or a local entry's (one subject), is refused.
fn check_signed_manifest(
    referrer: &str,
    opened: &OpenedEntry,
    fetched: &Digest,
) -> Result<(), RemoteEntryError> {
    let signed = opened
        .oci_manifest
        .as_ref()
        .map(|subject| format!("sha256:{}", subject.sha256));
    if signed.as_deref() == Some(fetched.as_ref()) {
        return Ok(());
    }
    Err(RemoteEntryError::SignedForAnotherManifest {
        referrer: referrer.to_owned(),
        signed: signed.unwrap_or_else(|| "no entry manifest (a local entry)".into()),
        fetched: fetched.to_string(),
    })
}

/// Why one listed signature could not be read.
pub(super) enum Candidate {
    /// Listed, but no longer in the registry (the referrers index is only a hint).
    Gone,
    Unusable(Unusable),
    Refused(SignatureCandidateError),
}

/// A signature referrer's manifest (at most 64 KiB) and the bytes of its one layer (at
/// most 64 MiB, cut off past its descriptor's size): a bundle, still to be parsed.
pub(super) fn fetch_signature(
    remote: &Remote,
    digest: &Digest,
    referrer: &str,
) -> Result<Vec<u8>, Candidate> {
    let failed = |source: RegistryError| match Unusable::of(&source) {
        Some(unusable) => Candidate::Unusable(unusable),
        None if source.is_not_found() => Candidate::Gone,
        None => Candidate::Refused(SignatureCandidateError::Fetch {
            referrer: referrer.to_owned(),
            source,
        }),
    };
    let manifest = remote
        .client
        .get_manifest(
            &remote.repository,
            &ManifestReference::Digest(digest.clone()),
            &[OCI_MANIFEST],
            MAX_MANIFEST_BYTES,
        )
        .map_err(failed)?;
    let layer = layout::signature_layer(&manifest.bytes).map_err(|problem| {
        Candidate::Refused(SignatureCandidateError::Layout {
            referrer: referrer.to_owned(),
            problem,
        })
    })?;
    let mut bytes = Vec::new();
    remote
        .client
        .fetch_blob(&remote.repository, &layer, &mut bytes)
        .map_err(failed)?;
    Ok(bytes)
}

/// Step 4: the entry manifest must be the one this version writes for the signed
/// archive; then the blob goes into `dir/archive.tar.zst`, checked against the signed
/// size, sha256 and blake3.
pub(super) fn fetch_archive(
    remote: &Remote,
    key: &CacheKey,
    signed: &Signed,
    dir: &Path,
    progress: Option<Progress<'_>>,
) -> Result<(), Stop> {
    let reference = remote.reference(key);
    let archive = &signed.opened.entry.archive;
    let expected = layout::entry_manifest_bytes(key, &remote.scope, archive);
    if signed.manifest.bytes != expected {
        return Err(Stop::Refused(RemoteEntryError::EntryManifestMismatch {
            reference,
            expected: hermetic_registry::sha256_digest(&expected).to_string(),
            found: signed.manifest.digest.to_string(),
        }));
    }
    let path = dir.join(ARCHIVE_FILE);
    let local = |error: io::Error| {
        Stop::Miss(format!(
            "not fetched: failed to write {}: {error}",
            path.display()
        ))
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(local)?;
    let mut writer = ArchiveWriter {
        file,
        blake3: blake3::Hasher::new(),
        written: 0,
        total: archive.size,
        progress,
    };
    remote
        .client
        .fetch_blob(
            &remote.repository,
            &layout::archive_descriptor(archive),
            &mut writer,
        )
        .map_err(|error| {
            let refuse = |source| RemoteEntryError::Archive {
                reference: reference.clone(),
                size: archive.size,
                source,
            };
            match error.kind() {
                // The registry closed the body before the signed size: a shorter archive,
                // refused. A body that stalls (a timeout) is an outage.
                ErrorKind::Interrupted { source, .. }
                    if source.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    Stop::Refused(refuse(error))
                }
                _ => Stop::registry(
                    error,
                    || format!("the archive of {reference} is missing from the registry"),
                    refuse,
                ),
            }
        })?;
    writer.file.sync_all().map_err(local)?;
    let blake3 = writer.blake3.finalize().to_hex().to_string();
    if blake3 != archive.blake3 {
        return Err(Stop::Refused(RemoteEntryError::ArchiveBlake3 {
            reference,
            expected: archive.blake3.clone(),
            found: blake3,
        }));
    }
    Ok(())
}

/// The archive's file while it downloads: blake3 over every byte (the client checks the
/// size and sha256), and progress.
struct ArchiveWriter<'p> {
    file: File,
    blake3: blake3::Hasher,
    written: u64,
    total: u64,
    progress: Option<Progress<'p>>,
}

impl Write for ArchiveWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.blake3.update(&bytes[..written]);
        self.written += written as u64;
        if let Some(progress) = self.progress {
            progress(self.written, self.total);
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Looks `key` up in the registry and, when a verified entry is there, commits it into
/// the local `store` and restores it to `targets` through the local restore (which checks
/// it again, entry by entry). A single-run entry is used only when `accept_single_run`.
/// A refused entry's fetched parts are quarantined in the local store.
pub fn restore(
    remote: &Remote,
    store: &Store,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    accept_single_run: bool,
    targets: RestoreTargets<'_>,
    progress: Option<Progress<'_>>,
) -> RemoteLookup {
    let dir = match FetchDir::new(store) {
        Ok(dir) => dir,
        Err(error) => {
            return RemoteLookup::Miss {
                reason: format!("not fetched: {}", Chain(&error)),
            }
        }
    };
    let mut fetched = Fetched::default();
    let signed = fetch_signed(remote, key, trusted, &mut fetched).and_then(|signed| {
        if signed.opened.entry.single_run && !accept_single_run {
            return Err(Stop::Miss(format!(
                "the registry's entry {} comes from a single run; this build asks for a \
                 reproducible (dual-run) one",
                remote.reference(key)
            )));
        }
        fetch_archive(remote, key, &signed, dir.path(), progress).map(|()| signed)
    });
    let signed = match signed {
        Ok(signed) => signed,
        Err(stop) => return stopped(remote, store, key, dir, &fetched, stop),
    };

    // 5. entries: committed, then restored by the local restore.
    let entry = &signed.opened.entry;
    let staged = store.adopt_staged(dir.take(), entry.archive.clone());
    let committed =
        staged.commit_bundle_json(&remote.scope, entry, &signed.bundle_json, !entry.single_run);
    if let Err(error) = committed {
        return RemoteLookup::Miss {
            reason: format!("not kept: {}", Chain(&error)),
        };
    }
    let origin = origin(remote, key, &fetched);
    let manifest = signed.manifest.digest.to_string();
    match restore_entry(
        store,
        &remote.scope,
        key,
        trusted,
        accept_single_run,
        targets,
        Some(&origin),
    ) {
        Lookup::Hit(restored) => RemoteLookup::Hit { restored, manifest },
        Lookup::Miss { reason } => RemoteLookup::Miss {
            reason: reason.unwrap_or_else(|| {
                "the entry committed into the local store was gone before it was restored"
                    .to_owned()
            }),
        },
        Lookup::Refused { error, quarantined } => RemoteLookup::Refused {
            error: RemoteEntryError::Restore(error),
            quarantined,
        },
    }
}

/// `hermetic cache pull KEY`: [`restore`] into the local store only (the archive is
/// verified entry by entry, nothing else is written). Any entry, single-run ones too.
pub fn pull(
    remote: &Remote,
    store: &Store,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    progress: Option<Progress<'_>>,
) -> RemoteLookup {
    restore(
        remote,
        store,
        key,
        trusted,
        true,
        RestoreTargets::default(),
        progress,
    )
}

/// The lookup's end when it stopped before an entry; a refused entry's fetched parts go to
/// quarantine.
fn stopped(
    remote: &Remote,
    store: &Store,
    key: &CacheKey,
    dir: FetchDir,
    fetched: &Fetched,
    stop: Stop,
) -> RemoteLookup {
    match stop {
        Stop::Miss(reason) => RemoteLookup::Miss { reason },
        Stop::Unusable(unusable) => RemoteLookup::Unusable(unusable),
        Stop::Refused(error) => {
            let quarantined = quarantine_fetched(remote, store, key, dir, fetched, &error);
            RemoteLookup::Refused { error, quarantined }
        }
    }
}

/// Where a refused entry came from: the reference and, as far as they were read, its
/// entry manifest's and archive's digests (the signed archive's, else the one the entry
/// manifest names, for the record only).
fn origin(remote: &Remote, key: &CacheKey, fetched: &Fetched) -> RemoteOrigin {
    let named_archive = || {
        fetched
            .manifest
            .as_ref()
            .and_then(|manifest| layout::named_archive(&manifest.bytes))
    };
    RemoteOrigin {
        reference: remote.reference(key),
        manifest: fetched.manifest_digest(),
        archive: fetched
            .archive_sha256
            .as_ref()
            .map(|sha256| format!("sha256:{sha256}"))
            .or_else(named_archive),
    }
}

/// Moves what was fetched of a refused entry (its entry manifest, the signatures read and,
/// when it got that far, the archive) into quarantine with its record. The signature that
/// verified, else the first read, is `entry.sigstore.json`, so `cache quarantine ls` says
/// who signed it.
pub(super) fn quarantine_fetched(
    remote: &Remote,
    store: &Store,
    key: &CacheKey,
    dir: FetchDir,
    fetched: &Fetched,
    error: &RemoteEntryError,
) -> Option<PathBuf> {
    let written = write_fetched(dir.path(), fetched);
    if let Err(write_error) = written {
        tracing::error!(
            path = %dir.path().display(),
            error = %write_error,
            "failed to keep a refused remote entry's parts for quarantine"
        );
    }
    let record = QuarantineRecord::new(
        remote.scope.as_str(),
        key.as_str(),
        Refusal {
            step: error.step(),
            reason: error.reason(),
            file: error.file(),
            expected: error.expected(),
            found: error.found(),
            message: error.message(),
        },
        Some(&origin(remote, key, fetched)),
    );
    let path = dir.take();
    match quarantine::quarantine(store, &path, &record) {
        Ok(quarantined) => Some(quarantined),
        Err(quarantine_error) => {
            tracing::error!(
                entry = %path.display(),
                error = %quarantine_error,
                "failed to quarantine a refused remote cache entry"
            );
            None
        }
    }
}

fn write_fetched(dir: &Path, fetched: &Fetched) -> io::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))
            .and_then(|mut file| file.write_all(bytes))
    };
    if let Some(manifest) = &fetched.manifest {
        write(OCI_MANIFEST_FILE, &manifest.bytes)?;
    }
    let main = fetched.signature.unwrap_or(0);
    for (index, bundle) in fetched.bundles.iter().enumerate() {
        if index == main {
            write(BUNDLE_FILE, bundle)?;
        } else {
            write(&format!("signature-{index}.sigstore.json"), bundle)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::tests::sample_entry;
    use crate::cache::OciManifestSubject;
    use crate::signing::SigningKey;

    #[test]
    fn a_signature_counts_only_for_the_entry_manifest_it_names() {
        let key = SigningKey::generate();
        let entry = sample_entry("main");
        let manifest = hermetic_registry::sha256_digest(b"the entry manifest");
        let subject = |sha256: &str| OciManifestSubject {
            name: "ci/cache/main".to_owned(),
            sha256: sha256.to_owned(),
        };
        let open = |bundle: Bundle| EntryManifest::open(&bundle, &[key.verifying_key()]).unwrap();

        let ours = open(entry.sign_with_oci_manifest(&key, &subject(manifest.digest())));
        check_signed_manifest("r@sha256:1", &ours, &manifest).unwrap();

        let moved = open(entry.sign_with_oci_manifest(&key, &subject(&"cc".repeat(32))));
        let error = check_signed_manifest("r@sha256:1", &moved, &manifest).unwrap_err();
        assert_eq!(error.step(), RestoreStep::Statement);
        assert_eq!(error.reason(), "subject_mismatch");
        assert_eq!(error.expected(), Some(manifest.to_string()));
        assert_eq!(error.found(), Some(format!("sha256:{}", "cc".repeat(32))));

        let local = open(entry.sign(&key));
        let error = check_signed_manifest("r@sha256:1", &local, &manifest).unwrap_err();
        assert_eq!(error.reason(), "subject_mismatch", "{error}");
    }
}
