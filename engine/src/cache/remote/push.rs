//! Publishing an entry (docs/cache-format.md §Remote cache, Push and Conflicts): the
//! blobs (the empty config, the archive: skipped when the repository has them, else
//! uploaded in chunks, a failed session restarted once), then, unless the key's tag already
//! names an entry, the entry manifest under the tag, the signature (a bundle with two
//! subjects) as its referrer, and the tag read back.
//!
//! A tag that names another entry manifest is never overwritten: that is a conflict (two
//! runners disagree on one key, a determinism or poisoning incident), reported with both
//! entries and their signers, logged as a `cache_conflict` event and counted. The registry
//! has no conditional tag write, so a push racing ours can still win the tag; reading it
//! back reports that as a conflict too.
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use hermetic_contract::report::{ConflictingEntry, RemoteConflict, RemotePush};
use hermetic_registry::{
    sha256_digest, Descriptor, FetchedManifest, ManifestReference, MediaType, RegistryError,
    OCI_MANIFEST,
};
use serde::Serialize;

use super::fetch::{fetch_signature, Candidate};
use super::layout::{self, MAX_MANIFEST_BYTES, MAX_SIGNATURES, SIGNATURE_ARTIFACT_TYPE};
use super::{count_conflict, Progress, Remote};
use crate::cache::entry::{EntryManifest, OciManifestSubject};
use crate::cache::quarantine::{append_event, EVENT_SCHEMA};
use crate::cache::restore::MAX_ENTRY_BUNDLE_BYTES;
use crate::cache::store::Store;
use crate::cache::ARCHIVE_FILE;
use crate::errors::Chain;
use crate::signing::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;
use crate::signing::{Bundle, SigningKey, VerifyingKey};
use crate::timestamp::rfc3339;

/// The `event` field of a conflict event.
pub const CONFLICT_EVENT: &str = "cache_conflict";

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// `pushed`, `present` or `conflict`.
    pub outcome: RemotePush,
    /// Our entry manifest's digest, `sha256:…`.
    pub manifest: String,
    /// Set when `outcome` is a conflict.
    pub conflict: Option<RemoteConflict>,
}

/// Why a push did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("failed to open the entry's archive {path}")]
    OpenArchive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to push {reference}")]
    Registry {
        reference: String,
        #[source]
        source: RegistryError,
    },
}

/// Publishes `entry`, whose archive is the local entry's in `entry_dir` (verified by the
/// caller), in the remote's scope, signed by `signing_key` with both subjects. `trusted`
/// (the keys trusted for the scope) names the signer of a conflicting entry, and decides
/// whether an entry already present carries a signature readers accept: when none does
/// (an interrupted push, or a signature we do not trust), ours is attached to it. A
/// conflict is logged in `store`'s event log.
pub fn push(
    remote: &Remote,
    store: &Store,
    entry: &EntryManifest,
    entry_dir: &Path,
    signing_key: &SigningKey,
    trusted: &[VerifyingKey],
    progress: Option<Progress<'_>>,
) -> Result<Pushed, PushError> {
    let key = &entry.cache_key;
    let reference = remote.reference(key);
    let failed = |source| PushError::Registry {
        reference: reference.clone(),
        source,
    };
    let client = &remote.client;
    let repository = &remote.repository;
    let manifest = layout::entry_manifest_bytes(key, &remote.scope, &entry.archive);
    let manifest_descriptor = Descriptor::new(
        MediaType::from(OCI_MANIFEST),
        manifest.len() as u64,
        sha256_digest(&manifest),
    );
    let ours = ConflictingEntry {
        manifest: manifest_descriptor.digest().to_string(),
        archive: Some(format!("sha256:{}", entry.archive.sha256)),
        signer: Some(signing_key.verifying_key().key_id()),
        trusted: None,
    };

    client
        .push_blob(
            repository,
            &layout::empty_config_digest(),
            layout::EMPTY_CONFIG.len() as u64,
            &mut Cursor::new(layout::EMPTY_CONFIG),
            None,
        )
        .map_err(failed)?;
    let archive_path = entry_dir.join(ARCHIVE_FILE);
    let archive = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&archive_path)
        .map_err(|source| PushError::OpenArchive {
            path: archive_path.clone(),
            source,
        })?;
    let mut source = ProgressReader {
        file: archive,
        position: 0,
        total: entry.archive.size,
        progress,
    };
    client
        .push_blob(
            repository,
            &layout::oci_digest(&entry.archive.sha256),
            entry.archive.size,
            &mut source,
            None,
        )
        .map_err(failed)?;

    let tag = remote.tag(key);
    match client.get_manifest(repository, &tag, &[OCI_MANIFEST], MAX_MANIFEST_BYTES) {
        Ok(existing) if existing.digest == *manifest_descriptor.digest() => {
            if !has_trusted_signature(remote, &existing, trusted).map_err(failed)? {
                attach_signature(remote, entry, &manifest_descriptor, signing_key)
                    .map_err(failed)?;
            }
            return Ok(Pushed {
                outcome: RemotePush::Present,
                manifest: ours.manifest,
                conflict: None,
            });
        }
        Ok(existing) => return Ok(conflict(remote, store, entry, ours, &existing, trusted)),
        Err(error) if error.is_not_found() => {}
        Err(error) => return Err(failed(error)),
    }
    client
        .put_manifest(repository, &tag, OCI_MANIFEST, &manifest)
        .map_err(failed)?;
    attach_signature(remote, entry, &manifest_descriptor, signing_key).map_err(failed)?;
    let tagged = client
        .get_manifest(repository, &tag, &[OCI_MANIFEST], MAX_MANIFEST_BYTES)
        .map_err(failed)?;
    if tagged.digest != *manifest_descriptor.digest() {
        return Ok(conflict(remote, store, entry, ours, &tagged, trusted));
    }
    Ok(Pushed {
        outcome: RemotePush::Pushed,
        manifest: ours.manifest,
        conflict: None,
    })
}

