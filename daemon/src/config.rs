//! `hermeticd`'s configuration: the TOML file (`version = 1`), read in two stages (the raw
//! file, then validated `Config`), with defaults that depend on who runs the daemon.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The only config file version this daemon reads.
pub const CONFIG_VERSION: u32 = 1;

/// The config file as written. Unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub version: u32,
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// Group (name or number) that owns the socket; its members may connect.
    pub socket_group: Option<String>,
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    #[serde(default)]
    pub allowed_gids: Vec<u32>,
    pub max_concurrent: Option<usize>,
    pub queue_limit: Option<usize>,
    pub log_limit_bytes: Option<u64>,
    pub body_limit_bytes: Option<usize>,
    pub keep_failed: Option<bool>,
    pub shutdown_timeout_secs: Option<u64>,
    #[serde(default)]
    pub cache: CacheConfig,
}

/// `[cache]`: the signed cache every `hermetic build` and `hermetic cache` command uses
/// unless its flags say otherwise. Absolute paths.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// With it set, builds use the cache without `--cache-dir`.
    pub dir: Option<PathBuf>,
    /// The scope read and written (`--cache-scope` wins).
    pub scope: Option<String>,
    /// Keys trusted to sign entries, besides any `--trust-key`.
    #[serde(default)]
    pub trust_keys: Vec<PathBuf>,
    /// The key that signs new entries (`--sign-key` wins).
    pub sign_key: Option<PathBuf>,
    /// The remote cache, `oci://HOST[:PORT]/REPO` (`--cache-remote` wins).
    pub remote: Option<String>,
    /// Push reproducible misses to the remote cache (with `--cache-push`, either does).
    #[serde(default)]
    pub push: bool,
    /// Seconds each registry request may take (`--cache-remote-timeout` wins; default 5).
    pub remote_timeout_secs: Option<u64>,
    /// PEM certificates trusted for the registry besides the system's (`--registry-ca`
    /// wins).
    pub registry_ca: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub socket_gid: Option<u32>,
    /// Besides root and the daemon's own uid, which are always allowed. A root daemon
    /// runs their jobs' file access with their own identity (`queue::Caller`).
    pub allowed_uids: Vec<u32>,
    pub allowed_gids: Vec<u32>,
    /// Jobs running at once.
    pub max_concurrent: usize,
    /// Jobs waiting for a slot; past it a submission is refused as busy (503).
    pub queue_limit: usize,
    /// Log bytes kept per job; the rest is dropped (and the log says so).
    pub log_limit_bytes: u64,
    /// Largest request body accepted.
    pub body_limit_bytes: usize,
    /// Keep a failed job's scratch directory (`scratch/ID`: a copy of its log, and the
    /// build dir of each run whose command failed; see `sandbox::keep_failed`).
    pub keep_failed: bool,
    /// How long running jobs may take to finish on shutdown before they are killed.
    pub shutdown_timeout: Duration,
    pub cache: CacheConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read the config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse the config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("config file {path}: version {found} is not supported (expected {CONFIG_VERSION})")]
    Version { path: PathBuf, found: u32 },
    #[error("config key `socket_group`: no group named {0:?}")]
    UnknownGroup(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Names the config file when no `--config` does. The `hermetic` CLI reads the socket
/// from the same file and passes the variable on to a daemon it starts.
pub const CONFIG_ENV: &str = "HERMETIC_CONFIG";

/// The configuration in force: `path` when given, else `$HERMETIC_CONFIG`, else the
/// default file when it exists, else the built-in defaults.
pub fn load_effective(path: Option<&Path>) -> Result<Config, ConfigError> {
    if let Some(path) = path {
        return Config::load(path);
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|value| !value.is_empty()) {
        return Config::load(Path::new(&path));
    }
    match default_config_path() {
        Some(path) if path.exists() => Config::load(&path),
        _ => Ok(Config::defaults()),
    }
}

/// The config file read when none is named: `/etc/hermetic/config.toml` for root,
/// `$XDG_CONFIG_HOME/hermetic/config.toml` (or `~/.config/...`) for other users.
pub fn default_config_path() -> Option<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/etc/hermetic/config.toml"));
    }
    hermetic::dirs::env_dir("XDG_CONFIG_HOME")
        .or_else(|| hermetic::dirs::env_dir("HOME").map(|home| home.join(".config")))
        .map(|dir| dir.join("hermetic/config.toml"))
}

