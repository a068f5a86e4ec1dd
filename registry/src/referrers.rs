//! Referrers: the manifests whose `subject` is a given manifest. Through the registry's
//! referrers API where it has one, else through the referrers tag schema of the
//! distribution spec: an image index at the tag `sha256-<hex>` that clients keep up to
//! date themselves, read-modify-write.

use std::thread;
use std::time::Duration;

use oci_spec::image::{Descriptor, Digest, ImageIndex, MediaType};
use ureq::http::Method;

use crate::auth::Access;
use crate::blobs::require_sha256;
use crate::error::{ErrorKind, RegistryError, Step};
use crate::manifests::{DEFAULT_MANIFEST_LIMIT, OCI_INDEX};
use crate::reference::{ManifestReference, Repository, Tag};
use crate::transport::{next_link, read_small_body, with_query, Exchange};
use crate::Client;

/// Rounds of read-modify-write before a busy referrers tag is given up on.
const UPDATE_ATTEMPTS: u32 = 5;
/// Pause before round n is n times this, so that racing writers drift apart.
const UPDATE_BACKOFF: Duration = Duration::from_millis(50);
/// Pages of the referrers API read at most (its `Link` headers could loop).
const MAX_PAGES: usize = 100;

/// The referrers tag of a subject: `sha256-<hex>` (the only algorithm we check, and
/// one whose tag fits the 128-character limit).
fn referrers_tag(subject: &Digest) -> Result<ManifestReference, ErrorKind> {
    require_sha256(subject)?;
    let tag = Tag::new(&format!("{}-{}", subject.algorithm(), subject.digest()))
        .expect("sha256, a dash and 64 hex digits make a tag");
    Ok(ManifestReference::Tag(tag))
}

impl Client {
    /// The descriptors of the manifests that refer to `subject`, only those of
    /// `artifact_type` when given. Asks the referrers API first and falls back on its
    /// 404 to the referrers tag; a subject nothing refers to gives an empty list.
    /// Nothing here is trusted: the caller fetches what it picks by digest.
    pub fn referrers(
        &self,
        repository: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let mut url = format!(
            "{}referrers/{subject}",
            self.transport.repository_url(repository)
        );
        let tag = referrers_tag(subject)
            .map_err(|kind| RegistryError::new(Step::FetchReferrers, &url, kind))?;
        if let Some(artifact_type) = artifact_type {
            url = with_query(&url, "artifactType", artifact_type);
        }
        let descriptors = match self.referrers_from_api(repository, url)? {
            Some(descriptors) => descriptors,
            None => self
                .referrers_from_tag(repository, &tag)?
                .0
                .manifests()
                .clone(),
        };
        // A registry may ignore the filter (it says so by omitting
        // `OCI-Filters-Applied`), and the tag index has none: filter here in any case.
        Ok(descriptors
            .into_iter()
            .filter(|descriptor| {
                artifact_type.is_none_or(|wanted| {
                    descriptor
                        .artifact_type()
                        .as_ref()
                        .is_some_and(|actual| actual.to_string() == wanted)
                })
            })
            .collect())
    }

