//! Sandbox profiles: TOML files in `profiles/` (embedded into the binary) or given by path.
//!
//! Parsing has two stages: `ProfileFile` mirrors the TOML exactly (unknown keys are
//! errors), then `Profile::from_file` validates it into typed values. Nothing in a profile
//! is optional in the engine: every pin and limit has a value after validation.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sandbox::landlock;
use crate::size::parse_size;

/// The profiles shipped in `profiles/`, compiled in so a fresh install works with no files.
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("default", include_str!("../../../profiles/default.toml")),
    ("strict", include_str!("../../../profiles/strict.toml")),
];

/// Profile format version this code reads. Changelog:
/// - 1: first version.
pub const PROFILE_VERSION: u32 = 1;

/// Where operators put their own profiles; a name found there wins over a builtin.
pub const SYSTEM_PROFILE_DIR: &str = "/etc/hermetic/profiles";

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile `{name}` (known: {known}); pass a path to use a profile file")]
    Unknown { name: String, known: String },
    #[error("failed to read profile {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse profile {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid profile {origin}: {field}: {message}")]
    Invalid {
        origin: String,
        field: &'static str,
        message: String,
    },
}

// ---- stage 1: the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    version: u32,
    description: String,
    root: RootFile,
    identity: IdentityFile,
    paths: PathsFile,
    env: EnvFile,
    limits: LimitsFile,
    seccomp: SeccompFile,
    landlock: LandlockFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootFile {
    mode: String,
    #[serde(default)]
    binds: Vec<PathBuf>,
    #[serde(default)]
    etc: Vec<PathBuf>,
    rootfs: Option<PathBuf>,
    image: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    uid: u32,
    gid: u32,
    user: String,
    group: String,
    hostname: String,
    domainname: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathsFile {
    build_dir: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvFile {
    path: String,
    tz: String,
    locale: String,
    umask: String,
    #[serde(default)]
    extra: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    cpus: usize,
    memory: String,
    pids: u64,
    timeout_secs: u64,
    nofile: u64,
    build_dir_size: String,
    tmp_size: String,
    home_size: String,
    cgroup: CgroupPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeccompFile {
    policy: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LandlockFile {
    abi: u8,
}

// ---- stage 2: validated ----

/// Whether a missing cgroup controller stops the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupPolicy {
    /// No build runs without its pids, memory and CPU limits (the default).
    Required,
    /// Limits are applied when the host allows it; otherwise the build runs with only the
    /// tmpfs sizes, rlimits and the wall-clock limit, and a warning says so.
    Optional,
}

#[derive(Clone, Debug, Serialize)]
pub enum RootSource {
    Host {
        binds: Vec<PathBuf>,
        etc: Vec<PathBuf>,
    },
    Rootfs {
        dir: PathBuf,
    },
    /// A stored image, `REF@sha256:<manifest digest>` (checked when a build holds it:
    /// the message for a bare tag names the digest the store has for it).
    Image {
        reference: String,
    },
}

impl RootSource {
    /// The image an `image` root names.
    pub fn image(&self) -> Option<&str> {
        match self {
            Self::Image { reference } => Some(reference),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub name: String,
    /// Where it came from: `builtin:NAME` or a file path.
    pub origin: String,
    /// SHA-256 of the profile file's bytes, recorded in reports and cache keys.
    pub sha256: String,
    pub description: String,
    pub root: RootSource,
    pub identity: crate::sandbox::spec::Identity,
    pub paths: crate::sandbox::spec::SandboxPaths,
    pub path_var: String,
    pub tz: String,
    pub locale: String,
    pub umask: u32,
    pub extra_env: Vec<(String, String)>,
    pub cpus: usize,
    pub memory_bytes: u64,
    pub pids: u64,
    pub timeout_secs: u64,
    pub nofile: u64,
    pub build_dir_bytes: u64,
    pub tmp_bytes: u64,
    pub home_bytes: u64,
    pub cgroup: CgroupPolicy,
    /// A builtin policy name or an absolute path (relative paths are resolved against
    /// the profile file's directory).
    pub seccomp_policy: String,
    pub landlock_abi: u8,
}

/// Finds a profile by name (system dir, then builtin) or by path.
pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        return load_file(Path::new(name_or_path));
    }
    let system = Path::new(SYSTEM_PROFILE_DIR).join(format!("{name_or_path}.toml"));
    if system.is_file() {
        return load_file(&system);
    }
    match BUILTIN_PROFILES
        .iter()
        .find(|(name, _)| *name == name_or_path)
    {
        Some((name, text)) => parse_remembered(name, &format!("builtin:{name}"), text, None),
        None => Err(ProfileError::Unknown {
            name: name_or_path.to_string(),
            known: list()
                .into_iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.into(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_remembered(&name, &path.display().to_string(), &text, path.parent())
}

/// [`parse`], remembered per process by everything it depends on (it reads nothing but
/// its arguments): a daemon parses the same few profiles for every job.
fn parse_remembered(
    name: &str,
    origin: &str,
    text: &str,
    base_dir: Option<&Path>,
) -> Result<Profile, ProfileError> {
    const REMEMBERED: usize = 16;
    type Key = (String, String, Option<PathBuf>, String);
    static CACHE: std::sync::Mutex<Vec<(Key, Profile)>> = std::sync::Mutex::new(Vec::new());
    let sha256 = crate::digest::sha256_hex(text.as_bytes());
    let key: Key = (
        name.to_string(),
        origin.to_string(),
        base_dir.map(Path::to_path_buf),
        sha256.clone(),
    );
    let cache = || {
        CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some((_, hit)) = cache().iter().find(|(known, _)| *known == key) {
        return Ok(hit.clone());
    }
    let profile = parse_with_digest(name, origin, text, base_dir, sha256)?;
    let mut cache = cache();
    if cache.len() == REMEMBERED {
        cache.remove(0);
    }
    cache.push((key, profile.clone()));
    Ok(profile)
}

/// Every profile `load` can find by name, with its origin.
pub fn list() -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = BUILTIN_PROFILES
        .iter()
        .map(|(name, _)| (name.to_string(), format!("builtin:{name}")))
        .collect();
    if let Ok(dir) = std::fs::read_dir(SYSTEM_PROFILE_DIR) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                found.retain(|(n, _)| *n != name);
                found.push((name, path.display().to_string()));
            }
        }
    }
    found.sort();
    found
}

/// The text of a profile found by name, for `hermetic profile show`.
pub fn source_text(name_or_path: &str) -> Result<String, ProfileError> {
    let profile = load(name_or_path)?;
    match profile.origin.strip_prefix("builtin:") {
        Some(name) => Ok(BUILTIN_PROFILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())
            .unwrap_or_default()),
        None => std::fs::read_to_string(&profile.origin).map_err(|source| ProfileError::Read {
            path: profile.origin.clone().into(),
            source,
        }),
    }
}

pub fn parse(
    name: &str,
    origin: &str,
    text: &str,
    base_dir: Option<&Path>,
) -> Result<Profile, ProfileError> {
    parse_with_digest(
        name,
        origin,
        text,
        base_dir,
        crate::digest::sha256_hex(text.as_bytes()),
    )
}

/// [`parse`], given the SHA-256 of `text` (already computed by a caller that keys on it).
fn parse_with_digest(
    name: &str,
    origin: &str,
    text: &str,
    base_dir: Option<&Path>,
    sha256: String,
) -> Result<Profile, ProfileError> {
    let file: ProfileFile = toml::from_str(text).map_err(|err| ProfileError::Parse {
        origin: origin.into(),
        message: err.to_string(),
    })?;
    let invalid = |field: &'static str, message: String| ProfileError::Invalid {
        origin: origin.into(),
        field,
        message,
    };

    if file.version != PROFILE_VERSION {
        return Err(invalid(
            "version",
            format!(
                "this hermetic reads version {PROFILE_VERSION}, the file says {}",
                file.version
            ),
        ));
    }
    if file.root.image.is_some() && file.root.mode != "image" {
        return Err(invalid(
            "root.image",
            "only allowed with mode = \"image\"".into(),
        ));
    }
    let root = match file.root.mode.as_str() {
        "host" => {
            if file.root.rootfs.is_some() {
                return Err(invalid(
                    "root.rootfs",
                    "only allowed with mode = \"rootfs\"".into(),
                ));
            }
            if file.root.binds.is_empty() {
                return Err(invalid(
                    "root.binds",
                    "host mode needs at least one directory (usually /usr)".into(),
                ));
            }
            for path in file.root.binds.iter().chain(&file.root.etc) {
                require_absolute_normal(path).map_err(|m| invalid("root.binds", m))?;
            }
            if let Some(bad) = file.root.etc.iter().find(|p| !p.starts_with("/etc/")) {
                return Err(invalid(
                    "root.etc",
                    format!("{} is not below /etc", bad.display()),
                ));
            }
            if let Some(bad) = file
                .root
                .binds
                .iter()
                .find(|p| p.as_os_str() == "/" || p.as_os_str() == "/etc")
            {
                return Err(invalid(
                    "root.binds",
                    format!(
                        "{} exposes too much; list what the build needs",
                        bad.display()
                    ),
                ));
            }
            RootSource::Host {
                binds: file.root.binds,
                etc: file.root.etc,
            }
        }
        "rootfs" => {
            let dir = file.root.rootfs.ok_or_else(|| {
                invalid(
                    "root.rootfs",
                    "mode = \"rootfs\" needs a rootfs directory".into(),
                )
            })?;
            let dir = match (dir.is_absolute(), base_dir) {
                (false, Some(base)) => base.join(dir),
                _ => dir,
            };
            RootSource::Rootfs { dir }
        }
        "image" => {
            if file.root.rootfs.is_some() {
                return Err(invalid(
                    "root.rootfs",
                    "only allowed with mode = \"rootfs\"".into(),
                ));
            }
            let reference = file.root.image.ok_or_else(|| {
                invalid(
                    "root.image",
                    "mode = \"image\" needs image = \"REF@sha256:...\"".into(),
                )
            })?;
            RootSource::Image { reference }
        }
        other => {
            return Err(invalid(
                "root.mode",
                format!("`{other}` is none of \"host\", \"rootfs\", \"image\""),
            ))
        }
    };

    let identity = crate::sandbox::spec::Identity {
        uid: file.identity.uid,
        gid: file.identity.gid,
        user: file.identity.user,
        group: file.identity.group,
        hostname: file.identity.hostname,
        domainname: file.identity.domainname,
    };
    if identity.uid == 0 || identity.gid == 0 {
        return Err(invalid(
            "identity",
            "the build must not run as uid or gid 0".into(),
        ));
    }
    for (field, value) in [
        ("identity.user", &identity.user),
        ("identity.group", &identity.group),
    ] {
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                field,
                format!("`{value}` is not a plain user or group name"),
            ));
        }
    }
    if identity.hostname.is_empty() || identity.hostname.len() > 64 {
        return Err(invalid("identity.hostname", "must be 1 to 64 bytes".into()));
    }

    let paths = crate::sandbox::spec::SandboxPaths {
        build_dir: file.paths.build_dir,
        home: file.paths.home,
        tmp: file.paths.tmp,
    };
    for (field, path) in [
        ("paths.build_dir", &paths.build_dir),
        ("paths.home", &paths.home),
        ("paths.tmp", &paths.tmp),
    ] {
        require_absolute_normal(path).map_err(|m| invalid(field, m))?;
        let reserved = ["/", "/usr", "/etc", "/proc", "/dev", "/sys"];
        if reserved.iter().any(|r| path == Path::new(r)) {
            return Err(invalid(
                field,
                format!("{} is reserved by the sandbox", path.display()),
            ));
        }
    }

    let umask = u32::from_str_radix(&file.env.umask, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            invalid(
                "env.umask",
                format!("`{}` is not an octal umask", file.env.umask),
            )
        })?;
    for name in file.env.extra.keys() {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(invalid(
                "env.extra",
                format!("`{name}` is not a valid variable name"),
            ));
        }
    }
    if file.limits.cpus == 0 {
        return Err(invalid("limits.cpus", "must be at least 1".into()));
    }
    if file.limits.pids < 8 {
        return Err(invalid("limits.pids", "must be at least 8".into()));
    }
    if file.limits.timeout_secs == 0 {
        return Err(invalid("limits.timeout_secs", "must be at least 1".into()));
    }
    if !(landlock::MIN_ABI..=landlock::MAX_ABI).contains(&file.landlock.abi) {
        return Err(invalid(
            "landlock.abi",
            format!(
                "{} is outside {}..={}",
                file.landlock.abi,
                landlock::MIN_ABI,
                landlock::MAX_ABI
            ),
        ));
    }
    // Zero is refused rather than passed on: tmpfs reads `size=0` as no limit at all.
    let size = |field: &'static str, text: &str| match parse_size(text) {
        Ok(0) => Err(invalid(field, "must be more than 0 bytes".into())),
        Ok(bytes) => Ok(bytes),
        Err(err) => Err(invalid(field, err.to_string())),
    };
    let seccomp_policy = match (
        file.seccomp.policy.contains('/') || file.seccomp.policy.ends_with(".json"),
        base_dir,
    ) {
        (true, Some(base)) if !Path::new(&file.seccomp.policy).is_absolute() => {
            base.join(&file.seccomp.policy).display().to_string()
        }
        _ => file.seccomp.policy,
    };

    Ok(Profile {
        name: name.to_string(),
        origin: origin.to_string(),
        sha256,
        description: file.description,
        root,
        identity,
        paths,
        path_var: file.env.path,
        tz: file.env.tz,
        locale: file.env.locale,
        umask,
        extra_env: file.env.extra.into_iter().collect(),
        cpus: file.limits.cpus,
        memory_bytes: size("limits.memory", &file.limits.memory)?,
        pids: file.limits.pids,
        timeout_secs: file.limits.timeout_secs,
        nofile: file.limits.nofile,
        build_dir_bytes: size("limits.build_dir_size", &file.limits.build_dir_size)?,
        tmp_bytes: size("limits.tmp_size", &file.limits.tmp_size)?,
        home_bytes: size("limits.home_size", &file.limits.home_size)?,
        cgroup: file.limits.cgroup,
        seccomp_policy,
        landlock_abi: file.landlock.abi,
    })
}

