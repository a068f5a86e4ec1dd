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
    /// Verify a provenance bundle against an artifact, offline, with trusted keys only.
    #[command(
        after_help = "Checks, in order: the bundle's single DSSE signature with a \
--trust-key (never a key named by the bundle), the payload type, the in-toto statement and \
SLSA v1 predicate types, that a subject's sha256 (and blake3) is the artifact's, and the \
builder id when --builder-id is given.\n\n\
Exit status: 0 verified, 4 not verified (the reason is named), 2 usage error.\n\n\
The same bundle verifies with cosign:\n  cosign verify-blob-attestation --key PUB --type slsaprovenance1 \
--insecure-ignore-tlog --bundle FILE ARCHIVE\n\n\
Example:\n  hermetic verify --bundle out.intoto.json --artifact hermetic-out.tar.zst --trust-key cosign.pub"
    )]
    Verify(VerifyArgs),
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
    /// Write signed SLSA v1 provenance for the archive to FILE (a Sigstore bundle); only
    /// for reproducible builds. Needs --sign-key.
    #[arg(long, value_name = "FILE", conflicts_with = "single")]
    pub provenance: Option<PathBuf>,
    /// Cosign-compatible private key that signs the provenance (password from
    /// HERMETIC_PASSWORD or COSIGN_PASSWORD).
    #[arg(long, value_name = "KEY", requires = "provenance")]
    pub sign_key: Option<PathBuf>,
    /// The builder id recorded in the provenance (default: derived from the signing key).
    #[arg(long, value_name = "ID", requires = "provenance")]
    pub builder_id: Option<String>,
    /// Write the provenance statement unsigned even when the build is not reproducible
    /// (a report, never an attestation).
    #[arg(long, requires = "provenance")]
    pub unsigned_provenance: bool,
    /// The build command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The provenance bundle (Sigstore bundle v0.3 with a DSSE envelope).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The archive the provenance must be about.
    #[arg(long, value_name = "ARCHIVE")]
    pub artifact: PathBuf,
    /// A trusted public key (PEM); repeatable.
    #[arg(long = "trust-key", value_name = "PUB", required = true)]
    pub trust_keys: Vec<PathBuf>,
    /// Require this builder id.
    #[arg(long, value_name = "ID")]
    pub builder_id: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
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
