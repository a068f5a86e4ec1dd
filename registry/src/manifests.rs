//! Manifests: push (verified afterwards), fetch (size-capped, digest-checked), delete,
//! and tag listing.

use std::collections::HashMap;

use oci_spec::image::{Descriptor, Digest, MediaType};
use serde::Deserialize;
use ureq::http::Method;

use crate::auth::Access;
use crate::blobs::sha256_digest;
use crate::error::{ErrorKind, RegistryError, Step};
use crate::reference::{ManifestReference, Repository};
use crate::transport::{header, next_link, read_small_body, with_query, Exchange};
use crate::Client;

/// distribution refuses manifests over 4 MiB, so nothing larger is a manifest to us.
pub const DEFAULT_MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Tag pages asked for at once, and how many pages a listing may take: a registry whose
/// `Link` headers loop must not keep us here.
const TAGS_PER_PAGE: usize = 1000;
const MAX_PAGES: usize = 1000;

/// A manifest the registry has accepted and serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    pub digest: Digest,
    pub size: u64,
    pub subject: SubjectIndexing,
}

/// How a pushed manifest's `subject` was made findable by [`Client::referrers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectIndexing {
    /// The manifest has no subject.
    NoSubject,
    /// The registry answered `OCI-Subject`: its referrers API lists the manifest.
    ByRegistry,
    /// The registry has no referrers API: the manifest was added to the referrers tag
    /// index (`sha256-<hex>`).
    ByReferrersTag,
}

/// A fetched manifest, its digest computed from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// The fields of an OCI manifest or index that say whether and how it refers to another.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerFields {
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<ConfigField>,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigField {
    media_type: String,
}

