//! `hermetic image pull`: an image from an OCI registry through hermetic-registry, with the
//! remote cache's transport and credential rules (system roots plus an optional CA, plain
//! HTTP only to loopback unless asked, docker's and podman's auth files). The reference's
//! tag is resolved once, by fetching its manifest; from then on everything is fetched by
//! digest. Each blob is streamed into an unnamed file of the import's staging directory,
//! checked against its descriptor by the client, and unpacked from there.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hermetic_registry::{
    Client, ClientConfig, Credentials, ImageReference, ManifestReference, MediaType, PlainHttp,
    Repository,
};

use super::error::{ImageError, Refusal};
use super::import::{store_image, Blobs, Imported, Plan};
use super::limits::ImageLimits;
use super::reference::{ImageDigest, Resolution};
use super::spec::{self, Descriptor, Document, MANIFEST_MEDIA_TYPES};
use super::store::Store;
use crate::sys::archive as sys;

/// How to reach the registry.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Bounds connecting, each answer and each stall of a download.
    pub timeout: Duration,
    /// PEM certificates trusted besides the system's.
    pub registry_ca: Option<PathBuf>,
    /// Plain HTTP to a registry that is not on loopback.
    pub plain_http: bool,
}

/// Pulls `reference` (`HOST[:PORT]/REPO[:TAG][@sha256:HEX]`) into the store in
/// `state_dir`.
pub fn pull(
    state_dir: &Path,
    reference: &str,
    options: &PullOptions,
    limits: &ImageLimits,
) -> Result<Imported, ImageError> {
    let parsed: ImageReference = reference
        .parse()
        .map_err(|error| ImageError::Usage(format!("{}", crate::errors::Chain(&error))))?;
    let store = Store::open(state_dir).map_err(ImageError::Store)?;
    let credentials = Credentials::from_environment().map_err(ImageError::Credentials)?;
    let config = ClientConfig {
        connect_timeout: options.timeout,
        request_timeout: options.timeout,
        extra_ca_file: options.registry_ca.clone(),
        plain_http: if options.plain_http {
            PlainHttp::Insecure
        } else {
            PlainHttp::Loopback
        },
        ..ClientConfig::default()
    };
    let client = Client::new(config, credentials).map_err(ImageError::RegistryCa)?;
    let repository = parsed.repository();
    let refused = |digest: &ImageDigest, refusal: Refusal| ImageError::Refused {
        image: digest.to_string(),
        refusal,
    };
    let fetched = client
        .get_manifest(
            repository,
            &parsed.manifest_reference(),
            &MANIFEST_MEDIA_TYPES,
            limits.max_document_bytes,
        )
        .map_err(ImageError::Registry)?;
    let resolved = digest_of(&fetched.digest)?;
    let (manifest_digest, media_type, bytes) =
        match Document::parse(&fetched.bytes, &fetched.media_type)
            .map_err(|refusal| refused(&resolved, refusal))?
        {
            Document::Manifest(_) => (resolved.clone(), fetched.media_type, fetched.bytes),
            Document::Index(index) => {
                let chosen =
                    spec::select_platform(&index).map_err(|refusal| refused(&resolved, refusal))?;
                let platform = client
                    .get_manifest(
                        repository,
                        &ManifestReference::Digest(chosen.digest.to_registry()),
                        &[chosen.media_type.as_str()],
                        limits.max_document_bytes,
                    )
                    .map_err(ImageError::Registry)?;
                (chosen.digest.clone(), platform.media_type, platform.bytes)
            }
        };
    let manifest = match Document::parse(&bytes, &media_type)
        .map_err(|refusal| refused(&manifest_digest, refusal))?
    {
        Document::Manifest(manifest) => manifest,
        Document::Index(_) => {
            return Err(refused(
                &manifest_digest,
                Refusal::document("manifest", "an index where an image manifest was expected"),
            ))
        }
    };
    let plan = Plan {
        manifest_bytes: bytes,
        manifest_digest: manifest_digest.clone(),
        media_type,
        manifest,
        resolution: Resolution {
            reference: reference.to_owned(),
            tag: parsed.tag().map(|tag| tag.as_str().to_owned()),
            resolved,
            manifest: manifest_digest,
        },
        source: "registry",
    };
    let blobs = RegistryBlobs {
        client: &client,
        repository,
    };
    store_image(&store, plan, &blobs, limits)
}

fn digest_of(digest: &hermetic_registry::Digest) -> Result<ImageDigest, ImageError> {
    ImageDigest::parse(digest.as_ref())
        .map_err(|error| ImageError::Usage(crate::errors::error_chain(&error)))
}

/// A repository's blobs, each fetched (and checked by the client) before it is read.
struct RegistryBlobs<'a> {
    client: &'a Client,
    repository: &'a Repository,
}

impl Blobs for RegistryBlobs<'_> {
    fn open(
        &self,
        descriptor: &Descriptor,
        scratch: BorrowedFd<'_>,
    ) -> Result<Box<dyn Read + '_>, ImageError> {
        let name = format!("blob-{}", descriptor.digest.hex());
        let scratch_error = |source| ImageError::Write {
            path: name.clone(),
            source,
        };
        let mut file: File =
            sys::create_read_write_file_at(scratch, &name).map_err(scratch_error)?;
        // Unnamed from the start: nothing to clean up whatever happens next.
        sys::remove_at(scratch, std::ffi::OsStr::new(&name), false).map_err(scratch_error)?;
        let wanted = hermetic_registry::Descriptor::new(
            MediaType::from(descriptor.media_type.as_str()),
            descriptor.size,
            descriptor.digest.to_registry(),
        );
        self.client
            .fetch_blob(self.repository, &wanted, &mut file)
            .map_err(ImageError::Registry)?;
        file.seek(SeekFrom::Start(0)).map_err(scratch_error)?;
        Ok(Box::new(file))
    }
}
