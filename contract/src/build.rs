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
    /// Build inside this image instead of the profile's root: `REF@sha256:<manifest
    /// digest>`, never a bare tag (docs/images.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Use the signed cache; absent: no cache. Boxed: most requests have none.
    #[serde(default)]
    pub cache: Option<Box<CacheOptions>>,
}

/// How a build uses the cache (docs/cache-format.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
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
    /// Share the cache through an OCI registry; absent: the local store alone (and the
    /// request's JSON is what it was before the remote cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteCacheOptions>,
}

/// What `--cache-remote-timeout` is when neither the flag nor the config says.
pub const DEFAULT_REMOTE_TIMEOUT_SECS: u64 = 5;

/// The remote cache on an OCI registry (docs/cache-format.md §Remote cache).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteCacheOptions {
    /// `oci://HOST[:PORT]/REPO`; a scope's entries are in the repository `REPO/SCOPE`.
    pub url: String,
    /// Push a reproducible miss (only with a signing key).
    #[serde(default)]
    pub push: bool,
    /// Bound on each registry request: connecting, waiting for an answer, and each stall
    /// of a body (a blob that keeps flowing is not cut off).
    #[serde(default = "default_remote_timeout_secs")]
    pub timeout_secs: u64,
    /// PEM certificates trusted for the registry besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_ca: Option<PathBuf>,
    /// Speak plain HTTP to a registry that is not on loopback (loopback always may).
    #[serde(default)]
    pub plain_http: bool,
}

fn default_remote_timeout_secs() -> u64 {
    DEFAULT_REMOTE_TIMEOUT_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_options() -> CacheOptions {
        CacheOptions {
            dir: "/cache".into(),
            scope: Some("main".into()),
            trust_keys: vec!["/ci.pub".into()],
            sign_key: Some("/ci.key".into()),
            state_dir: Some("/state".into()),
            require: true,
            single_run: false,
            remote: None,
        }
    }

    #[test]
    fn options_without_a_remote_are_written_as_before_the_remote_cache() {
        let json = serde_json::to_string(&local_options()).unwrap();
        assert_eq!(
            json,
            r#"{"dir":"/cache","scope":"main","trust_keys":["/ci.pub"],"sign_key":"/ci.key","state_dir":"/state","require":true,"single_run":false}"#
        );
        let read: CacheOptions = serde_json::from_str(&json).unwrap();
        assert_eq!(read.remote, None);
    }

    #[test]
    fn remote_options_read_back_and_default_their_timeout() {
        let options = CacheOptions {
            remote: Some(RemoteCacheOptions {
                url: "oci://registry.example:5000/ci/cache".into(),
                push: true,
                timeout_secs: 9,
                registry_ca: Some("/ca.pem".into()),
                plain_http: true,
            }),
            ..local_options()
        };
        let json = serde_json::to_string(&options).unwrap();
        let read: CacheOptions = serde_json::from_str(&json).unwrap();
        assert_eq!(read.remote, options.remote);

        let minimal: RemoteCacheOptions =
            serde_json::from_str(r#"{"url":"oci://127.0.0.1:5000/cache"}"#).unwrap();
        assert_eq!(
            minimal,
            RemoteCacheOptions {
                url: "oci://127.0.0.1:5000/cache".into(),
                push: false,
                timeout_secs: DEFAULT_REMOTE_TIMEOUT_SECS,
                registry_ca: None,
                plain_http: false,
            }
        );
        assert!(serde_json::from_str::<RemoteCacheOptions>(
            r#"{"url":"oci://127.0.0.1:5000/cache","insecure":true}"#
        )
        .is_err());
    }
}
