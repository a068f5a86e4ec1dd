//! The registry attacks: each crafted in the drill's scratch repository `REPO/drill-<id>`
//! (next to the real scopes' repositories, never in them) under a cache key of its own,
//! and run as a real remote restore (`cache::remote::restore`, the function builds use),
//! then judged as local attacks are, plus: nothing committed to the local store.
//!
//! Only what a registry's API lets anyone with push access do is attacked here (tags,
//! manifests, referrers, blobs under their digests); blobs changed on the registry's disk
//! (a flipped byte, a truncated file) are the remote test suite's, since the API refuses
//! a blob whose bytes are not its digest.
use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use hermetic_contract::build::RemoteCacheOptions;
use hermetic_contract::report::{AttackResult, RestoreStep};
use hermetic_registry::{
    sha256_digest, Descriptor, Digest, ManifestReference, MediaType, RegistryError, OCI_INDEX,
    OCI_MANIFEST,
};

use super::judge::{self, Before, Seen};
use super::rawtar::{zstd, RawTar};
use super::subject::{Subject, WorkDir};
use super::{result, CatalogEntry, DrillError, TARGET_REMOTE};
use crate::cache::entry::{ArchiveDigests, EntryManifest, OciManifestSubject};
use crate::cache::remote::{self, layout, Remote, RemoteLookup};
use crate::cache::{restore, CacheKey, Lookup, RestoreTargets};
use crate::signing::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;
use crate::signing::SigningKey;

/// What became of the scratch repository's tags once the drill ended.
#[derive(Debug, Default)]
pub struct ScratchTags {
    /// `HOST/REPO/drill-<id>`, once the drill used one.
    pub repository: Option<String>,
    /// Tags deleted.
    pub removed: Vec<String>,
    /// Tags left behind, and why (a registry that does not allow deletion answers 405).
    pub left: Vec<(String, String)>,
}