/// Signs `entry` for the entry manifest `subject` (the statement's second subject) and
/// attaches the bundle to it as a referrer.
fn attach_signature(
    remote: &Remote,
    entry: &EntryManifest,
    subject: &Descriptor,
    signing_key: &SigningKey,
) -> Result<(), RegistryError> {
    let oci_manifest = OciManifestSubject {
        name: remote.repository.name().to_owned(),
        sha256: subject.digest().digest().to_owned(),
    };
    let bundle = entry
        .sign_with_oci_manifest(signing_key, &oci_manifest)
        .to_json()
        .into_bytes();
    let bundle_descriptor = Descriptor::new(
        MediaType::from(BUNDLE_MEDIA_TYPE),
        bundle.len() as u64,
        sha256_digest(&bundle),
    );
    remote.client.push_blob(
        &remote.repository,
        bundle_descriptor.digest(),
        bundle_descriptor.size(),
        &mut Cursor::new(&bundle),
        None,
    )?;
    let signature = layout::signature_manifest_bytes(
        &bundle_descriptor,
        subject,
        crate::cache::entry::ENTRY_PREDICATE_TYPE,
    );
    remote.client.put_manifest(
        &remote.repository,
        &ManifestReference::Digest(sha256_digest(&signature)),
        OCI_MANIFEST,
        &signature,
    )?;
    Ok(())
}

/// Whether one of the (at most 16) signatures attached to `manifest` verifies with a
/// `trusted` key over a statement about that manifest.
fn has_trusted_signature(
    remote: &Remote,
    manifest: &FetchedManifest,
    trusted: &[VerifyingKey],
) -> Result<bool, RegistryError> {
    Ok(signers(remote, manifest, trusted)?
        .iter()
        .any(|signer| signer.trusted))
}

/// Who signed one attached signature: the trusted key that verifies it, or the key its
/// (unauthenticated) hint names.
struct Signer {
    key_id: Option<String>,
    trusted: bool,
}

