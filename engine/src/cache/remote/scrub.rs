//! Looking at a scope's repository as a whole: `hermetic cache ls --remote` (the tags that
//! are cache keys, each with who vouches for it: the steps up to `key` of a remote
//! restore) and `hermetic cache verify --remote` (a scrub: every entry, or the ones asked
//! for, verified in place through step `archive`, each blob downloaded to a temporary file
//! in the local store and removed; a refused entry is quarantined locally like one a build
//! refused).
use std::path::PathBuf;

use super::fetch::{
    fetch_archive, fetch_signed, quarantine_fetched, Fetched, RemoteEntryError, Stop,
};
use super::{FetchDir, Progress, Remote, Unusable};
use crate::cache::key::CacheKey;
use crate::cache::store::Store;
use crate::errors::Chain;
use crate::signing::VerifyingKey;

/// A tag of the repository that is a cache key.
#[derive(Debug)]
pub struct Listed {
    pub key: CacheKey,
    /// The entry manifest's digest, `sha256:…`, when it could be read.
    pub manifest: Option<String>,
    pub signature: ListedSignature,
}

/// Who vouches for a listed entry.
#[derive(Debug)]
pub enum ListedSignature {
    /// A key trusted for the scope signed it, for this entry manifest, key and scope.
    Trusted {
        signer: String,
        verdict: String,
        created_at: String,
    },
    /// Nothing trusted vouches for it: `reason` names the refusal when there was one
    /// (none for an entry without a signature).
    Untrusted {
        reason: Option<&'static str>,
        error: String,
    },
}

/// Every tag of the remote's repository that is a cache key, in the registry's order,
/// with its signature checked against `trusted` (the keys trusted for the scope).
/// Nothing is quarantined. An outage or a refusal by the registry ends the listing.
pub fn list(remote: &Remote, trusted: &[VerifyingKey]) -> Result<Vec<Listed>, Unusable> {
    let mut listed = Vec::new();
    for key in cache_keys(remote)? {
        let mut fetched = Fetched::default();
        let signature = match fetch_signed(remote, &key, trusted, &mut fetched) {
            Ok(signed) => ListedSignature::Trusted {
                signer: signed.opened.signer.key_id(),
                verdict: signed.opened.entry.verdict.clone(),
                created_at: signed.opened.entry.created_at.clone(),
            },
            Err(Stop::Unusable(unusable)) => return Err(unusable),
            Err(Stop::Miss(reason)) => ListedSignature::Untrusted {
                reason: None,
                error: reason,
            },
            Err(Stop::Refused(error)) => ListedSignature::Untrusted {
                reason: Some(error.reason()),
                error: error.message(),
            },
        };
        listed.push(Listed {
            manifest: fetched.manifest_digest(),
            key,
            signature,
        });
    }
    Ok(listed)
}

/// One entry a scrub looked at.
#[derive(Debug)]
pub struct Scrubbed {
    pub key: CacheKey,
    pub outcome: ScrubbedOutcome,
}

#[derive(Debug)]
pub enum ScrubbedOutcome {
    /// Signature, statement, key, entry manifest and archive all check out.
    Verified {
        manifest: String,
        signer: String,
        bytes: u64,
    },
    /// Not checked to the end: no entry, no signature yet, or a local failure.
    Unverified { reason: String },
    /// Refused; what was fetched of it is in quarantine.
    Refused {
        error: RemoteEntryError,
        quarantined: Option<PathBuf>,
    },
}

/// Verifies the entries of `keys` (every tag that is a cache key when None) in place,
/// through step `archive`, with the keys `trusted` for the scope. Refused entries are
/// quarantined in `store`; nothing else stays there. An outage or a refusal by the
/// registry ends the scrub.
pub fn verify(
    remote: &Remote,
    store: &Store,
    keys: Option<Vec<CacheKey>>,
    trusted: &[VerifyingKey],
    progress: Option<Progress<'_>>,
) -> Result<Vec<Scrubbed>, Unusable> {
    let keys = match keys {
        Some(keys) => keys,
        None => cache_keys(remote)?,
    };
    let mut scrubbed = Vec::with_capacity(keys.len());
    for key in keys {
        let outcome = verify_one(remote, store, &key, trusted, progress)?;
        scrubbed.push(Scrubbed { key, outcome });
    }
    Ok(scrubbed)
}

fn verify_one(
    remote: &Remote,
    store: &Store,
    key: &CacheKey,
    trusted: &[VerifyingKey],
    progress: Option<Progress<'_>>,
) -> Result<ScrubbedOutcome, Unusable> {
    let dir = match FetchDir::new(store) {
        Ok(dir) => dir,
        Err(error) => {
            return Ok(ScrubbedOutcome::Unverified {
                reason: format!("not fetched: {}", Chain(&error)),
            })
        }
    };
    let mut fetched = Fetched::default();
    let checked = fetch_signed(remote, key, trusted, &mut fetched).and_then(|signed| {
        fetch_archive(remote, key, &signed, dir.path(), progress).map(|()| signed)
    });
    match checked {
        Ok(signed) => Ok(ScrubbedOutcome::Verified {
            manifest: signed.manifest.digest.to_string(),
            signer: signed.opened.signer.key_id(),
            bytes: signed.opened.entry.archive.size,
        }),
        Err(Stop::Miss(reason)) => Ok(ScrubbedOutcome::Unverified { reason }),
        Err(Stop::Unusable(unusable)) => Err(unusable),
        Err(Stop::Refused(error)) => {
            let quarantined = quarantine_fetched(remote, store, key, dir, &fetched, &error);
            Ok(ScrubbedOutcome::Refused { error, quarantined })
        }
    }
}

/// The repository's tags that are cache keys (others, such as the referrers tags
/// `sha256-…`, are not entries).
fn cache_keys(remote: &Remote) -> Result<Vec<CacheKey>, Unusable> {
    let tags = match remote.client.list_tags(&remote.repository) {
        Ok(tags) => tags,
        // A repository nothing was pushed to yet has no tags.
        Err(error) if error.is_not_found() => Vec::new(),
        Err(error) => {
            return Err(Unusable::of(&error).unwrap_or_else(|| {
                Unusable::Unavailable(format!("the tag list is unusable: {}", Chain(&error)))
            }))
        }
    };
    Ok(tags
        .iter()
        .filter_map(|tag| CacheKey::parse(tag).ok())
        .collect())
}