type Craft = fn(&Scratch<'_>, &EntryManifest) -> Result<(), CraftError>;

/// Why the drill could not write an attack to its scratch repository.
#[derive(Debug, thiserror::Error)]
enum CraftError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Push(#[from] remote::PushError),
    #[error("failed to read or make an archive")]
    Io(#[from] std::io::Error),
    #[error("failed to write a manifest")]
    Json(#[from] serde_json::Error),
}

struct RemoteAttack {
    name: &'static str,
    step: RestoreStep,
    reason: &'static str,
    /// A plain miss is right (nothing that could be an entry was served, so there is
    /// nothing to quarantine); a refusal at any step is as good.
    miss: bool,
    craft: Craft,
}

macro_rules! attack {
    ($name:literal, $step:ident, $reason:literal, $craft:expr) => {
        RemoteAttack {
            name: $name,
            step: RestoreStep::$step,
            reason: $reason,
            miss: false,
            craft: $craft,
        }
    };
}

const CATALOG: &[RemoteAttack] = &[
    attack!(
        "remote-oversized-manifest",
        Entry,
        "too_large",
        oversized_manifest
    ),
    RemoteAttack {
        name: "remote-index-under-the-tag",
        step: RestoreStep::Entry,
        reason: "not_found",
        miss: true,
        craft: index_under_the_tag,
    },
    RemoteAttack {
        name: "remote-unsigned",
        step: RestoreStep::Signature,
        reason: "unsigned",
        miss: true,
        craft: unsigned,
    },
    attack!(
        "remote-referrer-garbage",
        Signature,
        "malformed",
        referrer_garbage
    ),
    attack!(
        "remote-referrer-untrusted-key",
        Signature,
        "untrusted_key",
        referrer_untrusted_key
    ),
    attack!(
        "remote-signature-moved",
        Statement,
        "subject_mismatch",
        signature_moved
    ),
    attack!(
        "remote-manifest-swapped",
        Statement,
        "subject_mismatch",
        manifest_swapped
    ),
    attack!("remote-tag-moved", Key, "key_mismatch", tag_moved),
    attack!(
        "remote-old-format-version",
        Key,
        "format_version",
        old_format_version
    ),
    attack!("remote-scope-copied", Key, "scope_mismatch", scope_copied),
    attack!(
        "remote-size-lie-signed",
        Archive,
        "entry_manifest_mismatch",
        size_lie_signed
    ),
    attack!(
        "remote-blob-swapped-signed",
        Archive,
        "entry_manifest_mismatch",
        blob_swapped_signed
    ),
    attack!(
        "remote-second-layer-signed",
        Archive,
        "entry_manifest_mismatch",
        second_layer_signed
    ),
    attack!(
        "remote-hostile-archive-signed",
        Entries,
        "path_escape",
        hostile_archive_signed
    ),
];

pub(super) fn catalog() -> Vec<CatalogEntry> {
    CATALOG
        .iter()
        .map(|attack| CatalogEntry {
            name: attack.name,
            target: TARGET_REMOTE,
            rows: "",
            step: attack.step,
            reason: attack.reason,
        })
        .collect()
}

/// The scratch repository and what the drill wrote to it.
struct Scratch<'a> {
    remote: Remote,
    subject: &'a Subject,
    /// Signature manifests pushed (untagged), deleted with the tags.
    signatures: std::cell::RefCell<Vec<Digest>>,
}

/// Runs the registry attacks against `REPO/drill-<id>` (the drill's scope).
pub(super) fn run(
    options: &RemoteCacheOptions,
    subject: &Subject,
    work_root: &Path,
    host: &mut dyn super::DrillHost,
    tags: &mut ScratchTags,
) -> Result<Vec<AttackResult>, DrillError> {
    let remote = Remote::connect(options, &subject.scope)?;
    tags.repository = Some(remote.repository().to_string());
    let scratch = Scratch {
        remote,
        subject,
        signatures: Default::default(),
    };
    let results = scratch.attack_all(work_root, host);
    scratch.remove_tags(tags);
    results
}

impl Scratch<'_> {
    fn attack_all(
        &self,
        work_root: &Path,
        host: &mut dyn super::DrillHost,
    ) -> Result<Vec<AttackResult>, DrillError> {
        let registry = |step: &'static str| {
            let repository = self.remote.repository().to_string();
            move |error: CraftError| DrillError::Registry {
                repository: repository.clone(),
                step,
                reason: crate::errors::Chain(&error).to_string(),
            }
        };
        self.subject
            .plant()
            .map_err(super::scratch_error(&self.subject.entry_dir()))?;
        // The control: an honest entry, published and restored.
        let control = self.entry_for("control");
        self.publish(&control)
            .map_err(registry("publishing the control entry"))?;
        match self.restore(&control.cache_key, work_root, "remote-control") {
            Ok((Seen::Restored, _)) => {}
            Ok((_, seen)) | Err(seen) => {
                return Err(DrillError::Control {
                    signer: self.subject.signer.verifying_key().key_id(),
                    reason: format!("from the registry: {seen}"),
                })
            }
        }
        let mut results = Vec::new();
        for attack in CATALOG {
            let started = Instant::now();
            let entry = self.entry_for(attack.name);
            let verdict = match (attack.craft)(self, &entry) {
                Ok(()) => self
                    .judged(attack, &entry.cache_key, work_root)
                    .unwrap_or_else(super::not_run),
                Err(error) => super::not_run(crate::errors::Chain(&error)),
            };
            let result = result(
                attack.name.to_owned(),
                TARGET_REMOTE,
                attack.step,
                verdict,
                started,
            );
            host.judged(&result);
            results.push(result);
        }
        Ok(results)
    }

    /// The honest entry under a cache key of its own (its inputs name `what`).
    fn entry_for(&self, what: &str) -> EntryManifest {
        let mut entry = self.subject.entry.clone();
        entry
            .key_inputs
            .command
            .push(format!("--hermetic-drill={what}"));
        entry.cache_key = entry.key_inputs.key();
        entry
    }

    /// Publishes `entry` as a build would (`cache::remote::push`).
    fn publish(&self, entry: &EntryManifest) -> Result<(), CraftError> {
        let subject = self.subject;
        remote::push(
            &self.remote,
            &subject.store,
            entry,
            &subject.entry_dir(),
            &subject.signer,
            &subject.trusted,
            None,
        )?;
        Ok(())
    }

    fn client(&self) -> &hermetic_registry::Client {
        self.remote.client()
    }

    /// Uploads a blob (the empty config, an archive, a bundle).
    fn blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, RegistryError> {
        let descriptor = Descriptor::new(
            MediaType::from(media_type),
            bytes.len() as u64,
            sha256_digest(bytes),
        );
        self.client().push_blob(
            self.remote.repository(),
            descriptor.digest(),
            descriptor.size(),
            &mut Cursor::new(bytes),
            None,
        )?;
        Ok(descriptor)
    }

    /// Puts `manifest` (an entry manifest, honest or not) under the key's tag. The blobs an
    /// entry manifest names, the empty config and the honest archive, are in the
    /// repository since the control entry was published (`attack_all`), and no attack
    /// deletes a blob: they are not read, hashed and offered again for each attack.
    fn tag(
        &self,
        key: &CacheKey,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Descriptor, CraftError> {
        self.client().put_manifest(
            self.remote.repository(),
            &self.remote.tag(key),
            media_type,
            manifest,
        )?;
        Ok(Descriptor::new(
            MediaType::from(media_type),
            manifest.len() as u64,
            sha256_digest(manifest),
        ))
    }

    /// The honest entry manifest of `entry`, under its tag, unsigned.
    fn tag_honest(&self, entry: &EntryManifest) -> Result<(Vec<u8>, Descriptor), CraftError> {
        let manifest = self.entry_manifest(entry);
        let descriptor = self.tag(&entry.cache_key, OCI_MANIFEST, &manifest)?;
        Ok((manifest, descriptor))
    }

    fn entry_manifest(&self, entry: &EntryManifest) -> Vec<u8> {
        layout::entry_manifest_bytes(&entry.cache_key, self.remote.scope(), &entry.archive)
    }

    /// Attaches `bundle` to the manifest `subject` as a signature referrer.
    fn attach(&self, subject: &Descriptor, bundle: &[u8]) -> Result<(), CraftError> {
        let bundle = self.blob(BUNDLE_MEDIA_TYPE, bundle)?;
        let signature = layout::signature_manifest_bytes(
            &bundle,
            subject,
            crate::cache::entry::ENTRY_PREDICATE_TYPE,
        );
        let digest = sha256_digest(&signature);
        self.client().put_manifest(
            self.remote.repository(),
            &ManifestReference::Digest(digest.clone()),
            OCI_MANIFEST,
            &signature,
        )?;
        self.signatures.borrow_mut().push(digest);
        Ok(())
    }

    /// `entry` signed by `key` for the entry manifest `manifest` (both subjects).
    fn signed_for(
        &self,
        entry: &EntryManifest,
        key: &SigningKey,
        manifest: &Descriptor,
    ) -> Vec<u8> {
        let subject = OciManifestSubject {
            name: self.remote.repository().name().to_owned(),
            sha256: manifest.digest().digest().to_owned(),
        };
        entry
            .sign_with_oci_manifest(key, &subject)
            .to_json()
            .into_bytes()
    }

    /// A remote restore of `key` into a fresh work dir: what it did, and whether the work
    /// dir and the local store stayed as they were.
    fn restore(
        &self,
        key: &CacheKey,
        work_root: &Path,
        name: &str,
    ) -> Result<(Seen, String), String> {
        let subject = self.subject;
        let work = WorkDir::create(work_root.join(name)).map_err(|e| e.to_string())?;
        let lookup = remote::restore(
            &self.remote,
            &subject.store,
            key,
            &subject.trusted,
            false,
            work.targets(),
            None,
        );
        let _ = std::fs::remove_dir_all(&work.root);
        Ok(seen_of(lookup))
    }

    fn judged(
        &self,
        attack: &RemoteAttack,
        key: &CacheKey,
        work_root: &Path,
    ) -> std::io::Result<judge::Verdict> {
        let subject = self.subject;
        let store = &subject.store;
        let work = WorkDir::create(work_root.join(attack.name))?;
        let before = Before {
            events: judge::events_in(store).len(),
            quarantined: judge::quarantined_in(store),
            work: work.snapshot()?,
        };
        let lookup = remote::restore(
            &self.remote,
            store,
            key,
            &subject.trusted,
            false,
            work.targets(),
            None,
        );
        let (seen, _) = seen_of(lookup);
        let quarantined = seen.quarantined().map(Path::to_owned);
        let mut verdict = if attack.miss {
            miss(seen, attack.step, store, &before)
        } else {
            judge::refusal(store, true, seen, attack.step, attack.reason, &before)
        };
        if work.snapshot()? != before.work {
            verdict
                .failed
                .push("the destination or the artifact changed".to_owned());
        }
        match restore(
            store,
            &subject.scope,
            key,
            &subject.trusted,
            false,
            RestoreTargets::default(),
        ) {
            Lookup::Miss { reason: None } => {}
            _ => verdict
                .failed
                .push("the entry was committed to the local store".to_owned()),
        }
        std::fs::remove_dir_all(&work.root)?;
        judge::discard(quarantined.as_deref())?;
        Ok(verdict)
    }

    /// Deletes every tag of the scratch repository and the signatures pushed. Deleting is
    /// by digest (distribution deletes tags by deleting what they point at); a registry
    /// that does not allow deletion leaves them, which `tags.left` says.
    fn remove_tags(&self, tags: &mut ScratchTags) {
        let client = self.client();
        let repository = self.remote.repository();
        let listed = match client.list_tags(repository) {
            Ok(listed) => listed,
            Err(error) => {
                tags.left
                    .push(("*".to_owned(), crate::errors::Chain(&error).to_string()));
                return;
            }
        };
        for tag in listed {
            let deleted = hermetic_registry::Tag::new(&tag)
                .map_err(|error| error.to_string())
                .and_then(|name| {
                    client
                        .get_manifest(
                            repository,
                            &ManifestReference::Tag(name),
                            &[OCI_MANIFEST, OCI_INDEX],
                            1 << 20,
                        )
                        .and_then(|manifest| client.delete_manifest(repository, &manifest.digest))
                        .map_err(|error| crate::errors::Chain(&error).to_string())
                });
            match deleted {
                Ok(()) => tags.removed.push(tag),
                // Several tags can name one manifest: gone with the first.
                Err(_) if tag_gone(client, repository, &tag) => tags.removed.push(tag),
                Err(why) => tags.left.push((tag, why)),
            }
        }
        for digest in self.signatures.borrow().iter() {
            let _ = client.delete_manifest(repository, digest);
        }
    }
}

fn tag_gone(
    client: &hermetic_registry::Client,
    repository: &hermetic_registry::Repository,
    tag: &str,
) -> bool {
    client
        .list_tags(repository)
        .is_ok_and(|tags| !tags.iter().any(|listed| listed == tag))
}

fn seen_of(lookup: RemoteLookup) -> (Seen, String) {
    match lookup {
        RemoteLookup::Hit { .. } => (Seen::Restored, "restored".to_owned()),
        RemoteLookup::Miss { reason } => {
            let line = format!("a miss: {reason}");
            (Seen::Miss(reason), line)
        }
        RemoteLookup::Refused { error, quarantined } => {
            let line = format!("refused: {}", error.message());
            (
                Seen::Refused {
                    step: error.step(),
                    reason: error.reason().to_owned(),
                    message: error.message(),
                    quarantined,
                },
                line,
            )
        }
        RemoteLookup::Unusable(unusable) => {
            let line = format!("the registry was unusable: {unusable}");
            (Seen::Miss(line.clone()), line)
        }
    }
}

/// An attack whose right outcome is a plain miss (an unsigned entry: a push in progress
/// as far as anyone can tell): not restored, nothing quarantined. A refusal is as good.
fn miss(
    seen: Seen,
    step: RestoreStep,
    store: &crate::cache::Store,
    before: &Before,
) -> judge::Verdict {
    match seen {
        Seen::Restored => judge::Verdict {
            refused_at: None,
            failed: vec!["the entry was restored".to_owned()],
            seen: "restored".to_owned(),
            checked: judge::CHECKED_MISS,
        },
        Seen::Miss(reason) => {
            let mut failed = Vec::new();
            if judge::quarantined_in(store) != before.quarantined {
                failed.push("a miss quarantined something".to_owned());
            }
            judge::Verdict {
                refused_at: Some(step),
                failed,
                seen: format!("a miss, as it must be ({reason})"),
                checked: judge::CHECKED_MISS,
            }
        }
        Seen::Refused {
            step: at, reason, ..
        } => judge::Verdict {
            refused_at: Some(at),
            failed: Vec::new(),
            seen: format!("refused at {at} ({reason}) where a miss would do"),
            checked: judge::CHECKED_MISS,
        },
    }
}

// --- the crafts ---

fn oversized_manifest(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let text = String::from_utf8_lossy(&s.entry_manifest(entry)).into_owned();
    let padded = text.replacen(
        "\"annotations\":{",
        &format!(
            "\"annotations\":{{\"padding\":\"{}\",",
            "x".repeat(80 * 1024)
        ),
        1,
    );
    let descriptor = s.tag(&entry.cache_key, OCI_MANIFEST, padded.as_bytes())?;
    s.attach(
        &descriptor,
        &s.signed_for(entry, &s.subject.signer, &descriptor),
    )
}

/// An image index where the entry manifest should be.
fn index_under_the_tag(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let (_, honest) = s.tag_honest(entry)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": honest.digest().to_string(), "size": honest.size()}],
    });
    let bytes = serde_json::to_vec(&index)?;
    s.tag(&entry.cache_key, OCI_INDEX, &bytes)?;
    Ok(())
}

