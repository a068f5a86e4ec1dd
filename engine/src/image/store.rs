//! The image store (`hermetic.images/v1`), `<state-dir>/images/`:
//!
//! ```text
//! VERSION                    hermetic.images/v1
//! sha256/<hex>/              one image, named by its manifest digest, never written again
//!   image.json               the record (ImageRecord)
//!   manifest.json            the manifest's exact bytes (for a docker-archive, the OCI
//!                            manifest hermetic derived; see docs/images.md)
//!   config.json              the config's exact bytes
//!   tree.json                the tree's manifest (hermetic.image-tree/v1)
//!   rootfs/                  the tree: what a build binds as `/` (`tree`)
//! locks/<hex>.lock           the image's lock (never removed, so every process that
//!                            opens it locks the same file)
//! tmp/                       images being assembled or removed
//! ```
//!
//! Locks (flock on `locks/<hex>.lock`): whoever uses an image (a build, `image verify`)
//! holds it shared ([`Store::acquire`]) for as long as it reads the tree; an import of
//! the image holds it exclusive while it looks for the image and assembles it, so
//! concurrent imports of one image make one copy and a build that wants it waits for
//! it; `image rm` only tries for it exclusive and refuses while anyone uses the image.
//! An image is assembled in `tmp/import-<hex>-*` and appears whole by one rename; a
//! removed one disappears by one rename to `tmp/remove-<hex>-*` before it is deleted.
//! Leftovers of an interrupted import or removal of an image are deleted by the next one
//! that holds its lock, so they cannot be anybody's work in progress.
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::fs::remove_tree;
use super::reference::{ImageDigest, Resolution};
use super::tree::{Difference, ScanError, TreeManifest};
use crate::sys::archive::{self as sys, DirFd};

pub const STORE_VERSION: &str = "hermetic.images/v1";
const RECORD: &str = "image.json";
const MANIFEST: &str = "manifest.json";
const CONFIG: &str = "config.json";
const TREE: &str = "tree.json";
const ROOTFS: &str = "rootfs";
const IMPORT_PREFIX: &str = "import-";
const REMOVE_PREFIX: &str = "remove-";
/// The tree's root: readable and searchable by all, as `/` is.
const ROOT_MODE: u32 = 0o755;

/// Where the tree of image `digest` is (whether or not it is stored): what a build binds
/// as `/`. Hold [`Store::acquire`]'s guard while using it, so `image rm` cannot take it
/// away.
pub fn tree(state_dir: &Path, digest: &ImageDigest) -> PathBuf {
    state_dir
        .join("images/sha256")
        .join(digest.hex())
        .join(ROOTFS)
}

/// What the store knows of an image (`image.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    pub schema: String,
    /// The manifest's digest: the image's identity.
    pub digest: ImageDigest,
    pub media_type: String,
    pub config_digest: ImageDigest,
    /// `os/architecture[/variant]` from the config.
    pub platform: Option<String>,
    pub layers: Vec<LayerRecord>,
    /// BLAKE3 of `tree.json`.
    pub tree_digest: String,
    pub files: u64,
    pub bytes: u64,
    /// `registry`, `oci-layout` or `docker-archive`.
    pub source: String,
    /// What the image was first stored under, and what that resolved to.
    pub resolution: Resolution,
    pub stored_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRecord {
    pub digest: ImageDigest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: ImageDigest,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the image store at {dir}")]
    Open {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the image store at {dir} has layout {found:?}; this hermetic reads {STORE_VERSION} \
         and leaves it alone"
    )]
    Version { dir: PathBuf, found: String },
    #[error("no image {digest} in the store")]
    NotFound { digest: ImageDigest },
    #[error(
        "image {digest} is in use (a build or `image verify` holds it): try again once it is done"
    )]
    InUse { digest: ImageDigest },
    #[error("failed to lock image {digest}")]
    Lock {
        digest: ImageDigest,
        #[source]
        source: io::Error,
    },
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an image record")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The image store; see the module documentation.
pub struct Store {
    dir: PathBuf,
}

/// An image held for use: `image rm` refuses it until this is dropped.
pub struct InUse {
    _lock: Flock<File>,
    pub record: ImageRecord,
    /// The tree, `rootfs/`.
    pub tree: PathBuf,
}

/// What [`Store::begin`] found under the image's exclusive lock.
pub(super) enum Begun {
    Present(Box<ImageRecord>),
    New(Pending),
}

/// An image being assembled: its lock, and the staging directory that becomes it.
pub(super) struct Pending {
    _lock: Flock<File>,
    tmp: OwnedFd,
    name: OsString,
    path: PathBuf,
    images: OwnedFd,
    digest: ImageDigest,
    published: bool,
}

/// How `image verify` found an image.
#[derive(Debug)]
pub enum Verification {
    Verified,
    /// The stored tree, or the files that describe it, changed since it was stored.
    Differs(Difference),
    /// The tree holds something no stored image holds, or could not be read.
    Unreadable(ScanError),
}