fn require_absolute_normal(path: &Path) -> Result<(), String> {
    use std::path::Component;
    if !path.is_absolute() {
        return Err(format!("{} is not absolute", path.display()));
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!("{} contains . or ..", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads are remembered by content: a profile file edited between two builds of one
    /// daemon is read anew, and one left alone gives the same profile.
    #[test]
    fn a_profile_file_edited_between_loads_is_parsed_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edited.toml");
        let default_text = BUILTIN_PROFILES[0].1;
        assert!(default_text.contains("pids = 1024"));
        std::fs::write(&path, default_text).unwrap();
        let first = load_file(&path).unwrap();
        assert_eq!(first.pids, 1024);
        assert_eq!(load_file(&path).unwrap().sha256, first.sha256);
        std::fs::write(&path, default_text.replace("pids = 1024", "pids = 77")).unwrap();
        let edited = load_file(&path).unwrap();
        assert_eq!(edited.pids, 77);
        assert_ne!(edited.sha256, first.sha256);
    }

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN_PROFILES {
            let profile = load(name).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(profile.origin, format!("builtin:{name}"));
            assert!(profile.identity.uid != 0);
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let good = BUILTIN_PROFILES[0].1;
        let unknown = format!("{good}\n[extra]\nx = 1\n");
        assert!(matches!(
            parse("t", "t", &unknown, None),
            Err(ProfileError::Parse { .. })
        ));
        let root_uid = good.replace("uid = 1000", "uid = 0");
        assert!(matches!(
            parse("t", "t", &root_uid, None),
            Err(ProfileError::Invalid {
                field: "identity",
                ..
            })
        ));
        let bad_size = good.replace("memory = \"4GiB\"", "memory = \"4 parsecs\"");
        assert!(matches!(
            parse("t", "t", &bad_size, None),
            Err(ProfileError::Invalid {
                field: "limits.memory",
                ..
            })
        ));
        let all_etc = good.replace("binds = [", "binds = [\"/etc\", ");
        assert!(matches!(
            parse("t", "t", &all_etc, None),
            Err(ProfileError::Invalid {
                field: "root.binds",
                ..
            })
        ));
        let broken = "version = ";
        assert!(matches!(
            parse("t", "t", broken, None),
            Err(ProfileError::Parse { .. })
        ));
    }

    #[test]
    fn an_image_root_names_its_image_and_only_it_does() {
        let good = BUILTIN_PROFILES[0].1;
        let reference = format!("tools@sha256:{}", "a".repeat(64));
        let image = good.replace(
            "mode = \"host\"",
            &format!("mode = \"image\"\nimage = \"{reference}\""),
        );
        let profile = parse("t", "t", &image, None).unwrap();
        assert!(
            matches!(&profile.root, RootSource::Image { reference: r } if *r == reference),
            "{:?}",
            profile.root
        );
        let without = good.replace("mode = \"host\"", "mode = \"image\"");
        assert!(matches!(
            parse("t", "t", &without, None),
            Err(ProfileError::Invalid {
                field: "root.image",
                ..
            })
        ));
        let stray = good.replace(
            "mode = \"host\"",
            &format!("mode = \"host\"\nimage = \"{reference}\""),
        );
        assert!(matches!(
            parse("t", "t", &stray, None),
            Err(ProfileError::Invalid {
                field: "root.image",
                ..
            })
        ));
    }

    #[test]
    fn unknown_profile_names_the_known_ones() {
        let err = load("no-such-profile").unwrap_err().to_string();
        assert!(err.contains("default") && err.contains("strict"), "{err}");
    }

    #[test]
    fn sizes_are_parsed_and_zero_is_refused() {
        let good = BUILTIN_PROFILES[0].1;
        let spelled = good.replace("memory = \"4GiB\"", "memory = \"4G\"");
        let profile = parse("t", "t", &spelled, None).unwrap();
        assert_eq!(profile.memory_bytes, 4 << 30);
        let zero = good.replace("tmp_size = \"1GiB\"", "tmp_size = \"0\"");
        assert!(matches!(
            parse("t", "t", &zero, None),
            Err(ProfileError::Invalid {
                field: "limits.tmp_size",
                ..
            })
        ));
    }
}
