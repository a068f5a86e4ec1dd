//! Command-line arguments. Help texts are part of the user interface: each command says
//! what it does and shows an example.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hermetic",
    version,
    about = "Run builds in a hardened sandbox and archive their outputs reproducibly",
    long_about = "Run builds in a hardened sandbox (user, mount, pid, net, uts, ipc, cgroup and time \
namespaces; Landlock; seccomp; no capabilities; loopback-only network; resource limits) with a \
pinned environment, and archive their outputs as deterministic tar+zstd.",
    after_help = "Examples:\n  hermetic run -- make test\n  hermetic build --single --output out -- sh build.sh\n  hermetic profile list"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command in the sandbox with a copy of the source; exit with its status.
    #[command(
        after_help = "The source (default: the current directory) is copied to the build dir \
(/build in the default profile); the host tree is never modified. The command's stdout and \
stderr are streamed unchanged; hermetic's own messages go to stderr.\n\n\
Exit status: the command's own, or 125 when the sandbox can't be set up, 126 when the command \
can't be executed, 127 when it is not found.\n\n\
Examples:\n  hermetic run -- make test\n  hermetic run --profile strict --src ./project -- python3 -m pytest"
    )]
    Run(RunArgs),
    /// Run a build and archive its outputs as deterministic tar+zstd with a BLAKE3 manifest.
    #[command(
        after_help = "The outputs (paths relative to the build dir, default `out`) are \
archived with sorted entries, mtimes clamped to SOURCE_DATE_EPOCH, owner 0, modes 0644/0755, \
and only regular files, directories and symlinks.\n\n\
SOURCE_DATE_EPOCH is --source-date-epoch, else the commit time of the source's git HEAD, else \
315532800 (1980-01-01).\n\n\
Exit status: 0 built, 1 the command failed, 2 usage or configuration error, 3 nondeterministic \
(reserved for dual runs), 5 sandbox or internal error.\n\n\
Examples:\n  hermetic build --single -- sh -c 'mkdir -p out && echo hi > out/hello'\n  \
hermetic build --single --src . --output dist --artifact dist.tar.zst --json -- make dist"
    )]
    Build(BuildArgs),
    /// List, show and check sandbox profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Create a key pair for signing build outputs (cosign-compatible).
    Keygen(crate::commands::KeygenArgs),
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Profile name (builtin or in /etc/hermetic/profiles) or path to a profile file.
    #[arg(long, short, default_value = "default", value_name = "PROFILE")]
    pub profile: String,
    /// Source directory copied into the build dir.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub src: PathBuf,
    /// Override SOURCE_DATE_EPOCH (seconds since 1970).
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Run the build once (no determinism check).
    #[arg(long)]
    pub single: bool,
    /// When the runs differ, write a per-file explanation next to the artifact
    /// (diffoscope's report when diffoscope is installed, else a built-in summary).
    #[arg(long, conflicts_with = "single")]
    pub explain: bool,
    /// An output path relative to the build dir (repeatable; default: out).
    #[arg(long = "output", value_name = "PATH")]
    pub outputs: Vec<String>,
    /// Where to write the archive.
    #[arg(long, default_value = "hermetic-out.tar.zst", value_name = "FILE")]
    pub artifact: PathBuf,
    /// Also extract the verified outputs into DIR (which must not exist).
    #[arg(long, value_name = "DIR")]
    pub extract: Option<PathBuf>,
    /// Print one JSON object (schema hermetic.build/v1) on stdout.
    #[arg(long)]
    pub json: bool,
    /// The build command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles that can be used by name.
    #[command(after_help = "Example:\n  hermetic profile list")]
    List,
    /// Print a profile's file.
    #[command(after_help = "Example:\n  hermetic profile show strict")]
    Show {
        /// Profile name or path.
        name: String,
    },
    /// Validate a profile file and the seccomp policy it names.
    #[command(after_help = "Example:\n  hermetic profile check ./my-profile.toml")]
    Check {
        /// Path to a profile file.
        file: PathBuf,
    },
}