#[derive(Deserialize)]
struct TagPage {
    // distribution answers `"tags": null` for a repository whose tags were all deleted,
    // which oci-spec's `TagList` (a plain Vec) would refuse.
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Client {
    /// Pushes a manifest under a tag or its digest, then checks with a HEAD that the
    /// registry serves it (garbage collection racing a push has lost manifests that
    /// were acknowledged). A manifest with a `subject` is made findable by
    /// [`Client::referrers`]: by the registry when it answers `OCI-Subject`, else by
    /// adding it to the referrers tag index.
    pub fn put_manifest(
        &self,
        repository: &Repository,
        reference: &ManifestReference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PushedManifest, RegistryError> {
        let url = self.manifest_url(repository, reference);
        let referrer_fields = if media_type == OCI_MANIFEST || media_type == OCI_INDEX {
            let fields: ReferrerFields = serde_json::from_slice(bytes).map_err(|error| {
                RegistryError::new(Step::PushManifest, &url, ErrorKind::InvalidManifest(error))
            })?;
            Some(fields)
        } else {
            None
        };
        let (digest, registry_indexed) =
            self.push_manifest_bytes(repository, reference, media_type, bytes, None)?;
        let size = bytes.len() as u64;
        let subject = match referrer_fields {
            Some(ReferrerFields {
                subject: Some(subject),
                artifact_type,
                config,
                annotations,
            }) => {
                if registry_indexed {
                    SubjectIndexing::ByRegistry
                } else {
                    // The referrers spec: an artifact's type is its artifactType, or
                    // else its config's media type.
                    let artifact_type = artifact_type.or(config.map(|config| config.media_type));
                    let mut descriptor =
                        Descriptor::new(MediaType::from(media_type), size, digest.clone());
                    descriptor
                        .set_artifact_type(artifact_type.map(|t| MediaType::from(t.as_str())));
                    descriptor.set_annotations(annotations);
                    self.add_referrer(repository, subject.digest(), &descriptor)?;
                    SubjectIndexing::ByReferrersTag
                }
            }
            _ => SubjectIndexing::NoSubject,
        };
        Ok(PushedManifest {
            digest,
            size,
            subject,
        })
    }

    /// PUT and verify; true when the registry answered `OCI-Subject` (it indexes
    /// referrers itself). `if_match` guards a read-modify-write where the registry
    /// supports it.
    pub(crate) fn push_manifest_bytes(
        &self,
        repository: &Repository,
        reference: &ManifestReference,
        media_type: &str,
        bytes: &[u8],
        if_match: Option<&str>,
    ) -> Result<(Digest, bool), RegistryError> {
        let url = self.manifest_url(repository, reference);
        let digest = sha256_digest(bytes);
        if let ManifestReference::Digest(expected) = reference {
            if *expected != digest {
                return Err(RegistryError::new(
                    Step::PushManifest,
                    &url,
                    ErrorKind::DigestMismatch {
                        expected: expected.clone(),
                        actual: digest,
                    },
                ));
            }
        }
        let mut headers = vec![("Content-Type", media_type.to_owned())];
        if let Some(etag) = if_match {
            headers.push(("If-Match", etag.to_owned()));
        }
        let exchange = Exchange {
            step: Step::PushManifest,
            method: Method::PUT,
            url,
            repository,
            access: Access::Push,
            headers,
            body: Some(bytes),
        };
        let response = self.transport.send(&exchange)?;
        let response = self.transport.expect_status(&exchange, response, &[201])?;
        check_announced_digest(
            &exchange,
            header(&response, "docker-content-digest"),
            &digest,
        )?;
        let registry_indexed = header(&response, "oci-subject").is_some();
        drop(response);

        let reference = ManifestReference::Digest(digest.clone());
        let exchange = Exchange {
            step: Step::VerifyManifest,
            method: Method::HEAD,
            url: self.manifest_url(repository, &reference),
            repository,
            access: Access::Pull,
            headers: vec![("Accept", media_type.to_owned())],
            body: None,
        };
        let response = self.transport.send(&exchange)?;
        if response.status().as_u16() == 404 {
            return Err(RegistryError::new(
                exchange.step,
                &exchange.url,
                ErrorKind::MissingAfterPush,
            ));
        }
        let response = self.transport.expect_status(&exchange, response, &[200])?;
        check_announced_digest(
            &exchange,
            header(&response, "docker-content-digest"),
            &digest,
        )?;
        Ok((digest, registry_indexed))
    }

    /// Fetches a manifest of one of the accepted media types, refusing one larger than
    /// `size_limit` bytes before reading it, and, when `reference` is a digest, one whose
    /// bytes have another.
    pub fn get_manifest(
        &self,
        repository: &Repository,
        reference: &ManifestReference,
        accepted_media_types: &[&str],
        size_limit: u64,
    ) -> Result<FetchedManifest, RegistryError> {
        let (manifest, _etag) =
            self.get_manifest_with_etag(repository, reference, accepted_media_types, size_limit)?;
        Ok(manifest)
    }

    pub(crate) fn get_manifest_with_etag(
        &self,
        repository: &Repository,
        reference: &ManifestReference,
        accepted_media_types: &[&str],
        size_limit: u64,
    ) -> Result<(FetchedManifest, Option<String>), RegistryError> {
        let exchange = Exchange {
            step: Step::FetchManifest,
            method: Method::GET,
            url: self.manifest_url(repository, reference),
            repository,
            access: Access::Pull,
            headers: vec![("Accept", accepted_media_types.join(", "))],
            body: None,
        };
        let fail = |kind| RegistryError::new(exchange.step, &exchange.url, kind);
        let response = self.transport.send(&exchange)?;
        let mut response = self.transport.expect_status(&exchange, response, &[200])?;
        let announced = header(&response, "content-length").and_then(|n| n.parse::<u64>().ok());
        if announced.is_some_and(|announced| announced > size_limit) {
            return Err(fail(ErrorKind::ManifestTooLarge { limit: size_limit }));
        }
        let content_type = header(&response, "content-type")
            .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned());
        let etag = header(&response, "etag").map(str::to_owned);
        let bytes = read_small_body(&mut response, size_limit).map_err(|kind| match kind {
            ErrorKind::InvalidResponse(_) => ErrorKind::ManifestTooLarge { limit: size_limit },
            other => other,
        });
        let bytes = bytes.map_err(fail)?;
        let digest = sha256_digest(&bytes);
        if let ManifestReference::Digest(expected) = reference {
            if *expected != digest {
                return Err(fail(ErrorKind::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                }));
            }
        }
        let media_type = match content_type {
            Some(media_type) if !media_type.is_empty() => media_type,
            _ => media_type_field(&bytes).unwrap_or_default(),
        };
        if !accepted_media_types.is_empty() && !accepted_media_types.contains(&media_type.as_str())
        {
            return Err(fail(ErrorKind::UnexpectedMediaType {
                actual: media_type,
                accepted: accepted_media_types.iter().map(|t| t.to_string()).collect(),
            }));
        }
        Ok((
            FetchedManifest {
                bytes,
                media_type,
                digest,
            },
            etag,
        ))
    }