/// The socket when the config does not name one: `/run/hermetic/hermeticd.sock` for root,
/// `$XDG_RUNTIME_DIR/hermetic/hermeticd.sock` or `/tmp/hermetic-<uid>/hermeticd.sock`.
pub fn default_socket_path() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/hermetic/hermeticd.sock");
    }
    match hermetic::dirs::env_dir("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("hermetic/hermeticd.sock"),
        None => PathBuf::from(format!("/tmp/hermetic-{uid}/hermeticd.sock")),
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Validates config text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if file.version != CONFIG_VERSION {
            return Err(ConfigError::Version {
                path: path.to_owned(),
                found: file.version,
            });
        }
        Config::from_file(file)
    }

    /// The configuration used when there is no config file.
    pub fn defaults() -> Config {
        Config::from_file(ConfigFile {
            version: CONFIG_VERSION,
            ..ConfigFile::default()
        })
        .expect("the defaults are valid")
    }

    fn from_file(file: ConfigFile) -> Result<Config, ConfigError> {
        let positive = |key: &'static str, value: Option<usize>, default: fn() -> usize| match value
        {
            Some(0) => Err(ConfigError::Invalid {
                key,
                message: "must be at least 1".into(),
            }),
            Some(value) => Ok(value),
            None => Ok(default()),
        };
        // Counting the cores reads the CPU affinity and the cgroup's CPU quota: only when
        // the file does not say.
        let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
        let absolute = |key: &'static str, path: Option<PathBuf>| match path {
            Some(path) if !path.is_absolute() => Err(ConfigError::Invalid {
                key,
                message: format!("{} is not an absolute path", path.display()),
            }),
            other => Ok(other),
        };
        let socket_gid = match file.socket_group {
            None => None,
            Some(name) => Some(resolve_group(&name)?),
        };
        let cache = CacheConfig {
            dir: absolute("cache.dir", file.cache.dir)?,
            scope: file.cache.scope,
            trust_keys: file
                .cache
                .trust_keys
                .into_iter()
                .map(|key| absolute("cache.trust_keys", Some(key)).map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?,
            sign_key: absolute("cache.sign_key", file.cache.sign_key)?,
            remote: match file.cache.remote {
                Some(url) => match hermetic::cache::remote::parse_url(&url) {
                    Ok(_) => Some(url),
                    Err(error) => {
                        return Err(ConfigError::Invalid {
                            key: "cache.remote",
                            message: hermetic::errors::error_chain(&error),
                        })
                    }
                },
                None => None,
            },
            push: file.cache.push,
            remote_timeout_secs: match file.cache.remote_timeout_secs {
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        key: "cache.remote_timeout_secs",
                        message: "must be at least 1".into(),
                    })
                }
                other => other,
            },
            registry_ca: absolute("cache.registry_ca", file.cache.registry_ca)?,
        };
        let log_limit_bytes = file.log_limit_bytes.unwrap_or(16 * 1024 * 1024);
        if log_limit_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "log_limit_bytes",
                message: "must be at least 1".into(),
            });
        }
        Ok(Config {
            socket: absolute("socket", file.socket)?.unwrap_or_else(default_socket_path),
            state_dir: absolute("state_dir", file.state_dir)?
                .unwrap_or_else(hermetic::dirs::default_state_dir),
            socket_gid,
            allowed_uids: file.allowed_uids,
            allowed_gids: file.allowed_gids,
            max_concurrent: positive("max_concurrent", file.max_concurrent, cores)?,
            queue_limit: positive("queue_limit", file.queue_limit, || 64)?,
            log_limit_bytes,
            body_limit_bytes: positive("body_limit_bytes", file.body_limit_bytes, || 1024 * 1024)?,
            keep_failed: file.keep_failed.unwrap_or(false),
            shutdown_timeout: Duration::from_secs(file.shutdown_timeout_secs.unwrap_or(30)),
            cache,
        })
    }
}