impl Store {
    /// Opens (creating on first use) the store in `state_dir`. A store of another layout
    /// version is refused, untouched.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let dir = state_dir.join("images");
        let open_error = |source| StoreError::Open {
            dir: dir.clone(),
            source,
        };
        for sub in ["sha256", "tmp", "locks"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(open_error)?;
        }
        let version_path = dir.join("VERSION");
        let version_line = format!("{STORE_VERSION}\n");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&version_path)
        {
            Ok(mut file) => {
                io::Write::write_all(&mut file, version_line.as_bytes()).map_err(open_error)?
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                let found = std::fs::read_to_string(&version_path).map_err(open_error)?;
                // A store being created by another process may not have its line yet.
                if !found.is_empty() && found != version_line {
                    return Err(StoreError::Version {
                        dir,
                        found: found.trim_end().to_owned(),
                    });
                }
            }
            Err(err) => return Err(open_error(err)),
        }
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn image_dir(&self, digest: &ImageDigest) -> PathBuf {
        self.dir.join("sha256").join(digest.hex())
    }

    /// Where image `digest`'s tree is; see [`tree`].
    pub fn tree(&self, digest: &ImageDigest) -> PathBuf {
        self.image_dir(digest).join(ROOTFS)
    }

    /// Every stored image, by digest.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let images = self.dir.join("sha256");
        let read_error = |source| StoreError::Read {
            path: images.clone(),
            source,
        };
        let mut digests = Vec::new();
        for entry in std::fs::read_dir(&images).map_err(read_error)? {
            let name = entry.map_err(read_error)?.file_name();
            if let Some(digest) = name
                .to_str()
                .and_then(|hex| ImageDigest::parse(&format!("sha256:{hex}")).ok())
            {
                digests.push(digest);
            }
        }
        digests.sort();
        digests.iter().map(|digest| self.record(digest)).collect()
    }

    /// The record of image `digest`.
    pub fn record(&self, digest: &ImageDigest) -> Result<ImageRecord, StoreError> {
        let path = self.image_dir(digest).join(RECORD);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    digest: digest.clone(),
                })
            }
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Record { path, source })
    }

    fn lock(&self, digest: &ImageDigest, how: FlockArg) -> Result<Flock<File>, StoreError> {
        let lock_error = |source| StoreError::Lock {
            digest: digest.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(
                self.dir
                    .join("locks")
                    .join(format!("{}.lock", digest.hex())),
            )
            .map_err(lock_error)?;
        Flock::lock(file, how).map_err(|(_, errno)| match errno {
            Errno::EWOULDBLOCK => StoreError::InUse {
                digest: digest.clone(),
            },
            errno => lock_error(errno.into()),
        })
    }

    /// Holds image `digest` for use (waiting while it is being imported or removed).
    pub fn acquire(&self, digest: &ImageDigest) -> Result<InUse, StoreError> {
        let lock = self.lock(digest, FlockArg::LockShared)?;
        let record = self.record(digest)?;
        Ok(InUse {
            _lock: lock,
            record,
            tree: self.tree(digest),
        })
    }

    /// Removes image `digest`, unless something holds it.
    pub fn remove(&self, digest: &ImageDigest) -> Result<ImageRecord, StoreError> {
        let _lock = self.lock(digest, FlockArg::LockExclusiveNonblock)?;
        let record = self.record(digest)?;
        let tmp = self.open_subdir("tmp")?;
        let images = self.open_subdir("sha256")?;
        self.sweep(&tmp, digest);
        let doomed = staging_name(REMOVE_PREFIX, digest);
        sys::rename_noreplace_between(
            images.as_fd(),
            OsStr::new(digest.hex()),
            tmp.as_fd(),
            &doomed,
        )
        .map_err(|source| StoreError::Write {
            path: self.image_dir(digest),
            source,
        })?;
        remove_tree(tmp.as_fd(), &doomed).map_err(|source| StoreError::Write {
            path: self.dir.join("tmp").join(&doomed),
            source,
        })?;
        Ok(record)
    }

    /// Re-hashes the stored tree of image `digest` and compares it, and the stored
    /// manifest and config, with what was recorded when it was stored.
    pub fn verify(&self, digest: &ImageDigest) -> Result<(ImageRecord, Verification), StoreError> {
        let held = self.acquire(digest)?;
        let dir = self.image_dir(digest);
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| StoreError::Read { path, source })
        };
        let differs = |path: &str, expected: String, found: String| {
            Verification::Differs(Difference {
                path: path.to_owned(),
                field: "content",
                expected,
                found,
            })
        };
        let record = held.record.clone();
        let manifest = ImageDigest::of(&read(MANIFEST)?);
        if manifest != record.digest {
            return Ok((
                record.clone(),
                differs(MANIFEST, record.digest.to_string(), manifest.to_string()),
            ));
        }
        let config = ImageDigest::of(&read(CONFIG)?);
        if config != record.config_digest {
            let expected = record.config_digest.to_string();
            return Ok((record, differs(CONFIG, expected, config.to_string())));
        }
        let tree_bytes = read(TREE)?;
        let tree_digest = format!("blake3:{}", blake3::hash(&tree_bytes).to_hex());
        if tree_digest != record.tree_digest {
            let expected = record.tree_digest.clone();
            return Ok((record, differs(TREE, expected, tree_digest)));
        }
        let recorded: TreeManifest =
            serde_json::from_slice(&tree_bytes).map_err(|source| StoreError::Record {
                path: dir.join(TREE),
                source,
            })?;
        let root = sys::open_dir(&held.tree).map_err(|source| StoreError::Read {
            path: held.tree.clone(),
            source,
        })?;
        let found = match TreeManifest::scan(root.as_fd(), &|_, stat| stat.mode) {
            Ok(found) => found,
            Err(error) => return Ok((record, Verification::Unreadable(error))),
        };
        let verdict = match recorded.first_difference(&found) {
            None => Verification::Verified,
            Some(difference) => Verification::Differs(Difference {
                path: format!("{ROOTFS}/{}", difference.path),
                ..difference
            }),
        };
        Ok((record, verdict))
    }

    /// Takes image `digest`'s exclusive lock (waiting for whoever holds it) and says
    /// whether it is stored; when it is not, a staging directory is ready for it.
    pub(super) fn begin(&self, digest: &ImageDigest) -> Result<Begun, StoreError> {
        let lock = self.lock(digest, FlockArg::LockExclusive)?;
        match self.record(digest) {
            Ok(record) => return Ok(Begun::Present(Box::new(record))),
            Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        let tmp = self.open_subdir("tmp")?;
        let images = self.open_subdir("sha256")?;
        self.sweep(&tmp, digest);
        let name = staging_name(IMPORT_PREFIX, digest);
        let path = self.dir.join("tmp").join(&name);
        let write_error = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let staging = sys::create_dir_at(tmp.as_fd(), name.to_str().unwrap_or_default(), 0o700)
            .map_err(write_error)?;
        sys::create_dir_at(staging.as_fd(), ROOTFS, ROOT_MODE).map_err(write_error)?;
        Ok(Begun::New(Pending {
            _lock: lock,
            tmp,
            name,
            path,
            images,
            digest: digest.clone(),
            published: false,
        }))
    }

    fn open_subdir(&self, name: &str) -> Result<OwnedFd, StoreError> {
        let path = self.dir.join(name);
        sys::open_dir(&path).map_err(|source| StoreError::Open { dir: path, source })
    }

    /// Deletes what an interrupted import or removal of `digest` left in `tmp/`: the
    /// caller holds its exclusive lock, so nobody is working on it.
    fn sweep(&self, tmp: &OwnedFd, digest: &ImageDigest) {
        let Ok(names) = DirFd::open_beneath(tmp.as_fd(), ".").and_then(|mut dir| dir.names())
        else {
            return;
        };
        let ours = |name: &str, prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(&format!("{}-", digest.hex())))
        };
        for name in names {
            let text = name.to_string_lossy();
            if ours(&text, IMPORT_PREFIX) || ours(&text, REMOVE_PREFIX) {
                if let Err(error) = remove_tree(tmp.as_fd(), &name) {
                    tracing::warn!(leftover = %text, %error, "failed to remove a leftover of the image store");
                }
            }
        }
    }
}

