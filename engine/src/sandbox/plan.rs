//! Turns a profile plus a request into a validated `SandboxSpec`.
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::archive::outpath::OutputPath;
use crate::sandbox::pins::{self, EnvPins, EpochSource};
use crate::sandbox::profile::{Profile, RootSource};
use crate::sandbox::seccomp::CompiledPolicy;
use crate::sandbox::spec::{Limits, OutputRequest, RootSpec, SandboxSpec, Variation, SPEC_VERSION};

/// zstd level of output archives: fast, and the archive is byte-identical for any CPU.
pub const ARCHIVE_ZSTD_LEVEL: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no command given")]
    NoCommand,
    #[error("source directory {path} is not usable")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("source {path} is not a directory")]
    SourceNotDir { path: PathBuf },
    #[error("the profile pins {wanted} CPUs but only {available} are usable here; lower limits.cpus in the profile")]
    TooFewCpus { wanted: usize, available: usize },
    #[error("failed to read this process's CPU affinity: {0}")]
    Affinity(nix::errno::Errno),
    #[error("failed to load seccomp policy `{policy}`: {message}")]
    Seccomp { policy: String, message: String },
    #[error("rootfs {path} is not a directory")]
    Rootfs { path: PathBuf },
    #[error("failed to compute the digest of rootfs {path}: {message}")]
    RootfsDigest { path: PathBuf, message: String },
    #[error("the profile's root is image `{reference}`, which the caller did not hold")]
    ImageNotHeld { reference: String },
}

/// What the caller wants run.
pub struct Request<'a> {
    pub command: &'a [String],
    pub source: Option<&'a Path>,
    pub outputs: Option<&'a [OutputPath]>,
    pub source_date_epoch: Option<u64>,
    /// The image to run in, held by the caller for as long as the sandbox runs
    /// (`image::root::hold`); it replaces the profile's root.
    pub image: Option<&'a ImageRoot<'a>>,
}

/// A stored image as the sandbox's root: what the planner needs of it.
pub struct ImageRoot<'a> {
    /// The tree, bound as `/`.
    pub tree: &'a Path,
    /// The config's `Env`.
    pub env: &'a [(String, String)],
    /// The config's `WorkingDir`, absolute.
    pub working_dir: Option<&'a Path>,
    /// `REF@sha256:...` as given.
    pub reference: &'a str,
    /// `sha256:<hex>`, the manifest's.
    pub digest: String,
}

/// The spec, and the facts about it a report needs.
pub struct Plan {
    pub spec: SandboxSpec,
    /// BLAKE3 of the rootfs tree, when the profile uses one.
    pub rootfs_blake3: Option<String>,
    /// The image the sandbox's root is, when it is one.
    pub image: Option<ImageReport>,
    pub epoch: u64,
    pub epoch_source: EpochSource,
}

pub use hermetic_contract::report::{ImageReport, PinReport};

impl Plan {
    pub fn pins(&self) -> PinReport {
        let spec = &self.spec;
        PinReport {
            source_date_epoch: self.epoch,
            source_date_epoch_from: self.epoch_source,
            uid: spec.identity.uid,
            gid: spec.identity.gid,
            user: spec.identity.user.clone(),
            hostname: spec.identity.hostname.clone(),
            build_dir: spec.paths.build_dir.clone(),
            cpus: spec.cpu_set.len(),
            umask: format!("{:03o}", spec.umask),
            env: spec.env.clone(),
        }
    }
}

