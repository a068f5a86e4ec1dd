//! Why an image was not stored: a [`Refusal`] (the image's fault: a rule of docs/images.md
//! broken, named by a stable [`Rule`], with the layer and member it was found at), or an
//! [`ImageError`] around it for everything else (usage, the registry, the store, I/O).
use std::fmt;
use std::io;
use std::path::PathBuf;

use hermetic_registry::{ErrorKind, RegistryError};

use super::reference::ImageDigest;
use super::store::StoreError;

/// The rules an image can break, each with a stable name (docs/images.md lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A manifest, index, config or layout file that is not what it must be.
    Document,
    /// A blob whose bytes do not hash to its descriptor's digest.
    BlobDigest,
    /// A blob longer or shorter than its descriptor says.
    BlobSize,
    /// An uncompressed layer that does not hash to the config's `diff_ids` entry.
    DiffId,
    /// A layer media type this unpacker does not read.
    MediaType,
    /// A compressed stream that does not decode (or has bytes after its end).
    Decompress,
    /// A tar header that is not a valid ustar/GNU header.
    Header,
    /// The layer's tar stream ends early.
    Truncated,
    /// Non-zero bytes after the tar end marker, or too much padding.
    TrailingData,
    AbsolutePath,
    DotDot,
    /// `a//b`, `a/./b`, a NUL, not UTF-8, a trailing `/` on a non-directory.
    NonCanonicalName,
    /// A member would be written, linked or deleted through a symlink (umoci's
    /// CVE-2021-29136 wrote through a symlink named `.`).
    SymlinkInPath,
    /// A member's parent exists and is not a directory.
    ParentNotDirectory,
    /// The root (`.`) given as anything but a directory.
    RootNotDirectory,
    /// The same path twice in one layer (not two directories).
    Duplicate,
    DeviceNode,
    Fifo,
    /// Another typeflag: contiguous files, GNU sparse files, PAX global headers, unknown.
    EntryType,
    /// A regular file with the setuid or setgid bit.
    Setuid,
    /// A file capability (`security.capability` xattr): a privilege, like setuid.
    FileCapability,
    /// A PAX record that is neither applied nor known to be harmless to ignore.
    PaxRecord,
    /// A hard link whose target is absolute or climbs out with `..`.
    HardlinkOutside,
    /// A hard link to a path that is not in the tree built so far.
    HardlinkTargetMissing,
    HardlinkToDirectory,
    /// AUFS metadata (`.wh..wh.*` other than the opaque marker).
    AufsMetadata,
    /// A size, count or length over the limits.
    Limit,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::BlobDigest => "blob_digest",
            Self::BlobSize => "blob_size",
            Self::DiffId => "diff_id",
            Self::MediaType => "media_type",
            Self::Decompress => "decompress",
            Self::Header => "header",
            Self::Truncated => "truncated",
            Self::TrailingData => "trailing_data",
            Self::AbsolutePath => "absolute_path",
            Self::DotDot => "dot_dot",
            Self::NonCanonicalName => "non_canonical_name",
            Self::SymlinkInPath => "symlink_in_path",
            Self::ParentNotDirectory => "parent_not_directory",
            Self::RootNotDirectory => "root_not_directory",
            Self::Duplicate => "duplicate",
            Self::DeviceNode => "device_node",
            Self::Fifo => "fifo",
            Self::EntryType => "entry_type",
            Self::Setuid => "setuid",
            Self::FileCapability => "file_capability",
            Self::PaxRecord => "pax_record",
            Self::HardlinkOutside => "hardlink_outside",
            Self::HardlinkTargetMissing => "hardlink_target_missing",
            Self::HardlinkToDirectory => "hardlink_to_directory",
            Self::AufsMetadata => "aufs_metadata",
            Self::Limit => "limit",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(self.as_str())
    }
}

/// An image refused: which rule, where (the layer's digest, the tar member's path, or the
/// document), and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub rule: Rule,
    /// The layer (compressed blob digest) the rule was broken in.
    pub layer: Option<ImageDigest>,
    /// The tar member's path as the layer spells it, or the document (`manifest`,
    /// `config`, `index.json`, ...).
    pub member: Option<String>,
    pub detail: String,
}

impl Refusal {
    pub fn new(rule: Rule, member: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            rule,
            layer: None,
            member,
            detail: detail.into(),
        }
    }

    /// A document (manifest, index, config, a layout's own files) that is not valid.
    pub fn document(document: &str, detail: impl Into<String>) -> Self {
        Self::new(Rule::Document, Some(document.to_owned()), detail)
    }

    pub(super) fn in_layer(mut self, layer: &ImageDigest) -> Self {
        self.layer = Some(layer.clone());
        self
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(out, "refused by rule {}", self.rule)?;
        if let Some(layer) = &self.layer {
            write!(out, " in layer {layer}")?;
        }
        if let Some(member) = &self.member {
            write!(out, " at `{member}`")?;
        }
        write!(out, ": {}", self.detail)
    }
}

/// Why `image pull` or `image import` stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// `image` names the image: its manifest digest, or where it was read.
    #[error("image {image}")]
    Refused {
        image: String,
        #[source]
        refusal: Refusal,
    },
    /// The request names nothing usable (a bad reference, no such tag in a layout, ...).
    #[error("{0}")]
    Usage(String),
    #[error("failed to read {path}")]
    ReadSource {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("registry")]
    Registry(#[source] RegistryError),
    #[error("--registry-ca")]
    RegistryCa(#[source] hermetic_registry::ClientError),
    #[error("registry credentials")]
    Credentials(#[source] hermetic_registry::ClientError),
    #[error("image store")]
    Store(#[source] StoreError),
    #[error("the assembled tree")]
    Finish(#[source] super::layer::FinishError),
    #[error("failed to write `{path}` into the image being assembled")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// Whether the image itself is to blame (exit 4), rather than the request (2) or this
    /// machine, the network or the registry's availability (5).
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Refused { .. } => true,
            // Bytes that fail a check are the image's fault wherever they came from.
            Self::Registry(error) => matches!(
                error.kind(),
                ErrorKind::DigestMismatch { .. }
                    | ErrorKind::TooLong { .. }
                    | ErrorKind::Truncated { .. }
                    | ErrorKind::ManifestTooLarge { .. }
                    | ErrorKind::UnexpectedMediaType { .. }
                    | ErrorKind::InvalidManifest(_)
                    | ErrorKind::UnsupportedDigest { .. }
            ),
            _ => false,
        }
    }

    pub fn is_usage(&self) -> bool {
        match self {
            Self::Usage(_) | Self::RegistryCa(_) => true,
            Self::Registry(error) => error.is_not_found(),
            _ => false,
        }
    }

    /// The refusal, when the image was refused by one of the unpacker's rules.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}