    /// Deletes a manifest by digest (registries delete tags by deleting what they
    /// point at). Needs `storage.delete.enabled` on distribution.
    pub fn delete_manifest(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let exchange = Exchange {
            step: Step::DeleteManifest,
            method: Method::DELETE,
            url: self.manifest_url(repository, &ManifestReference::Digest(digest.clone())),
            repository,
            access: Access::Delete,
            headers: Vec::new(),
            body: None,
        };
        let response = self.transport.send(&exchange)?;
        self.transport.expect_status(&exchange, response, &[202])?;
        Ok(())
    }

    /// Every tag of the repository, following `Link` pagination.
    pub fn list_tags(&self, repository: &Repository) -> Result<Vec<String>, RegistryError> {
        let first = with_query(
            &format!("{}tags/list", self.transport.repository_url(repository)),
            "n",
            &TAGS_PER_PAGE.to_string(),
        );
        let mut tags = Vec::new();
        let mut next = Some(first);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(tags);
            };
            let exchange = Exchange {
                step: Step::ListTags,
                method: Method::GET,
                url,
                repository,
                access: Access::Pull,
                headers: vec![("Accept", "application/json".into())],
                body: None,
            };
            let fail = |kind| RegistryError::new(exchange.step, &exchange.url, kind);
            let response = self.transport.send(&exchange)?;
            let mut response = self.transport.expect_status(&exchange, response, &[200])?;
            next = next_link(&response, &exchange.url);
            let body = read_small_body(&mut response, DEFAULT_MANIFEST_LIMIT).map_err(fail)?;
            let page: TagPage = serde_json::from_slice(&body)
                .map_err(|error| fail(ErrorKind::InvalidResponse(error.to_string())))?;
            tags.extend(page.tags.unwrap_or_default());
        }
        match next {
            None => Ok(tags),
            Some(url) => Err(RegistryError::new(
                Step::ListTags,
                &url,
                ErrorKind::InvalidResponse(format!("more than {MAX_PAGES} pages of tags")),
            )),
        }
    }

    pub(crate) fn manifest_url(
        &self,
        repository: &Repository,
        reference: &ManifestReference,
    ) -> String {
        format!(
            "{}manifests/{reference}",
            self.transport.repository_url(repository)
        )
    }
}

/// The registry's `Docker-Content-Digest` must agree with the bytes, when it is sent.
fn check_announced_digest(
    exchange: &Exchange<'_>,
    announced: Option<&str>,
    digest: &Digest,
) -> Result<(), RegistryError> {
    match announced {
        Some(announced) if announced != digest.as_ref() => Err(RegistryError::new(
            exchange.step,
            &exchange.url,
            ErrorKind::InvalidResponse(format!(
                "the registry says the manifest's digest is {announced}, its bytes say {digest}"
            )),
        )),
        _ => Ok(()),
    }
}

fn media_type_field(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MediaTypeField {
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaTypeField>(bytes)
        .ok()?
        .media_type
}
