//! `SandboxSpec`: everything the helper needs to build one sandbox, as plain data.
//!
//! The launcher builds a spec from a profile plus the request, validates it, and sends it
//! to the helper as JSON (or, to a helper it forked itself, hands it over in memory). The
//! helper trusts the spec (it came from its own parent), so all
//! validation happens before it leaves the launcher.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::archive::outpath::OutputPath;
use crate::sandbox::seccomp::CompiledPolicy;

/// Version of the launcher→helper wire format. The helper is always the same binary as
/// the launcher (re-exec'd from /proc/self/exe, or forked from its zygote), so this only
/// guards against a binary being replaced on disk between the two. Changelog:
/// - 1: first version.
/// - 2: seccomp programs as one hex string, one program per policy.
/// - 3: no cgroup paths: the launcher hands the build cgroup's files to the build child
///   over the provision socket (`message::PROVISION_FD`); the policy carries its one
///   program as `program` instead of a list of filters. Later, without a new number: a
///   built-in policy may come by name and digest alone (the helper has the program and
///   refuses a digest it does not know); a version-3 spec with the program still reads,
///   and the number is part of every cache key, which nothing here changes. Likewise
///   `keep_failed_tree`, absent when false, and the `image` root with `start_dir`
///   (absent when not set), which no earlier spec has.
pub const SPEC_VERSION: u32 = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub version: u32,
    /// argv of the build command; argv[0] is looked up in the pinned PATH inside.
    pub command: Vec<String>,
    /// Host directory copied into `build_dir` before the build starts.
    pub source: Option<PathBuf>,
    pub root: RootSpec,
    pub identity: Identity,
    pub paths: SandboxPaths,
    /// The complete environment of the build, already sorted; nothing is inherited.
    pub env: Vec<(String, String)>,
    pub umask: u32,
    /// Host CPUs the build is pinned to; their count is the visible CPU count.
    pub cpu_set: Vec<usize>,
    pub limits: Limits,
    pub seccomp: CompiledPolicy,
    pub landlock_abi: u8,
    /// Files of /etc written for the build (passwd, group, hosts, ...), path → content.
    pub etc_files: Vec<(String, String)>,
    /// Install the variation shim at `shim::SHIM_PATH` (`etc_files` then holds an
    /// ld.so.preload naming it). Both runs of a dual build in a host-toolchain sandbox
    /// have it, a pass-through unless `variation.vary_shim`, so they see the same files.
    #[serde(default)]
    pub preload_shim: bool,
    pub outputs: Option<OutputRequest>,
    /// Archive the whole build dir into `message::FAILED_TREE_FD` if the command fails
    /// (the daemon's `keep_failed`). Set by the launcher for one launch, never planned:
    /// absent from the JSON when false, so it changes no spec a seed or key is made from.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_failed_tree: bool,
    /// What this run varies on purpose (the second run of a dual build); empty otherwise.
    #[serde(default)]
    pub variation: Variation,
    /// Where the command starts, when not in `paths.build_dir` (`hermetic run` in an image
    /// whose config names a `WorkingDir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_dir: Option<PathBuf>,
}

/// Variation the sandbox applies itself. Everything else a second run varies (the clock
/// through /etc files, the CPU set) is already in the spec's ordinary fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variation {
    /// Copy the source tree in reverse name order, so the build enumerates its
    /// directories in another order than the canonical run does.
    pub reverse_source_order: bool,
    /// The last pid handed out in the pid namespace before the build starts, so the
    /// build's processes get other pids than in the canonical run.
    pub pid_offset: Option<u32>,
    /// Switch the preloaded shim from pass-through to varying (clock, file times and
    /// directory listings; see engine/shim/vary.c).
    pub vary_shim: bool,
    /// How many inode numbers to use up on the build dir's and /tmp's file systems before
    /// the source is copied in, so every file the build sees or creates there gets another
    /// inode number than in the canonical run.
    pub inode_offset: Option<u32>,
}

/// Where the sandbox's read-only system comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum RootSpec {
    /// The host toolchain: listed directories bound read-only (a host symlink such as
    /// `/bin -> usr/bin` is recreated as the same symlink), plus listed /etc files.
    Host {
        binds: Vec<PathBuf>,
        etc_binds: Vec<PathBuf>,
    },
    /// A root filesystem directory; its top-level entries are bound read-only.
    Rootfs { dir: PathBuf },
    /// A stored image's tree, bound as a rootfs is (read-only, never copied); the store's
    /// lock is held by the launcher for the whole run.
    Image { dir: PathBuf },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub hostname: String,
    pub domainname: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxPaths {
    pub build_dir: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids: u64,
    pub timeout_ms: u64,
    pub nofile: u64,
    pub build_dir_bytes: u64,
    pub tmp_bytes: u64,
    pub home_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputRequest {
    pub paths: Vec<OutputPath>,
    /// SOURCE_DATE_EPOCH: the mtime of every archived entry.
    pub mtime: u64,
    pub zstd_level: i32,
}
