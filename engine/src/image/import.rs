//! From a resolved manifest to a stored image, whatever the blobs come from (an OCI layout,
//! a docker-archive tarball, a registry): the manifest's digest is locked, the config read
//! and checked, the layers applied in order into a staging directory, the tree described,
//! and the whole published by one rename; on any refusal or failure nothing is left.
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::SystemTime;

use super::error::{ImageError, Refusal, Rule};
use super::layer::{Assembly, Layer, LayerFailure};
use super::limits::ImageLimits;
use super::reference::{ImageDigest, Resolution};
use super::spec::{Compression, Config, Descriptor, Manifest, DOCKER_CONFIG, OCI_CONFIG};
use super::store::{Begun, ImageRecord, LayerRecord, Store, STORE_VERSION};
use crate::sys::archive as sys;

/// The manifest that fixes an image, and how it was found.
pub(super) struct Plan {
    pub(super) manifest_bytes: Vec<u8>,
    pub(super) manifest_digest: ImageDigest,
    pub(super) media_type: String,
    pub(super) manifest: Manifest,
    pub(super) resolution: Resolution,
    /// `registry`, `oci-layout` or `docker-archive`.
    pub(super) source: &'static str,
}

/// Where an image's blobs come from.
pub(super) trait Blobs {
    /// Opens the blob `descriptor` names. Its bytes are not trusted: the caller checks
    /// their size and digest as it reads them. `scratch` is the import's private directory,
    /// for a source that has to fetch the blob first.
    fn open(
        &self,
        descriptor: &Descriptor,
        scratch: BorrowedFd<'_>,
    ) -> Result<Box<dyn Read + '_>, ImageError>;
}

/// What a pull or import did.
#[derive(Debug)]
pub struct Imported {
    pub record: ImageRecord,
    /// How this request's reference resolved (the record keeps the first request's).
    pub resolution: Resolution,
    /// The image was in the store already; nothing was fetched or unpacked.
    pub already_stored: bool,
    pub tree: PathBuf,
}

/// Stores the image `plan` describes, reading its blobs from `blobs`.
pub(super) fn store_image(
    store: &Store,
    plan: Plan,
    blobs: &dyn Blobs,
    limits: &ImageLimits,
) -> Result<Imported, ImageError> {
    let digest = plan.manifest_digest.clone();
    let refused = |refusal: Refusal| ImageError::Refused {
        image: digest.to_string(),
        refusal,
    };
    let layers = check_manifest(&plan.manifest, limits).map_err(refused)?;
    let pending = match store.begin(&digest).map_err(ImageError::Store)? {
        Begun::Present(record) => {
            return Ok(Imported {
                tree: store.tree(&digest),
                record: *record,
                resolution: plan.resolution,
                already_stored: true,
            })
        }
        Begun::New(pending) => pending,
    };
    let scratch = sys::open_dir(pending.path()).map_err(|source| ImageError::Write {
        path: pending.path().display().to_string(),
        source,
    })?;
    let config_bytes = read_document(
        blobs,
        &plan.manifest.config,
        scratch.as_fd(),
        "config",
        limits,
    )
    .map_err(|error| match error {
        Fetched::Refused(refusal) => refused(refusal),
        Fetched::Failed(error) => error,
    })?;
    let config = Config::parse(&config_bytes).map_err(refused)?;
    if config.rootfs.diff_ids.len() != layers.len() {
        return Err(refused(Refusal::document(
            "config",
            format!(
                "{} diff_ids for {} layers",
                config.rootfs.diff_ids.len(),
                layers.len()
            ),
        )));
    }
    let rootfs = pending.rootfs().map_err(|source| ImageError::Write {
        path: pending.path().display().to_string(),
        source,
    })?;
    let mut assembly = Assembly::new(rootfs, limits.clone());
    let mut layer_records = Vec::new();
    for ((descriptor, compression), diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
        let mut blob = blobs.open(descriptor, scratch.as_fd())?;
        let layer = Layer {
            digest: &descriptor.digest,
            size: descriptor.size,
            compression: *compression,
            diff_id,
        };
        assembly
            .apply_layer(&layer, &mut blob)
            .map_err(|failure| match failure {
                LayerFailure::Refused(refusal) => refused(refusal),
                LayerFailure::Read(source) => ImageError::ReadSource {
                    path: PathBuf::from(descriptor.digest.to_string()),
                    source,
                },
                LayerFailure::Write { path, source } => ImageError::Write { path, source },
            })?;
        layer_records.push(LayerRecord {
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            media_type: descriptor.media_type.clone(),
            diff_id: diff_id.clone(),
        });
    }
    let tree = assembly.finish().map_err(ImageError::Finish)?;
    let (files, bytes) = tree.totals();
    let record = ImageRecord {
        schema: STORE_VERSION.to_owned(),
        digest: digest.clone(),
        media_type: plan.media_type,
        config_digest: plan.manifest.config.digest.clone(),
        platform: config.platform(),
        layers: layer_records,
        tree_digest: tree.digest(),
        files,
        bytes,
        source: plan.source.to_owned(),
        resolution: plan.resolution.clone(),
        stored_at: crate::timestamp::rfc3339(SystemTime::now()),
    };
    pending
        .publish(&record, &plan.manifest_bytes, &config_bytes, &tree)
        .map_err(ImageError::Store)?;
    Ok(Imported {
        tree: store.tree(&digest),
        record,
        resolution: plan.resolution,
        already_stored: false,
    })
}