fn unsigned(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    s.tag_honest(entry).map(drop)
}

fn referrer_garbage(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let (_, descriptor) = s.tag_honest(entry)?;
    s.attach(&descriptor, b"\x00\x9f not JSON, not a bundle \xff")
}

fn referrer_untrusted_key(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let (_, descriptor) = s.tag_honest(entry)?;
    s.attach(
        &descriptor,
        &s.signed_for(entry, &SigningKey::generate(), &descriptor),
    )
}

/// The trusted signature of another entry, attached to this one.
fn signature_moved(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let other = s.entry_for("signature-moved-other");
    let other_manifest = s.entry_manifest(&other);
    let other_descriptor = Descriptor::new(
        MediaType::from(OCI_MANIFEST),
        other_manifest.len() as u64,
        sha256_digest(&other_manifest),
    );
    let (_, descriptor) = s.tag_honest(entry)?;
    s.attach(
        &descriptor,
        &s.signed_for(&other, &s.subject.signer, &other_descriptor),
    )
}

/// The entry manifest with its layer size changed.
fn lying_size(s: &Scratch<'_>, entry: &EntryManifest) -> Vec<u8> {
    let archive = &entry.archive;
    let honest = String::from_utf8_lossy(&s.entry_manifest(entry)).into_owned();
    honest
        .replace(
            &format!("\"size\":{}}}]", archive.size),
            &format!("\"size\":{}}}]", archive.size + 4096),
        )
        .into_bytes()
}

