//! OCI image layouts (image-layout.md): `oci-layout`, `index.json` and `blobs/sha256/`,
//! whether a directory on disk or the same files inside a tarball (`docker save` since
//! Docker 25). The index picks the image: its one manifest, or the one whose
//! `org.opencontainers.image.ref.name` is the tag asked for; an index under it resolves
//! to this host's platform. Every document is read within the limits and checked against
//! its descriptor before it is parsed.
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{ImageError, Refusal, Rule};
use super::import::{check_blob, read_bounded, Blobs, Plan};
use super::limits::ImageLimits;
use super::reference::Resolution;
use super::spec::{self, Descriptor, Document, REF_NAME_ANNOTATION};
use crate::sys::archive as sys;

const LAYOUT_VERSION: &str = "1.0.0";

/// The files of a layout, however they are stored.
pub(super) trait LayoutFiles {
    /// Opens `path` (relative, `/`-separated); None when there is no such file.
    fn open_file(&self, path: &str) -> Result<Option<Box<dyn Read + '_>>, ImageError>;
}

/// A layout directory on disk, read beneath its fd without following a symlink.
pub(super) struct LayoutDir {
    dir: OwnedFd,
    path: PathBuf,
}

impl LayoutDir {
    pub(super) fn open(path: &Path) -> Result<Self, ImageError> {
        let dir = sys::open_dir(path).map_err(|source| ImageError::ReadSource {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            dir,
            path: path.to_owned(),
        })
    }
}

impl LayoutFiles for LayoutDir {
    fn open_file(&self, path: &str) -> Result<Option<Box<dyn Read + '_>>, ImageError> {
        match sys::open_file_beneath(self.dir.as_fd(), Path::new(path)) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) if sys::is_resolution_refused(&error) => Err(ImageError::Refused {
                image: format!("in {}", self.path.display()),
                refusal: Refusal::document(
                    path,
                    "reached through a symlink, or not a file: a layout's files are read without following one",
                ),
            }),
            Err(source) => Err(ImageError::ReadSource {
                path: self.path.join(path),
                source,
            }),
        }
    }
}

/// A layout's blobs, `blobs/sha256/<hex>`.
pub(super) struct LayoutBlobs<'a>(pub(super) &'a dyn LayoutFiles);

impl Blobs for LayoutBlobs<'_> {
    fn open(
        &self,
        descriptor: &Descriptor,
        _scratch: BorrowedFd<'_>,
    ) -> Result<Box<dyn Read + '_>, ImageError> {
        let path = blob_path(descriptor);
        self.0.open_file(&path)?.ok_or_else(|| ImageError::Refused {
            image: descriptor.digest.to_string(),
            refusal: Refusal::document(&path, "the layout does not hold this blob"),
        })
    }
}