impl Pending {
    /// The staging directory: `rootfs/` is the tree being assembled, and the rest is the
    /// import's scratch space until it is published.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn rootfs(&self) -> io::Result<OwnedFd> {
        sys::open_dir(&self.path.join(ROOTFS))
    }

    /// Writes the record and the documents beside the tree, then renames the staging
    /// directory into place.
    pub(super) fn publish(
        mut self,
        record: &ImageRecord,
        manifest: &[u8],
        config: &[u8],
        tree: &TreeManifest,
    ) -> Result<(), StoreError> {
        let record_bytes = serde_json::to_vec_pretty(record).expect("an image record serializes");
        for (name, bytes) in [
            (MANIFEST, manifest),
            (CONFIG, config),
            (TREE, &tree.to_json()[..]),
            (RECORD, &record_bytes[..]),
        ] {
            let path = self.path.join(name);
            std::fs::write(&path, bytes).map_err(|source| StoreError::Write { path, source })?;
        }
        sys::set_mode(
            sys::open_dir(&self.path)
                .map_err(|source| self.write_error(source))?
                .as_fd(),
            ROOT_MODE,
        )
        .map_err(|source| self.write_error(source))?;
        sys::rename_noreplace_between(
            self.tmp.as_fd(),
            &self.name,
            self.images.as_fd(),
            OsStr::new(self.digest.hex()),
        )
        .map_err(|source| self.write_error(source))?;
        self.published = true;
        Ok(())
    }

    fn write_error(&self, source: io::Error) -> StoreError {
        StoreError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for Pending {
    /// An image not published (refused, or failed) leaves nothing behind.
    fn drop(&mut self) {
        if !self.published {
            if let Err(error) = remove_tree(self.tmp.as_fd(), &self.name) {
                tracing::error!(staging = %self.path.display(), %error, "failed to remove the staging directory of an image not stored");
            }
        }
    }
}

/// `<prefix><hex>-<pid>-<n>`: unique among this process's and others' work on the image.
fn staging_name(prefix: &str, digest: &ImageDigest) -> OsString {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}-{}-{}",
        digest.hex(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
    .into()
}