/// Another manifest under the tag, with the honest signature attached to it.
fn manifest_swapped(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let (_, honest) = s.tag_honest(entry)?;
    let signature = s.signed_for(entry, &s.subject.signer, &honest);
    let lying = s.tag(&entry.cache_key, OCI_MANIFEST, &lying_size(s, entry))?;
    s.attach(&lying, &signature)
}

/// The tag moved to another key's published entry.
fn tag_moved(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let other = s.entry_for("tag-moved-other");
    s.publish(&other)?;
    s.tag(&entry.cache_key, OCI_MANIFEST, &s.entry_manifest(&other))?;
    Ok(())
}

fn old_format_version(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let (_, descriptor) = s.tag_honest(entry)?;
    let mut old = entry.clone();
    old.schema = "hermetic.cache-entry/v0".to_owned();
    s.attach(
        &descriptor,
        &s.signed_for(&old, &s.subject.signer, &descriptor),
    )
}

/// Signed (by the trusted key) for an untrusted scope, copied into this one.
fn scope_copied(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let (_, descriptor) = s.tag_honest(entry)?;
    let mut moved = entry.clone();
    moved.scope = format!("untrusted-{}", s.remote.scope().as_str());
    s.attach(
        &descriptor,
        &s.signed_for(&moved, &s.subject.signer, &descriptor),
    )
}

