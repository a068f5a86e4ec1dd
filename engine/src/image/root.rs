//! A stored image as a build's root (`image = "REF@sha256:..."` in a profile, `--image`):
//! the reference checked to be pinned, the image held in the store for the whole build,
//! and what its config asks of the environment (`sandbox::plan` applies it, and
//! `sandbox::shim` says whether the variation shim loads in the tree).
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
    Ok(HeldImage {
        pinned,
        in_use,
        env,
        working_dir,
    })
}

/// The image a build or run uses, held: `flag` (`--image`, a request's `image`) over the
/// profile's `image` root; None when neither names one.
pub fn hold_for(
    flag: Option<&str>,
    profile_image: Option<&str>,
) -> Result<Option<HeldImage>, UseError> {
    match flag.or(profile_image) {
        Some(reference) => hold(&state_dir(), reference).map(Some),
        None => Ok(None),
    }
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
}
