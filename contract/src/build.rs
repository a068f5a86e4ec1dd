//! What a build is asked to do: `hermetic build`'s request, as the CLI hands it to the
//! engine and as a daemon job carries it.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What to build and how.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BuildRequest {
    /// Profile name or path.
    pub profile: String,
    pub src: PathBuf,
    /// Output paths relative to the build dir; empty means `out`.
    pub outputs: Vec<String>,
    pub artifact: PathBuf,
    pub extract: Option<PathBuf>,
    pub single: bool,
    pub explain: bool,
    pub source_date_epoch: Option<u64>,
    pub command: Vec<String>,
    /// Use the signed cache; absent: no cache. Boxed: most requests have none.
    #[serde(default)]
    pub cache: Option<Box<CacheOptions>>,
}

/// How a build uses the cache (docs/cache-format.md).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheOptions {
    /// The cache directory.
    pub dir: PathBuf,
    /// The scope read and written; `local` when absent.
    #[serde(default)]
    pub scope: Option<String>,
    /// Public keys trusted for restores (besides the embedded local key, see
    /// the engine's `cache::trust`).
    #[serde(default)]
    pub trust_keys: Vec<PathBuf>,
    /// Private key that signs new entries (password from HERMETIC_PASSWORD or
    /// COSIGN_PASSWORD); the embedded local key when absent.
    #[serde(default)]
    pub sign_key: Option<PathBuf>,
    /// Where the embedded local key lives; the daemon's default state dir when absent.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// A miss fails the build (exit 4) instead of building.
    #[serde(default)]
    pub require: bool,
    /// Store single-run results too (marked `singleRun`); only `--single` builds use them.
    #[serde(default)]
    pub single_run: bool,
}