/// `manifest` under the tag, signed by the trusted key for exactly those bytes: only the
/// byte-for-byte manifest check stands between it and a restore.
fn signed_lie(s: &Scratch<'_>, entry: &EntryManifest, manifest: &[u8]) -> Result<(), CraftError> {
    let descriptor = s.tag(&entry.cache_key, OCI_MANIFEST, manifest)?;
    s.attach(
        &descriptor,
        &s.signed_for(entry, &s.subject.signer, &descriptor),
    )
}

fn size_lie_signed(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    signed_lie(s, entry, &lying_size(s, entry))
}

/// The layer names another blob (one the registry has): the signed archive is not it.
fn blob_swapped_signed(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let evil = zstd(&RawTar::new().file("../../evil", 0o644, b"pwned\n").end())?;
    let blob = s.blob(layout::ARCHIVE_MEDIA_TYPE, &evil)?;
    let archive = &entry.archive;
    let honest = String::from_utf8_lossy(&s.entry_manifest(entry)).into_owned();
    let swapped = honest.replace(
        &format!(
            "\"digest\":\"sha256:{}\",\"size\":{}",
            archive.sha256, archive.size
        ),
        &format!("\"digest\":\"{}\",\"size\":{}", blob.digest(), blob.size()),
    );
    signed_lie(s, entry, swapped.as_bytes())
}

