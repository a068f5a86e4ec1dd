//! The cache key: a digest over everything that decides a build's output.
//!
//! Two builds with the same key must produce the same archive, so the key covers the
//! source tree, the command, the outputs, the profile file and seccomp policy bytes, the
//! toolchain (an image's manifest digest, a rootfs's tree digest, or the host's OS release
//! and package database), the
//! pinned environment and identity, SOURCE_DATE_EPOCH, and the versions of every format and
//! of hermetic itself. What does not decide the output (limits, the cgroup placement, the
//! varied run's variation) stays out, so it does not split the cache.
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::archive::manifest::MANIFEST_SCHEMA;
use crate::digest::sha256_hex;
use crate::sandbox::plan::Plan;
use crate::sandbox::profile::Profile;
use crate::sandbox::spec::SPEC_VERSION;

/// Version of the key derivation. Changelog (bump on any change to [`KeyInputs`] or to
/// how the digest is taken, so old entries simply stop matching):
/// - `hermetic.cache-key/v1`: first version. Later, without a new name: the toolchain
///   `image` (no key made before it had one, so none changes).
pub const CACHE_KEY_SCHEMA: &str = "hermetic.cache-key/v1";

/// Host files whose bytes stand for the host toolchain: the OS release and the package
/// database, which changes whenever a package is installed, upgraded or removed.
const HOST_IDENTITY_FILES: [&str; 2] = ["/usr/lib/os-release", "/var/lib/dpkg/status"];

/// A cache key: lowercase hex SHA-256 of the canonical JSON of [`KeyInputs`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    /// Accepts 64 lowercase hex digits, the only form a key has (it names a directory).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(KeyError::Malformed {
                found: text.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the key is derived from, in the order it is serialised. It is also stored in
/// the signed entry, so `hermetic cache show` can say what an entry was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyInputs {
    /// [`CACHE_KEY_SCHEMA`].
    pub schema: String,
    /// hermetic's own version: the sandbox and the packer shape the output too.
    pub hermetic_version: String,
    pub spec_version: u32,
    pub manifest_schema: String,
    /// [`crate::sandbox::plan::tree_digest`] of the source, or `none` without a source.
    pub source_blake3: String,
    pub command: Vec<String>,
    /// Output paths, sorted and deduplicated (their order does not change the archive).
    pub outputs: Vec<String>,
    /// SHA-256 of the profile file's bytes.
    pub profile_sha256: String,
    /// SHA-256 of the seccomp policy's JSON bytes.
    pub seccomp_sha256: String,
    pub toolchain: Toolchain,
    /// The build's whole environment (pinned; includes SOURCE_DATE_EPOCH).
    pub env: Vec<(String, String)>,
    pub source_date_epoch: u64,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub hostname: String,
    pub build_dir: String,
    pub umask: u32,
    /// Visible CPU count (builds may size their parallelism or output by it).
    pub cpus: usize,
    pub landlock_abi: u8,
    pub zstd_level: i32,
}

