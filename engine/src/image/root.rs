//! A stored image as a build's root (`image = "REF@sha256:..."` in a profile, `--image`):
//! the reference checked to be pinned, the image held in the store for the whole build,
//! what its config asks of the environment, and whether the variation shim can load in it.
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use super::reference::ImageDigest;
use super::store::{InUse, Store, StoreError};

/// The state directory whose image store builds use, when this process was told one
/// (`set_state_dir`); else [`crate::dirs::default_state_dir`].
static STATE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Names the state directory whose `images/` builds and runs of this process take their
/// images from: the CLI's `--state-dir` (or its config's), the daemon's own. The first
/// call wins; a process has one image store.
pub fn set_state_dir(dir: PathBuf) {
    let _ = STATE_DIR.set(dir);
}

/// The state directory builds of this process take their images from.
pub fn state_dir() -> PathBuf {
    STATE_DIR
        .get()
        .cloned()
        .unwrap_or_else(crate::dirs::default_state_dir)
}

#[derive(Debug, thiserror::Error)]
pub enum UseError {
    #[error("image `{reference}` is not pinned: name it `REF@sha256:<manifest digest>`{hint}")]
    Unpinned { reference: String, hint: String },
    #[error("image `{reference}`")]
    BadDigest {
        reference: String,
        #[source]
        source: super::reference::DigestError,
    },
    #[error(
        "image {reference} is not in the image store at {store}: fetch it first with \
         `hermetic image pull {reference}` or `hermetic image import PATH` (builds never pull)"
    )]
    NotStored { reference: String, store: PathBuf },
    #[error("image {reference}")]
    Store {
        reference: String,
        #[source]
        source: StoreError,
    },
    #[error("image {reference}: config.json is not an image config")]
    Config {
        reference: String,
        #[source]
        source: serde_json::Error,
    },
}

impl UseError {
    /// Whether the request is to blame (a usage error, exit 2): a reference that is not
    /// pinned, or names an image this machine does not have.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Unpinned { .. } | Self::BadDigest { .. } | Self::NotStored { .. }
        )
    }
}

/// `REF@sha256:<hex>`: what a build names an image by. `REF` is for people (the report
/// repeats it); the digest alone picks the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRef {
    pub reference: String,
    pub digest: ImageDigest,
}

impl PinnedRef {
    /// Parses a pinned reference; a tag without a digest is refused with the digest to pin
    /// when `store` holds an image first stored under that name.
    pub fn parse(input: &str, store: Option<&Store>) -> Result<Self, UseError> {
        let Some((name, digest)) = input.rsplit_once('@') else {
            return Err(UseError::Unpinned {
                reference: input.to_owned(),
                hint: pin_hint(input, store),
            });
        };
        let digest = ImageDigest::parse(digest).map_err(|source| UseError::BadDigest {
            reference: input.to_owned(),
            source,
        })?;
        if name.is_empty() {
            return Err(UseError::Unpinned {
                reference: input.to_owned(),
                hint: " (a name goes before the @: it is what reports show)".to_owned(),
            });
        }
        Ok(Self {
            reference: input.to_owned(),
            digest,
        })
    }
}

/// The digests stored under the name `reference`, as the message of a refused tag says.
fn pin_hint(reference: &str, store: Option<&Store>) -> String {
    let stored: Vec<String> = store
        .and_then(|store| store.list().ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|record| record.resolution.reference == reference)
        .map(|record| format!("{reference}@{}", record.digest))
        .collect();
    match stored.as_slice() {
        [] => format!(
            " (`hermetic image pull {reference}` or `hermetic image import` prints the digest)"
        ),
        [one] => format!("; it is stored as {one}"),
        many => format!("; stored under that name: {}", many.join(", ")),
    }
}

/// An image held for a build: `image rm` refuses it until this is dropped.
pub struct HeldImage {
    pub pinned: PinnedRef,
    in_use: InUse,
    /// The config's `Env`, as `NAME=VALUE` pairs.
    pub env: Vec<(String, String)>,
    /// The config's `WorkingDir`, when it names an absolute directory.
    pub working_dir: Option<PathBuf>,
    /// Whether the variation shim (built against glibc) can be loaded in this image.
    pub shim_loads: bool,
}

impl HeldImage {
    /// The tree bound as the build's `/`.
    pub fn tree(&self) -> &Path {
        &self.in_use.tree
    }
}

/// The part of an image config a build applies (`config.Env`, `config.WorkingDir`).
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize)]
struct RunConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
}

/// Holds the image `reference` names in the store of `state_dir` (a shared lock, waiting
/// while it is being imported) and reads what a build needs from it.
pub fn hold(state_dir: &Path, reference: &str) -> Result<HeldImage, UseError> {
    let store = Store::open(state_dir).map_err(|source| UseError::Store {
        reference: reference.to_owned(),
        source,
    })?;
    let pinned = PinnedRef::parse(reference, Some(&store))?;
    let in_use = match store.acquire(&pinned.digest) {
        Ok(in_use) => in_use,
        Err(StoreError::NotFound { .. }) => {
            return Err(UseError::NotStored {
                reference: reference.to_owned(),
                store: store.dir().to_path_buf(),
            })
        }
        Err(source) => {
            return Err(UseError::Store {
                reference: reference.to_owned(),
                source,
            })
        }
    };
    let config_path = in_use
        .tree
        .parent()
        .map(|dir| dir.join("config.json"))
        .unwrap_or_default();
    let bytes = std::fs::read(&config_path).map_err(|source| UseError::Store {
        reference: reference.to_owned(),
        source: StoreError::Read {
            path: config_path.clone(),
            source,
        },
    })?;
    let config: ConfigFile = serde_json::from_slice(&bytes).map_err(|source| UseError::Config {
        reference: reference.to_owned(),
        source,
    })?;
    let run = config.config.unwrap_or(RunConfig {
        env: None,
        working_dir: None,
    });
    let env = run
        .env
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let working_dir = run
        .working_dir
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.components().all(|c| c != Component::ParentDir));
    let shim_loads = glibc_loads_shim(&in_use.tree);
    Ok(HeldImage {
        pinned,
        in_use,
        env,
        working_dir,
        shim_loads,
    })
}