    /// None when the registry has no referrers API (404).
    fn referrers_from_api(
        &self,
        repository: &Repository,
        first: String,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let mut descriptors = Vec::new();
        let mut next = Some(first);
        for page in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(Some(descriptors));
            };
            let exchange = Exchange {
                step: Step::FetchReferrers,
                method: Method::GET,
                url,
                repository,
                access: Access::Pull,
                headers: vec![("Accept", OCI_INDEX.into())],
                body: None,
            };
            let fail = |kind| RegistryError::new(exchange.step, &exchange.url, kind);
            let response = self.transport.send(&exchange)?;
            if page == 0 && response.status().as_u16() == 404 {
                return Ok(None);
            }
            let mut response = self.transport.expect_status(&exchange, response, &[200])?;
            next = next_link(&response, &exchange.url);
            let body = read_small_body(&mut response, DEFAULT_MANIFEST_LIMIT).map_err(fail)?;
            let index: ImageIndex = serde_json::from_slice(&body)
                .map_err(|error| fail(ErrorKind::InvalidResponse(error.to_string())))?;
            descriptors.extend(index.manifests().iter().cloned());
        }
        Err(RegistryError::new(
            Step::FetchReferrers,
            next.as_deref().unwrap_or_default(),
            ErrorKind::InvalidResponse(format!("more than {MAX_PAGES} pages of referrers")),
        ))
    }

    /// The referrers tag index (empty when the tag does not exist) and its ETag.
    fn referrers_from_tag(
        &self,
        repository: &Repository,
        tag: &ManifestReference,
    ) -> Result<(ImageIndex, Option<String>), RegistryError> {
        match self.get_manifest_with_etag(repository, tag, &[OCI_INDEX], DEFAULT_MANIFEST_LIMIT) {
            Ok((manifest, etag)) => {
                let index = serde_json::from_slice(&manifest.bytes).map_err(|error| {
                    RegistryError::new(
                        Step::FetchReferrers,
                        &self.manifest_url(repository, tag),
                        ErrorKind::InvalidManifest(error),
                    )
                })?;
                Ok((index, etag))
            }
            Err(error) if error.is_not_found() => Ok((empty_index(), None)),
            Err(error) => Err(error),
        }
    }

    /// Adds `referrer` to the referrers tag index of `subject`, for registries without
    /// the referrers API ([`Client::put_manifest`] calls this itself when the registry
    /// did not answer `OCI-Subject`). Read-modify-write: the PUT carries `If-Match`
    /// where the registry gave an ETag, and the index is read back afterwards, since
    /// registries that ignore `If-Match` let a concurrent writer's index replace ours;
    /// a lost update is redone with the other writer's entries kept.
    pub fn add_referrer(
        &self,
        repository: &Repository,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<(), RegistryError> {
        let tag = referrers_tag(subject).map_err(|kind| {
            let url = format!("{}manifests/", self.transport.repository_url(repository));
            RegistryError::new(Step::UpdateReferrersTag, &url, kind)
        })?;
        for attempt in 0..UPDATE_ATTEMPTS {
            thread::sleep(UPDATE_BACKOFF * attempt);
            let (mut index, etag) = self.referrers_from_tag(repository, &tag)?;
            if lists(&index, referrer.digest()) {
                return Ok(());
            }
            let mut manifests = index.manifests().clone();
            manifests.push(referrer.clone());
            index.set_manifests(manifests);
            let bytes = serde_json::to_vec(&index).map_err(|error| {
                RegistryError::new(
                    Step::UpdateReferrersTag,
                    &self.manifest_url(repository, &tag),
                    ErrorKind::InvalidManifest(error),
                )
            })?;
            match self.push_manifest_bytes(repository, &tag, OCI_INDEX, &bytes, etag.as_deref()) {
                Ok(_) => {}
                Err(error) if error.status() == Some(412) => continue,
                Err(error) => return Err(error),
            }
            let (index, _) = self.referrers_from_tag(repository, &tag)?;
            if lists(&index, referrer.digest()) {
                return Ok(());
            }
        }
        Err(RegistryError::new(
            Step::UpdateReferrersTag,
            &self.manifest_url(repository, &tag),
            ErrorKind::ReferrersConflict {
                attempts: UPDATE_ATTEMPTS,
            },
        ))
    }
}

fn lists(index: &ImageIndex, digest: &Digest) -> bool {
    index
        .manifests()
        .iter()
        .any(|descriptor| descriptor.digest() == digest)
}

fn empty_index() -> ImageIndex {
    let mut index = ImageIndex::default();
    index.set_media_type(Some(MediaType::ImageIndex));
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tag_is_algorithm_dash_hex() {
        let subject = crate::reference::parse_sha256_digest(
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        )
        .unwrap();
        assert_eq!(
            referrers_tag(&subject).unwrap().to_string(),
            "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