/// The signers of the signatures attached to `manifest` (at most 16 read), stopping at the
/// first trusted one. Signatures that cannot be read are left out; an outage is an error.
fn signers(
    remote: &Remote,
    manifest: &FetchedManifest,
    trusted: &[VerifyingKey],
) -> Result<Vec<Signer>, RegistryError> {
    let listed = match remote.client.referrers(
        &remote.repository,
        &manifest.digest,
        Some(SIGNATURE_ARTIFACT_TYPE),
    ) {
        Ok(listed) => listed,
        Err(error) if super::Unusable::of(&error).is_some() => return Err(error),
        Err(_) => return Ok(Vec::new()),
    };
    let mut signers = Vec::new();
    for descriptor in listed.iter().take(MAX_SIGNATURES) {
        let referrer = format!("{}@{}", remote.repository, descriptor.digest());
        let bytes = match fetch_signature(remote, descriptor.digest(), &referrer) {
            Ok(bytes) => bytes,
            Err(Candidate::Gone | Candidate::Unusable(_) | Candidate::Refused(_)) => continue,
        };
        let Ok(bundle) = Bundle::from_json_limited(&bytes, MAX_ENTRY_BUNDLE_BYTES) else {
            continue;
        };
        let signed_for_manifest = |opened: &crate::cache::OpenedEntry| {
            opened
                .oci_manifest
                .as_ref()
                .is_some_and(|subject| subject.sha256 == manifest.digest.digest())
        };
        match EntryManifest::open(&bundle, trusted) {
            Ok(opened) if signed_for_manifest(&opened) => {
                signers.push(Signer {
                    key_id: Some(opened.signer.key_id()),
                    trusted: true,
                });
                break;
            }
            _ => signers.push(Signer {
                key_id: bundle.hint.as_deref().and_then(hint_key_id),
                trusted: false,
            }),
        }
    }
    Ok(signers)
}

/// The key id (hex) a bundle's key hint (base64 of the same digest) names.
fn hint_key_id(hint: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(hint)
        .ok()
        .filter(|digest| digest.len() == 32)
        .map(hex::encode)
}

/// The registry's entry for our key is `theirs`: reported, logged and counted, not
/// overwritten.
fn conflict(
    remote: &Remote,
    store: &Store,
    entry: &EntryManifest,
    ours: ConflictingEntry,
    theirs: &FetchedManifest,
    trusted: &[VerifyingKey],
) -> Pushed {
    let signer = match signers(remote, theirs, trusted) {
        Ok(signers) => signers
            .iter()
            .find(|signer| signer.trusted)
            .or(signers.first())
            .map(|signer| (signer.key_id.clone(), signer.trusted)),
        Err(error) => {
            tracing::warn!(
                "could not read the signatures of a conflicting cache entry: {}",
                Chain(&error)
            );
            None
        }
    };
    let theirs = ConflictingEntry {
        manifest: theirs.digest.to_string(),
        archive: layout::named_archive(&theirs.bytes),
        signer: signer.as_ref().and_then(|(key_id, _)| key_id.clone()),
        trusted: Some(signer.is_some_and(|(_, trusted)| trusted)),
    };
    let reference = remote.reference(&entry.cache_key);
    let conflict = RemoteConflict { ours, theirs };
    let event = ConflictEvent {
        event: CONFLICT_EVENT,
        schema: EVENT_SCHEMA,
        time: rfc3339(std::time::SystemTime::now()),
        scope: remote.scope.as_str(),
        key: entry.cache_key.as_str(),
        reference: &reference,
        ours: &conflict.ours,
        theirs: &conflict.theirs,
    };
    if let Err(error) = append_event(store, &event) {
        tracing::error!("failed to log a cache conflict: {}", Chain(&error));
    }
    count_conflict();
    Pushed {
        outcome: RemotePush::Conflict,
        manifest: conflict.ours.manifest.clone(),
        conflict: Some(conflict),
    }
}

/// A `cache_conflict` line of `events.ndjson` (`hermetic.event/v1`).
#[derive(Serialize)]
struct ConflictEvent<'a> {
    event: &'static str,
    schema: &'static str,
    time: String,
    scope: &'a str,
    key: &'a str,
    /// `HOST/REPO/SCOPE:<key>`.
    reference: &'a str,
    ours: &'a ConflictingEntry,
    theirs: &'a ConflictingEntry,
}

/// The archive as the upload reads it, reporting how far it got (an upload restarted from
/// the start seeks back, and the progress with it).
struct ProgressReader<'p> {
    file: File,
    position: u64,
    total: u64,
    progress: Option<Progress<'p>>,
}

impl Read for ProgressReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buffer)?;
        self.position += read as u64;
        if let Some(progress) = self.progress {
            progress(self.position, self.total);
        }
        Ok(read)
    }
}

impl Seek for ProgressReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.position = self.file.seek(to)?;
        Ok(self.position)
    }
}