fn second_layer_signed(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let archive = &entry.archive;
    let layer = format!(
        "{{\"mediaType\":\"{}\",\"digest\":\"sha256:{}\",\"size\":{}}}",
        layout::ARCHIVE_MEDIA_TYPE,
        archive.sha256,
        archive.size
    );
    let honest = String::from_utf8_lossy(&s.entry_manifest(entry)).into_owned();
    let doubled = honest.replace(&format!("{layer}]"), &format!("{layer},{layer}]"));
    signed_lie(s, entry, doubled.as_bytes())
}

/// A hostile archive published consistently and signed by the trusted key (a compromised
/// trusted builder): every registry check passes; the local restore's entry-by-entry
/// checks must refuse it.
fn hostile_archive_signed(s: &Scratch<'_>, entry: &EntryManifest) -> Result<(), CraftError> {
    let tar = RawTar::new()
        .dir("out")
        .file("out/../../evil", 0o644, b"x")
        .end();
    let hostile = zstd(&tar)?;
    s.blob(layout::ARCHIVE_MEDIA_TYPE, &hostile)?;
    let mut signed = entry.clone();
    signed.archive = ArchiveDigests::of(&hostile);
    let manifest = s.entry_manifest(&signed);
    let descriptor = s.tag(&signed.cache_key, OCI_MANIFEST, &manifest)?;
    s.attach(
        &descriptor,
        &s.signed_for(&signed, &s.subject.signer, &descriptor),
    )
}