/// Checks, before anything runs, that `reference` is pinned and stored in `state_dir`'s
/// store (the CLI's early usage check; the build holds it again for its whole run).
pub fn check(state_dir: &Path, reference: &str) -> Result<(), UseError> {
    hold(state_dir, reference).map(drop)
}

/// The image a build or run uses, held: `flag` (`--image`, a request's `image`) over the
/// profile's `image` root; None when neither names one.
pub fn hold_for(
    flag: Option<&str>,
    profile: &crate::sandbox::profile::Profile,
) -> Result<Option<HeldImage>, UseError> {
    let reference = match (flag, &profile.root) {
        (Some(reference), _) => reference,
        (None, crate::sandbox::profile::RootSource::Image { reference }) => reference.as_str(),
        (None, _) => return Ok(None),
    };
    hold(&state_dir(), reference).map(Some)
}

/// Where glibc's dynamic loader and libc are on x86_64 (FHS, Debian's multiarch, Fedora's
/// lib64).
const LOADER: &str = "lib64/ld-linux-x86-64.so.2";
const LIBC_PATHS: &[&str] = &[
    "lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "lib64/libc.so.6",
    "usr/lib64/libc.so.6",
];

/// Whether the shim can be preloaded in the image at `tree`: it has glibc's x86_64 loader,
/// and a libc.so.6 that defines every symbol version the shim was linked against (a musl
/// or static image has neither; an older glibc lacks the newest version).
pub fn glibc_loads_shim(tree: &Path) -> bool {
    if resolve_in(tree, Path::new(LOADER)).is_none() {
        return false;
    }
    let needed = crate::sandbox::shim::glibc_versions_needed();
    LIBC_PATHS
        .iter()
        .filter_map(|path| resolve_in(tree, Path::new(path)))
        .filter_map(|libc| std::fs::read(libc).ok())
        .any(|bytes| {
            needed.iter().all(|version| {
                let mut wanted = version.as_bytes().to_vec();
                wanted.push(0);
                bytes.windows(wanted.len()).any(|window| window == wanted)
            })
        })
}

/// The regular file `path` names inside `root`, following symlinks as the sandbox would
/// (an absolute target is relative to `root`, `..` stops at it); None when it is not one.
fn resolve_in(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(next) = pending.pop() {
        let mut components: Vec<_> = next.components().collect();
        components.reverse();
        while let Some(component) = components.pop() {
            match component {
                Component::RootDir => resolved = PathBuf::new(),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let candidate = resolved.join(name);
                    let meta = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
                    if meta.file_type().is_symlink() {
                        hops += 1;
                        if hops > 40 {
                            return None;
                        }
                        let target = std::fs::read_link(root.join(&candidate)).ok()?;
                        let rest: PathBuf = components.iter().rev().collect();
                        components.clear();
                        pending.push(rest);
                        pending.push(target);
                        break;
                    }
                    resolved = candidate;
                }
            }
        }
    }
    let full = root.join(&resolved);
    let is_file = std::fs::metadata(&full).ok()?.is_file();
    (is_file && !resolved.as_os_str().is_empty()).then_some(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reference_with_a_sha256_digest_is_pinned() {
        let hex = "a".repeat(64);
        let pinned = PinnedRef::parse(&format!("tools:1@sha256:{hex}"), None).unwrap();
        assert_eq!(pinned.digest.hex(), hex);
        assert_eq!(pinned.reference, format!("tools:1@sha256:{hex}"));
        for refused in [
            "tools:1",
            "registry.example/tools",
            &format!("@sha256:{hex}"),
        ] {
            assert!(
                matches!(
                    PinnedRef::parse(refused, None),
                    Err(UseError::Unpinned { .. })
                ),
                "{refused}"
            );
        }
        assert!(matches!(
            PinnedRef::parse("tools@sha256:abc", None),
            Err(UseError::BadDigest { .. })
        ));
    }

    #[test]
    fn symlinks_resolve_inside_the_tree_and_never_above_it() {
        let root = tempfile::tempdir().unwrap();
        let tree = root.path().join("tree");
        std::fs::create_dir_all(tree.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(tree.join("usr/lib/x86_64-linux-gnu/ld.so"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", tree.join("lib")).unwrap();
        std::fs::create_dir(tree.join("lib64")).unwrap();
        std::os::unix::fs::symlink(
            "/lib/x86_64-linux-gnu/ld.so",
            tree.join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        assert_eq!(
            resolve_in(&tree, Path::new(LOADER)),
            Some(tree.join("usr/lib/x86_64-linux-gnu/ld.so"))
        );
        // A file beside the tree is not reachable through `..` or an absolute link.
        std::fs::write(root.path().join("outside"), b"x").unwrap();
        std::os::unix::fs::symlink("../../outside", tree.join("up")).unwrap();
        std::os::unix::fs::symlink("/../outside", tree.join("abs")).unwrap();
        assert_eq!(resolve_in(&tree, Path::new("up")), None);
        assert_eq!(resolve_in(&tree, Path::new("abs")), None);
    }

    #[test]
    fn the_host_glibc_loads_the_shim_and_a_tree_without_glibc_does_not() {
        assert!(
            glibc_loads_shim(Path::new("/")),
            "the host's glibc built the shim"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(!glibc_loads_shim(empty.path()));
    }
}