fn blob_path(descriptor: &Descriptor) -> String {
    format!("blobs/sha256/{}", descriptor.digest.hex())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// Resolves the layout's image (the one manifest, or `tag`'s) to the manifest to unpack.
/// `shown` names the layout in messages and the record.
pub(super) fn plan(
    files: &dyn LayoutFiles,
    tag: Option<&str>,
    shown: &str,
    source: &'static str,
    limits: &ImageLimits,
) -> Result<Plan, ImageError> {
    let refused = |refusal: Refusal| ImageError::Refused {
        image: format!("in {shown}"),
        refusal,
    };
    let marker = read_small(files, "oci-layout", shown, limits)?;
    let marker: LayoutMarker = serde_json::from_slice(&marker)
        .map_err(|error| refused(Refusal::document("oci-layout", error.to_string())))?;
    if marker.image_layout_version != LAYOUT_VERSION {
        return Err(refused(Refusal::document(
            "oci-layout",
            format!(
                "imageLayoutVersion {:?}, not {LAYOUT_VERSION:?}",
                marker.image_layout_version
            ),
        )));
    }
    let index_bytes = read_small(files, "index.json", shown, limits)?;
    let index = match Document::parse(&index_bytes, spec::OCI_INDEX).map_err(refused)? {
        Document::Index(index) => index,
        Document::Manifest(_) => unreachable!("parsed as an index"),
    };
    let tags = |descriptor: &Descriptor| descriptor.annotations.get(REF_NAME_ANNOTATION).cloned();
    let chosen: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|descriptor| tag.is_none() || tags(descriptor).as_deref() == tag)
        .collect();
    let top = match (chosen.as_slice(), tag) {
        ([one], _) => *one,
        ([], Some(tag)) => {
            return Err(ImageError::Usage(format!(
                "{shown} has no image tagged {tag:?} (tags: {})",
                known_tags(&index.manifests, tags)
            )))
        }
        ([], None) => {
            return Err(refused(Refusal::document(
                "index.json",
                "it lists no image",
            )))
        }
        (_, _) => {
            return Err(ImageError::Usage(format!(
                "{shown} holds several images: name one with --tag (tags: {})",
                known_tags(&index.manifests, tags)
            )))
        }
    };
    let read = |descriptor: &Descriptor, what: &str| {
        let path = blob_path(descriptor);
        let missing = || {
            refused(Refusal::document(
                &path,
                "the layout does not hold this blob",
            ))
        };
        if descriptor.size > limits.max_document_bytes {
            return Err(refused(Refusal::new(
                Rule::Limit,
                Some(what.to_owned()),
                format!(
                    "{} bytes (at most {})",
                    descriptor.size, limits.max_document_bytes
                ),
            )));
        }
        let mut reader = files.open_file(&path)?.ok_or_else(missing)?;
        let bytes = read_bounded(&mut reader, descriptor.size).map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                refused(Refusal::new(
                    Rule::BlobSize,
                    Some(what.to_owned()),
                    format!("longer than its descriptor's {} bytes", descriptor.size),
                ))
            } else {
                ImageError::ReadSource {
                    path: PathBuf::from(shown).join(&path),
                    source,
                }
            }
        })?;
        check_blob(&bytes, descriptor, what).map_err(refused)?;
        Ok(bytes)
    };
    let top_bytes = read(top, "manifest")?;
    let (manifest_descriptor, manifest_bytes) =
        match Document::parse(&top_bytes, &top.media_type).map_err(refused)? {
            Document::Manifest(_) => (top.clone(), top_bytes),
            Document::Index(nested) => {
                let descriptor = spec::select_platform(&nested).map_err(refused)?.clone();
                let bytes = read(&descriptor, "manifest")?;
                (descriptor, bytes)
            }
        };
    let manifest =
        match Document::parse(&manifest_bytes, &manifest_descriptor.media_type).map_err(refused)? {
            Document::Manifest(manifest) => manifest,
            Document::Index(_) => {
                return Err(refused(Refusal::document(
                    "manifest",
                    "an index where the platform's image manifest was expected",
                )))
            }
        };
    Ok(Plan {
        manifest_bytes,
        manifest_digest: manifest_descriptor.digest.clone(),
        media_type: manifest_descriptor.media_type.clone(),
        manifest,
        resolution: Resolution {
            reference: match tag {
                Some(tag) => format!("{shown}:{tag}"),
                None => shown.to_owned(),
            },
            tag: tag.map(str::to_owned),
            resolved: top.digest.clone(),
            manifest: manifest_descriptor.digest,
        },
        source,
    })
}

fn known_tags(manifests: &[Descriptor], tags: impl Fn(&Descriptor) -> Option<String>) -> String {
    let known: Vec<String> = manifests.iter().filter_map(tags).collect();
    if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    }
}

/// A layout's own small file (`oci-layout`, `index.json`), within the document limit.
pub(super) fn read_small(
    files: &dyn LayoutFiles,
    path: &str,
    shown: &str,
    limits: &ImageLimits,
) -> Result<Vec<u8>, ImageError> {
    let refused = |detail: String| ImageError::Refused {
        image: format!("in {shown}"),
        refusal: Refusal::new(Rule::Document, Some(path.to_owned()), detail),
    };
    let mut reader = files
        .open_file(path)?
        .ok_or_else(|| refused("missing: this is not an OCI image layout".to_owned()))?;
    read_bounded(&mut reader, limits.max_document_bytes).map_err(|source| {
        if source.kind() == std::io::ErrorKind::InvalidData {
            refused(format!("larger than {} bytes", limits.max_document_bytes))
        } else {
            ImageError::ReadSource {
                path: PathBuf::from(shown).join(path),
                source,
            }
        }
    })
}