fn resolve_group(name: &str) -> Result<u32, ConfigError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        _ => Err(ConfigError::UnknownGroup(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let config = Config::parse(
            Path::new("test.toml"),
            r#"
            version = 1
            socket = "/tmp/x/hermeticd.sock"
            state_dir = "/tmp/x/state"
            socket_group = "0"
            allowed_uids = [1000]
            allowed_gids = [100]
            max_concurrent = 3
            queue_limit = 5
            log_limit_bytes = 1024
            body_limit_bytes = 2048
            keep_failed = true
            shutdown_timeout_secs = 7

            [cache]
            dir = "/var/cache/hermetic"
            scope = "main"
            trust_keys = ["/etc/hermetic/ci.pub"]
            sign_key = "/etc/hermetic/ci.key"
            remote = "oci://registry.example:5000/ci/cache"
            push = true
            remote_timeout_secs = 9
            registry_ca = "/etc/hermetic/registry-ca.pem"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.cache.remote.as_deref(),
            Some("oci://registry.example:5000/ci/cache")
        );
        assert!(config.cache.push);
        assert_eq!(config.cache.remote_timeout_secs, Some(9));
        assert_eq!(
            config.cache.registry_ca.as_deref(),
            Some(Path::new("/etc/hermetic/registry-ca.pem"))
        );
        assert_eq!(
            config.cache.dir.as_deref(),
            Some(Path::new("/var/cache/hermetic"))
        );
        assert_eq!(config.cache.scope.as_deref(), Some("main"));
        assert_eq!(config.cache.trust_keys, [Path::new("/etc/hermetic/ci.pub")]);
        assert_eq!(config.socket, Path::new("/tmp/x/hermeticd.sock"));
        assert_eq!(config.socket_gid, Some(0));
        assert_eq!(config.max_concurrent, 3);
        assert_eq!(config.queue_limit, 5);
        assert!(config.keep_failed);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(7));
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../contrib/systemd/config.toml");
        Config::parse(Path::new("contrib/systemd/config.toml"), text).unwrap();
    }

    #[test]
    fn wrong_versions_unknown_keys_and_zero_limits_are_refused() {
        let parse = |text: &str| Config::parse(Path::new("t.toml"), text);
        assert!(matches!(
            parse("version = 2"),
            Err(ConfigError::Version { found: 2, .. })
        ));
        assert!(matches!(
            parse("version = 1\nbogus = 1"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            parse("version = 1\nqueue_limit = 0"),
            Err(ConfigError::Invalid {
                key: "queue_limit",
                ..
            })
        ));
        assert!(matches!(
            parse("version = 1\nsocket = \"relative.sock\""),
            Err(ConfigError::Invalid { key: "socket", .. })
        ));
        assert!(matches!(
            parse("version = 1\n[cache]\ntrust_keys = [\"ci.pub\"]"),
            Err(ConfigError::Invalid {
                key: "cache.trust_keys",
                ..
            })
        ));
        assert!(matches!(
            parse("version = 1\n[cache]\nremote = \"https://registry.example/cache\""),
            Err(ConfigError::Invalid {
                key: "cache.remote",
                ..
            })
        ));
        assert!(matches!(
            parse("version = 1\n[cache]\nremote_timeout_secs = 0"),
            Err(ConfigError::Invalid {
                key: "cache.remote_timeout_secs",
                ..
            })
        ));
        assert!(matches!(
            parse("version = 1\n[cache]\nregistry_ca = \"ca.pem\""),
            Err(ConfigError::Invalid {
                key: "cache.registry_ca",
                ..
            })
        ));
    }
}