/// What stands for the tools a build runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Toolchain {
    /// A stored image: its manifest digest, which fixes every byte of its tree (no host
    /// file counts), so runners on different hosts share keys for the same image.
    #[serde(rename_all = "camelCase")]
    Image { digest: String },
    /// A profile with its own rootfs: its full tree digest.
    #[serde(rename_all = "camelCase")]
    Rootfs { blake3: String },
    /// The host's /usr: the SHA-256 of each of [`HOST_IDENTITY_FILES`] (`absent` when
    /// missing). A change made to /usr outside the package manager is not seen; profiles
    /// that need that guarantee use a rootfs.
    #[serde(rename_all = "camelCase")]
    Host { files: Vec<(String, String)> },
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to compute the digest of the source {path}: {message}")]
    SourceDigest {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("failed to read toolchain identity file {path}")]
    Toolchain {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{found}` is not a cache key (64 lowercase hex digits)")]
    Malformed { found: String },
}

impl KeyInputs {
    /// The inputs of a planned build; `outputs` as the request gave them.
    pub fn of_plan(
        profile: &Profile,
        plan: &Plan,
        outputs: &[String],
        zstd_level: i32,
    ) -> Result<Self, KeyError> {
        let spec = &plan.spec;
        let source_blake3 = match &spec.source {
            Some(dir) => crate::sandbox::plan::tree_digest(dir, &[]).map_err(|message| {
                KeyError::SourceDigest {
                    path: dir.clone(),
                    message,
                }
            })?,
            None => "none".to_owned(),
        };
        let toolchain = match (&plan.image, &plan.rootfs_blake3) {
            (Some(image), _) => Toolchain::Image {
                digest: image.digest.clone(),
            },
            (None, Some(blake3)) => Toolchain::Rootfs {
                blake3: blake3.clone(),
            },
            (None, None) => host_toolchain()?,
        };
        let mut outputs: Vec<String> = if outputs.is_empty() {
            vec!["out".to_owned()]
        } else {
            outputs.to_vec()
        };
        outputs.sort();
        outputs.dedup();
        Ok(Self {
            schema: CACHE_KEY_SCHEMA.to_owned(),
            hermetic_version: env!("CARGO_PKG_VERSION").to_owned(),
            spec_version: SPEC_VERSION,
            manifest_schema: MANIFEST_SCHEMA.to_owned(),
            source_blake3,
            command: spec.command.clone(),
            outputs,
            profile_sha256: profile.sha256.clone(),
            seccomp_sha256: spec.seccomp.sha256.clone(),
            toolchain,
            env: spec.env.clone(),
            source_date_epoch: plan.epoch,
            uid: spec.identity.uid,
            gid: spec.identity.gid,
            user: spec.identity.user.clone(),
            hostname: spec.identity.hostname.clone(),
            build_dir: spec.paths.build_dir.display().to_string(),
            umask: spec.umask,
            cpus: spec.cpu_set.len(),
            landlock_abi: spec.landlock_abi,
            zstd_level,
        })
    }

    /// The key: SHA-256 of the inputs' compact JSON (fields in declaration order, which is
    /// what makes the encoding canonical).
    pub fn key(&self) -> CacheKey {
        let json = serde_json::to_vec(self).expect("key inputs serialise");
        CacheKey(sha256_hex(&json))
    }
}

/// The host toolchain's identity. Its files' digests are remembered per process with
/// what identifies their version (device, inode, size, modification time to the
/// nanosecond): the package database is hundreds of kilobytes, hashed again for every key
/// otherwise (every case of a drill, every cached build of a daemon), and a package
/// manager replaces it by rename, a new inode.
fn host_toolchain() -> Result<Toolchain, KeyError> {
    type Stamp = Option<(u64, u64, u64, i64, i64)>;
    static REMEMBERED: std::sync::Mutex<Vec<(&'static str, Stamp, String)>> =
        std::sync::Mutex::new(Vec::new());
    let stamp = |path: &str| -> Stamp {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|meta| {
            (
                meta.dev(),
                meta.ino(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
            )
        })
    };
    let mut files = Vec::new();
    for path in HOST_IDENTITY_FILES {
        let before = stamp(path);
        let remembered = REMEMBERED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(known, known_stamp, _)| *known == path && *known_stamp == before)
            .map(|(_, _, digest)| digest.clone());
        let digest = match remembered {
            Some(digest) => digest,
            None => {
                let digest = match std::fs::read(Path::new(path)) {
                    Ok(bytes) => sha256_hex(&bytes),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => "absent".to_owned(),
                    Err(source) => {
                        return Err(KeyError::Toolchain {
                            path: path.to_owned(),
                            source,
                        })
                    }
                };
                // Remembered only when the file did not change while it was read.
                if before.is_some() && stamp(path) == before {
                    let mut remembered = REMEMBERED
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    remembered.retain(|(known, _, _)| *known != path);
                    remembered.push((path, before, digest.clone()));
                }
                digest
            }
        };
        files.push((path.to_owned(), digest));
    }
    Ok(Toolchain::Host { files })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Inputs for tests that need a key but no build.
    pub(crate) fn sample_inputs(command: &str) -> KeyInputs {
        KeyInputs {
            schema: CACHE_KEY_SCHEMA.to_owned(),
            hermetic_version: "0.0.0".to_owned(),
            spec_version: 1,
            manifest_schema: MANIFEST_SCHEMA.to_owned(),
            source_blake3: "00".repeat(32),
            command: vec!["sh".to_owned(), "-c".to_owned(), command.to_owned()],
            outputs: vec!["out".to_owned()],
            profile_sha256: "11".repeat(32),
            seccomp_sha256: "22".repeat(32),
            toolchain: Toolchain::Host {
                files: vec![("/usr/lib/os-release".to_owned(), "33".repeat(32))],
            },
            env: vec![("SOURCE_DATE_EPOCH".to_owned(), "315532800".to_owned())],
            source_date_epoch: 315_532_800,
            uid: 1000,
            gid: 1000,
            user: "build".to_owned(),
            hostname: "hermetic".to_owned(),
            build_dir: "/build".to_owned(),
            umask: 0o022,
            cpus: 2,
            landlock_abi: 6,
            zstd_level: 3,
        }
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = sample_inputs("make");
        let key = base.key();
        assert_eq!(key.as_str().len(), 64);
        assert_eq!(key, sample_inputs("make").key(), "the key is deterministic");
        let variants: Vec<fn(&mut KeyInputs)> = vec![
            |i| i.source_blake3 = "01".repeat(32),
            |i| i.command.push("x".into()),
            |i| i.outputs = vec!["dist".into()],
            |i| i.profile_sha256 = "12".repeat(32),
            |i| i.seccomp_sha256 = "23".repeat(32),
            |i| {
                i.toolchain = Toolchain::Rootfs {
                    blake3: "44".repeat(32),
                }
            },
            |i| {
                i.toolchain = Toolchain::Image {
                    digest: format!("sha256:{}", "55".repeat(32)),
                }
            },
            |i| i.env.push(("TZ".into(), "UTC".into())),
            |i| i.source_date_epoch += 1,
            |i| i.cpus = 1,
            |i| i.schema = "hermetic.cache-key/v2".into(),
            |i| i.hermetic_version = "0.0.1".into(),
        ];
        for (index, change) in variants.iter().enumerate() {
            let mut inputs = sample_inputs("make");
            change(&mut inputs);
            assert_ne!(inputs.key(), key, "variant {index} did not change the key");
        }
    }

    #[test]
    fn an_image_toolchain_is_its_manifest_digest_alone() {
        let inputs = KeyInputs {
            toolchain: Toolchain::Image {
                digest: format!("sha256:{}", "55".repeat(32)),
            },
            ..sample_inputs("make")
        };
        let json = serde_json::to_value(&inputs).unwrap();
        assert_eq!(
            json["toolchain"],
            serde_json::json!({"kind": "image", "digest": format!("sha256:{}", "55".repeat(32))})
        );
    }

    #[test]
    fn keys_parse_only_in_canonical_form() {
        let key = sample_inputs("make").key();
        assert_eq!(CacheKey::parse(key.as_str()).unwrap(), key);
        for bad in ["", "../x", &key.as_str().to_uppercase(), &key.as_str()[1..]] {
            assert!(CacheKey::parse(bad).is_err(), "{bad}");
        }
    }
}