/// The manifest's layers with their compression, once the manifest is within the limits
/// and names only what can be unpacked.
fn check_manifest<'m>(
    manifest: &'m Manifest,
    limits: &ImageLimits,
) -> Result<Vec<(&'m Descriptor, Compression)>, Refusal> {
    if !matches!(
        manifest.config.media_type.as_str(),
        OCI_CONFIG | DOCKER_CONFIG
    ) {
        return Err(Refusal::document(
            "manifest",
            format!(
                "the config's media type {:?} is not an image config",
                manifest.config.media_type
            ),
        ));
    }
    if manifest.config.size > limits.max_document_bytes {
        return Err(Refusal::new(
            Rule::Limit,
            Some("config".to_owned()),
            format!(
                "a config of {} bytes (at most {})",
                manifest.config.size, limits.max_document_bytes
            ),
        ));
    }
    if manifest.layers.len() > limits.max_layers {
        return Err(Refusal::new(
            Rule::Limit,
            Some("manifest".to_owned()),
            format!(
                "{} layers (at most {})",
                manifest.layers.len(),
                limits.max_layers
            ),
        ));
    }
    manifest
        .layers
        .iter()
        .map(|layer| match Compression::of_media_type(&layer.media_type) {
            Some(compression) => Ok((layer, compression)),
            None => Err(Refusal::new(
                Rule::MediaType,
                Some(layer.digest.to_string()),
                format!("layer media type {:?} is not one this unpacker reads (tar, tar+gzip, tar+zstd)", layer.media_type),
            )),
        })
        .collect()
}

/// A small blob read whole and checked, or why not.
pub(super) enum Fetched {
    Refused(Refusal),
    Failed(ImageError),
}

impl From<ImageError> for Fetched {
    fn from(error: ImageError) -> Self {
        Self::Failed(error)
    }
}

/// Reads the document `descriptor` names (a config, a manifest, an index) and checks its
/// size and digest; `what` names it in a refusal.
pub(super) fn read_document(
    blobs: &dyn Blobs,
    descriptor: &Descriptor,
    scratch: BorrowedFd<'_>,
    what: &str,
    limits: &ImageLimits,
) -> Result<Vec<u8>, Fetched> {
    if descriptor.size > limits.max_document_bytes {
        return Err(Fetched::Refused(Refusal::new(
            Rule::Limit,
            Some(what.to_owned()),
            format!(
                "{} bytes (at most {})",
                descriptor.size, limits.max_document_bytes
            ),
        )));
    }
    let mut reader = blobs.open(descriptor, scratch)?;
    let bytes = read_bounded(&mut reader, descriptor.size).map_err(|source| {
        if source.kind() == io::ErrorKind::InvalidData {
            Fetched::Refused(Refusal::new(
                Rule::BlobSize,
                Some(what.to_owned()),
                format!("longer than its descriptor's {} bytes", descriptor.size),
            ))
        } else {
            Fetched::Failed(ImageError::ReadSource {
                path: PathBuf::from(descriptor.digest.to_string()),
                source,
            })
        }
    })?;
    check_blob(&bytes, descriptor, what).map_err(Fetched::Refused)?;
    Ok(bytes)
}

/// Requires `bytes` to be what `descriptor` names.
pub(super) fn check_blob(bytes: &[u8], descriptor: &Descriptor, what: &str) -> Result<(), Refusal> {
    if bytes.len() as u64 != descriptor.size {
        return Err(Refusal::new(
            Rule::BlobSize,
            Some(what.to_owned()),
            format!(
                "{} bytes, its descriptor says {}",
                bytes.len(),
                descriptor.size
            ),
        ));
    }
    let found = ImageDigest::of(bytes);
    if found != descriptor.digest {
        return Err(Refusal::new(
            Rule::BlobDigest,
            Some(what.to_owned()),
            format!(
                "its bytes hash to {found}, its descriptor names {}",
                descriptor.digest
            ),
        ));
    }
    Ok(())
}

/// Reads at most `max` bytes of `reader`; more is an error of kind `InvalidData`.
pub(super) fn read_bounded(reader: &mut dyn Read, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {max} bytes"),
        ));
    }
    Ok(bytes)
}