pub fn plan(profile: &Profile, request: &Request<'_>) -> Result<Plan, PlanError> {
    if request.command.is_empty() {
        return Err(PlanError::NoCommand);
    }
    let source = match request.source {
        Some(path) => {
            let canonical = path.canonicalize().map_err(|source| PlanError::Source {
                path: path.to_path_buf(),
                source,
            })?;
            if !canonical.is_dir() {
                return Err(PlanError::SourceNotDir {
                    path: path.to_path_buf(),
                });
            }
            Some(canonical)
        }
        None => None,
    };
    let (epoch, epoch_source) =
        pins::source_date_epoch(request.source_date_epoch, source.as_deref());
    let image = request.image;
    // An image's own PATH replaces the profile's (which names the host's layout); its
    // other variables come under the pins and the profile's `extra`.
    let path_var = image
        .and_then(|image| image.env.iter().find(|(name, _)| name == "PATH"))
        .map_or(profile.path_var.as_str(), |(_, value)| value.as_str());
    let mut env = pins::build_env(&EnvPins {
        identity: &profile.identity,
        paths: &profile.paths,
        path_var,
        tz: &profile.tz,
        locale: &profile.locale,
        source_date_epoch: epoch,
        extra: &profile.extra_env,
    });
    let mut start_dir = None;
    if let Some(image) = image {
        pins::add_image_env(&mut env, image.env);
        // Only `hermetic run` (no outputs) starts in the image's WorkingDir: a build's
        // directory is a pin, where its source is and its outputs are collected.
        if request.outputs.is_none() {
            start_dir = image
                .working_dir
                // Looked up inside the tree: its symlinks never lead to a host path.
                .filter(|dir| {
                    *dir == Path::new("/")
                        || crate::sandbox::tree_path::resolve_in(image.tree, dir)
                            .is_some_and(|found| found.is_dir())
                })
                .map(Path::to_path_buf);
            if let Some(dir) = &start_dir {
                env.retain(|(name, _)| name != "PWD");
                env.push(("PWD".into(), dir.display().to_string()));
                env.sort();
            }
        }
    }
    let (root, rootfs_blake3) = match (image, &profile.root) {
        (Some(image), _) => (
            RootSpec::Image {
                dir: image.tree.to_path_buf(),
            },
            None,
        ),
        (None, RootSource::Image { reference }) => {
            return Err(PlanError::ImageNotHeld {
                reference: reference.clone(),
            })
        }
        (None, RootSource::Host { binds, etc }) => (
            RootSpec::Host {
                binds: binds.clone(),
                etc_binds: etc.clone(),
            },
            None,
        ),
        (None, RootSource::Rootfs { dir }) => {
            if !dir.is_dir() {
                return Err(PlanError::Rootfs { path: dir.clone() });
            }
            let dir = dir.canonicalize().map_err(|source| PlanError::Source {
                path: dir.clone(),
                source,
            })?;
            let digest = rootfs_digest(&dir)?;
            (RootSpec::Rootfs { dir }, Some(digest))
        }
    };
    let seccomp = load_seccomp(&profile.seccomp_policy)?;
    Ok(Plan {
        spec: SandboxSpec {
            version: SPEC_VERSION,
            command: request.command.to_vec(),
            source,
            root,
            identity: profile.identity.clone(),
            paths: profile.paths.clone(),
            env,
            umask: profile.umask,
            cpu_set: choose_cpus(profile.cpus, 0)?,
            limits: Limits {
                memory_bytes: profile.memory_bytes,
                pids: profile.pids,
                timeout_ms: profile.timeout_secs.saturating_mul(1000),
                nofile: profile.nofile,
                build_dir_bytes: profile.build_dir_bytes,
                tmp_bytes: profile.tmp_bytes,
                home_bytes: profile.home_bytes,
            },
            seccomp,
            landlock_abi: profile.landlock_abi,
            etc_files: pins::etc_files(&profile.identity, &profile.paths),
            preload_shim: false,
            outputs: request.outputs.map(|paths| OutputRequest {
                paths: paths.to_vec(),
                mtime: epoch,
                zstd_level: ARCHIVE_ZSTD_LEVEL,
            }),
            keep_failed_tree: false,
            variation: Variation::default(),
            start_dir,
        },
        rootfs_blake3,
        image: image.map(|image| ImageReport {
            reference: image.reference.to_owned(),
            digest: image.digest.clone(),
        }),
        epoch,
        epoch_source,
    })
}

/// BLAKE3 over what the sandbox will show of a rootfs: the manifest of every top-level
/// directory and file it binds, plus its top-level symlinks. Directories the sandbox
/// replaces (proc, dev, ...) do not count.
fn rootfs_digest(dir: &Path) -> Result<String, PlanError> {
    tree_digest(dir, crate::sandbox::mount::ROOTFS_REPLACED).map_err(|message| {
        PlanError::RootfsDigest {
            path: dir.to_path_buf(),
            message,
        }
    })
}

/// BLAKE3 over a directory tree: the manifest (path, type, mode, size, content digest) of
/// every top-level entry not in `skip` that is not a symlink, then the top-level symlinks
/// as `name -> target` lines; sockets and fifos are passed over, as the source copy leaves
/// them out. Used for rootfs identity, cache keys and provenance source digests.
pub fn tree_digest(dir: &Path, skip: &[&str]) -> Result<String, String> {
    let mut trees = Vec::new();
    let mut links = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .and_then(|read| read.collect::<Result<Vec<_>, _>>())
        .map_err(|err| err.to_string())?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let kind = entry.file_type().map_err(|err| err.to_string())?;
        if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|err| err.to_string())?;
            links.push(format!("{name} -> {}", target.display()));
        } else if !(kind.is_fifo() || kind.is_socket()) {
            trees.push(OutputPath::parse(&name).map_err(|err| crate::errors::error_chain(&err))?);
        }
    }
    let manifest = crate::archive::pack::manifest_of_source(dir, &trees)
        .map_err(|err| crate::errors::error_chain(&err))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&manifest.to_canonical_json());
    for link in &links {
        hasher.update(link.as_bytes());
        hasher.update(b"\n");
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn load_seccomp(policy: &str) -> Result<CompiledPolicy, PlanError> {
    crate::sandbox::seccomp::load_policy(policy).map_err(|err| PlanError::Seccomp {
        policy: policy.to_string(),
        message: crate::errors::error_chain(&err),
    })
}

/// `count` CPUs from this process's affinity, starting at the `rotation`-th one (a second
/// run uses another rotation to land on other cores where there are enough).
pub fn choose_cpus(count: usize, rotation: usize) -> Result<Vec<usize>, PlanError> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(PlanError::Affinity)?;
    let usable: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect();
    if usable.len() < count {
        return Err(PlanError::TooFewCpus {
            wanted: count,
            available: usable.len(),
        });
    }
    let start = rotation % usable.len();
    let mut chosen: Vec<usize> = usable
        .iter()
        .cycle()
        .skip(start)
        .take(count)
        .copied()
        .collect();
    chosen.sort_unstable();
    Ok(chosen)
}
