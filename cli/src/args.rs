//! Command-line arguments. Help texts are part of the user interface: each command says
//! what it does and shows an example.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod drill;

#[derive(Debug, Parser)]
#[command(
    name = "hermetic",
    version,
    about = "Run builds in a hardened sandbox and archive their outputs reproducibly",
    long_about = "Run builds in a hardened sandbox (user, mount, pid, net, uts, ipc, cgroup and time \
namespaces; Landlock; seccomp; no capabilities; loopback-only network; resource limits) with a \
pinned environment, and archive their outputs as deterministic tar+zstd.",
    after_help = "`run` and `build` go through the daemon (hermeticd) on its socket, which is \
started for you when none answers; --no-daemon (or HERMETIC_NO_DAEMON=1) runs them in this \
process. Either way they print the same output and exit with the same codes.\n\n\
Examples:\n  hermetic run -- make test\n  hermetic build --single --output out -- sh build.sh\n  \
hermetic jobs\n  hermetic profile list"
)]
pub struct Cli {
    /// Run `run` and `build` in this process instead of through the daemon (also
    /// HERMETIC_NO_DAEMON=1).
    #[arg(long, global = true)]
    pub no_daemon: bool,
    #[command(subcommand)]
    pub command: Command,
}

// `defer`: clap builds a subcommand's arguments only when that subcommand is parsed (or
// its help printed). Building all of them took about 0.2 ms of every `hermetic run`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run one command in the sandbox with a copy of the source; exit with its status.
    #[command(
        after_help = "The source (default: the current directory) is copied to the build dir \
(/build in the default profile); the host tree is never modified. The command's stdout and \
stderr are streamed unchanged; hermetic's own messages go to stderr.\n\n\
With --image REF@sha256:DIGEST the command runs in a stored image (`hermetic image pull|import` \
stores it and prints the digest) instead of the profile's root: its tree is bound read-only as /, \
its config's Env applies under the pins, and the command starts in its WorkingDir when it has one.\n\n\
Exit status: the command's own, or 125 when the sandbox can't be set up, 126 when the command \
can't be executed, 127 when it is not found; 2 when --image is a bare tag or not stored.\n\n\
Examples:\n  hermetic run -- make test\n  hermetic run --profile strict --src ./project -- python3 -m pytest\n  \
hermetic run --image debian-toolchain@sha256:c147... -- gcc --version"
    )]
    Run(RunArgs),
    /// Run a build and archive its outputs as deterministic tar+zstd with a BLAKE3 manifest.
    #[command(
        after_help = "The outputs (paths relative to the build dir, default `out`) are \
archived with sorted entries, mtimes clamped to SOURCE_DATE_EPOCH, owner 0, modes 0644/0755, \
and only regular files, directories and symlinks.\n\n\
SOURCE_DATE_EPOCH is --source-date-epoch, else the commit time of the source's git HEAD, else \
315532800 (1980-01-01).\n\n\
Image (--image REF@sha256:DIGEST): the build runs in a stored image instead of the profile's \
root, never pulled; the cache key's toolchain is the image's manifest digest, so runners with \
different hosts share entries, and the report and provenance name the image.\n\n\
Exit status: 0 built, 1 the command failed, 2 usage or configuration error (a bare tag or an \
image not stored), 3 nondeterministic (reserved for dual runs), 4 --require-cache and no usable cache entry, 5 sandbox or internal \
error.\n\n\
Cache (--cache-dir): the cache key covers the source tree, command, outputs, profile and \
seccomp policy, toolchain, pinned environment and SOURCE_DATE_EPOCH. An entry is restored \
only after its signature (a --trust-key, or the local key hermetic generates in its state \
dir), its signed key and scope, and its archive (sha256, blake3, every file) all check out; \
otherwise it is quarantined and the build runs. Only reproducible results are stored.\n\n\
Remote cache (--cache-remote oci://HOST[:PORT]/REPO): looked up after the local store; a \
verified entry is restored and kept in the local store. With --cache-push and --sign-key, a \
reproducible miss is pushed. A registry that is down, slow or refusing is a miss, never a \
failed build. Credentials come from the docker and podman auth files of the process that \
runs the build (the daemon's, for daemon jobs).\n\n\
Examples:\n  hermetic build --single -- sh -c 'mkdir -p out && echo hi > out/hello'\n  \
hermetic build --single --src . --output dist --artifact dist.tar.zst --json -- make dist\n  \
hermetic build --cache-dir ~/.cache/hermetic -- make\n  \
hermetic build --image debian-toolchain@sha256:c147... --src examples/hello -- make\n  \
hermetic build --cache-dir DIR --cache-remote oci://registry.example/ci/cache --cache-push \
--sign-key ci.key -- make"
    )]
    Build(Box<BuildArgs>),
    /// List, show and check sandbox profiles.
    #[command(
        subcommand,
        after_help = "Examples:\n  hermetic profile list\n  hermetic profile show strict\n  \
hermetic profile check ./ci.toml"
    )]
    Profile(ProfileCommand),
    /// Create a key pair for signing build outputs (cosign-compatible).
    Keygen(KeygenArgs),
    /// Verify a provenance bundle (or a cache entry's manifest) against an artifact,
    /// offline, with trusted keys only.
    #[command(
        after_help = "Checks, in order: the bundle's single DSSE signature with a \
--trust-key (never a key named by the bundle), the payload type, the in-toto statement and \
SLSA v1 predicate types, that a subject's sha256 (and blake3) is the artifact's, and the \
builder id when --builder-id is given.\n\n\
With --manifest, the file is a cache entry's signed manifest: after its signature, the \
archive's size, sha256 and blake3 and every file in it are checked against the manifest.\n\n\
Exit status: 0 verified, 4 not verified (the reason is named), 2 usage error.\n\n\
The same bundle verifies with cosign:\n  cosign verify-blob-attestation --key PUB --type slsaprovenance1 \
--insecure-ignore-tlog --bundle FILE ARCHIVE\n\n\
Examples:\n  hermetic verify --bundle out.intoto.json --artifact hermetic-out.tar.zst --trust-key cosign.pub\n  \
hermetic verify --manifest entry.sigstore.json --artifact archive.tar.zst --trust-key ci.pub"
    )]
    Verify(VerifyArgs),
    /// List, verify, restore, share and clean the signed build cache.
    #[command(
        subcommand,
        after_help = "Examples:\n  hermetic cache ls --cache-dir ~/.cache/hermetic\n  \
hermetic cache verify --cache-dir ~/.cache/hermetic\n  hermetic cache gc --cache-dir ~/.cache/hermetic\n  \
hermetic cache pull --cache-dir ~/.cache/hermetic --cache-remote oci://registry.example/ci/cache KEY"
    )]
    Cache(CacheCommand),
    /// Pull, import, list, verify and remove the OCI images builds can run in.
    #[command(
        subcommand,
        after_help = "Images are unpacked by hermetic's own strict unpacker and stored once, \
read-only, by manifest digest in <state-dir>/images (docs/images.md).\n\n\
Examples:\n  hermetic image pull registry.example/debian:bookworm\n  \
hermetic image import ./layout --tag v1\n  hermetic image ls\n  hermetic image verify"
    )]
    Image(ImageCommand),
    /// Determinism drills: rebuild a plan of cases, compare with their history, report.
    #[command(
        subcommand,
        after_help = "A drill is what a platform team schedules (nightly, see \
contrib/systemd/hermetic-drill.timer) to learn whether everything it ships still builds bit \
for bit, today, on this runner. Every drill is kept in the daemon's history (docs/drills.md).\n\n\
Examples:\n  hermetic drill run drills.toml --junit drill.xml --html drill.html\n  \
hermetic drill history --case hello\n  hermetic drill status --max-age 7d"
    )]
    Drill(drill::DrillCommand),
    /// Show or stop the daemon that runs jobs.
    #[command(
        subcommand,
        after_help = "Examples:\n  hermetic daemon status\n  hermetic daemon stop"
    )]
    Daemon(DaemonCommand),
    /// List the daemon's jobs, newest first.
    #[command(
        after_help = "Each line: id, state (queued, running, succeeded, failed, cancelled, \
interrupted), kind, verdict, exit code, submission time (UTC), command. The list survives \
daemon restarts; jobs that were running when a daemon died show as interrupted.\n\n\
Exit status: 0 listed, 5 the daemon can't be reached or started.\n\n\
Examples:\n  hermetic jobs\n  hermetic jobs --limit 5 --json"
    )]
    Jobs(JobsArgs),
    /// Print a job's log (its stdout and stderr, in the order written).
    #[command(
        after_help = "Lines starting with [hermeticd] are the daemon's own notes (an error \
that ended the job, a log cut at the configured size). With --follow, the log is printed \
as it is written until the job ends.\n\n\
Exit status: 0 printed, 2 no such job, 5 the daemon can't be reached or started.\n\n\
Examples:\n  hermetic logs 12\n  hermetic logs --follow 12"
    )]
    Logs(LogsArgs),
    /// Cancel a queued or running job; a running job's whole sandbox is killed.
    #[command(
        after_help = "A queued job is removed from the queue; a running one has its sandbox \
killed (every process of the build dies with it, in every run of a dual build), and the \
command waits until it has ended.\n\n\
Exit status: 0 cancelled, 2 no such job or it had already finished, 5 the daemon can't be \
reached or did not confirm in time.\n\n\
Example:\n  hermetic cancel 12"
    )]
    Cancel(CancelArgs),
    /// Print a shell completion script for hermetic's commands and flags.
    #[command(
        after_help = "The script is made from this hermetic's command definitions: generate \
it again after an upgrade. Install it where your shell loads completions from, e.g. \
/etc/bash_completion.d/hermetic for every bash user, a directory in $fpath (as _hermetic) for \
zsh, ~/.config/fish/completions/hermetic.fish for fish.\n\n\
Examples:\n  hermetic completions bash > ~/.local/share/bash-completion/completions/hermetic\n  \
hermetic completions zsh > ~/.zfunc/_hermetic\n  \
hermetic completions fish > ~/.config/fish/completions/hermetic.fish"
    )]
    Completions(CompletionsArgs),
    /// Write the man pages of hermetic and of each of its commands.
    #[command(
        after_help = "The pages are made from the same definitions as --help. Without --dir, \
hermetic.1 is printed on stdout. With --dir, DIR (created if missing) gets hermetic.1 and one \
page per command: hermetic-build.1, hermetic-cache.1, hermetic-cache-gc.1 and so on; pages \
already there are replaced.\n\n\
Exit status: 0 written, 2 DIR can't be written, 5 stdout can't be written.\n\n\
Examples:\n  hermetic man | man -l -\n  sudo hermetic man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into DIR instead of printing hermetic.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DaemonCommand {
    /// Say whether a daemon answers on the socket, and what it is doing.
    #[command(
        after_help = "The socket is the `socket` of $HERMETIC_CONFIG (or of the daemon's \
default config file): /run/hermetic/hermeticd.sock for root, \
$XDG_RUNTIME_DIR/hermetic/hermeticd.sock or /tmp/hermetic-UID/hermeticd.sock for other users. \
Nothing is started.\n\n\
Exit status: 0 a daemon answers, 1 none does, 5 it answered with an error.\n\n\
Examples:\n  hermetic daemon status\n  hermetic daemon status --json"
    )]
    Status {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon gracefully (as SIGTERM does), waiting until it has exited.
    #[command(
        after_help = "The daemon stops accepting jobs, lets running jobs finish for its \
`shutdown_timeout_secs` (default 30), then kills their sandboxes. Queued jobs are marked \
interrupted. Stop a daemon that systemd runs with `systemctl stop hermeticd` instead, so \
that systemd knows.\n\n\
Exit status: 0 stopped, or none was running; 5 it could not be signalled or did not exit in \
time.\n\n\
Example:\n  hermetic daemon stop"
    )]
    Stop {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Serve the daemon in the foreground (what autostart runs; hermeticd is the same
    /// daemon for systemd).
    #[command(
        hide = true,
        after_help = "Example:\n  HERMETIC_LOG=debug hermetic daemon serve"
    )]
    Serve,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Show at most N jobs.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Print the daemon's job list (schema hermetic.daemon/v1) on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job's id (from `hermetic jobs`).
    pub id: u64,
    /// Keep printing as the log grows, until the job ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Print JSON lines instead: `{"stream": "stdout"|"stderr"|"daemon", "data": TEXT}`
    /// per chunk, in order, then `{"job": JOB}` (schema hermetic.daemon/v1) when the
    /// followed job has ended.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job's id (from `hermetic jobs`).
    pub id: u64,
    /// Print the cancelled job (schema hermetic.daemon/v1) on stdout.
    #[arg(long)]
    pub json: bool,
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
    /// Run inside a stored image instead of the profile's root: REF@sha256:DIGEST, never a
    /// bare tag (`hermetic image pull|import` stores it and prints the digest). Its tree
    /// is bound read-only as /; builds never pull.
    #[arg(long, value_name = "REF@sha256:DIGEST")]
    pub image: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The state directory whose image store --image reads (default: the config's
    /// state directory; a daemon job uses the daemon's).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
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
    /// Cosign-compatible private key that signs the provenance and new cache entries
    /// (password from HERMETIC_PASSWORD or COSIGN_PASSWORD). Needs --provenance or
    /// --cache-dir.
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// The builder id recorded in the provenance (default: derived from the signing key).
    #[arg(long, value_name = "ID", requires = "provenance")]
    pub builder_id: Option<String>,
    /// Write the provenance statement unsigned even when the build is not reproducible
    /// (a report, never an attestation).
    #[arg(long, requires = "provenance")]
    pub unsigned_provenance: bool,
    #[command(flatten)]
    pub cache: BuildCacheArgs,
    /// The build command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

// The cache flags of `hermetic build` (a plain comment, for the reason given at
// CacheKeysArgs).
#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct BuildCacheArgs {
    /// Use the signed cache in DIR: a verified entry is restored instead of building, and
    /// a reproducible result is stored (default: `[cache] dir` in the config file).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The scope read and written (default: local). Give untrusted builds (forks, pull
    /// requests) a scope named untrusted-*: trusted builds never read it.
    #[arg(long, value_name = "SCOPE")]
    pub cache_scope: Option<String>,
    /// A public key (PEM) trusted to sign cache entries; repeatable. Once one is given, the
    /// local key no longer counts for trusted scopes.
    #[arg(long = "trust-key", value_name = "PUB")]
    pub trust_keys: Vec<PathBuf>,
    /// Exit 4 instead of building when there is no usable cache entry.
    #[arg(long)]
    pub require_cache: bool,
    /// Also store single-run (--single) results, marked as such; only --single builds
    /// use them.
    #[arg(long)]
    pub cache_single_run: bool,
    /// Where the local cache signing key is made on first use, and whose image store
    /// --image reads (default: /var/lib/hermetic for root, else $XDG_STATE_HOME/hermetic
    /// or ~/.local/state/hermetic; a daemon job takes its images from the daemon's).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub remote: CacheRemoteArgs,
    /// Push a reproducible miss to the remote cache; needs --sign-key (default: `[cache]
    /// push` in the config file).
    #[arg(long)]
    pub cache_push: bool,
}

// The remote cache's address and how to reach it, for `hermetic build` and the `hermetic
// cache` commands that use it (a plain comment, for the reason given at CacheKeysArgs).
#[derive(Debug, Args)]
pub struct CacheRemoteArgs {
    /// The remote cache, an OCI registry: oci://HOST[:PORT]/REPO, each scope in the
    /// repository REPO/SCOPE (default: `[cache] remote` in the config file).
    #[arg(long, value_name = "URL")]
    pub cache_remote: Option<String>,
    /// Seconds each registry request may take: connecting, the answer, each stall of a
    /// download (default: `[cache] remote_timeout_secs`, else 5).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_remote_timeout: Option<u64>,
    /// PEM certificates trusted for the registry besides the system's (default: `[cache]
    /// registry_ca`).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Speak plain HTTP to a registry that is not on loopback (loopback always may);
    /// credentials then travel in the clear.
    #[arg(long)]
    pub registry_plain_http: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum CacheCommand {
    /// List the entries, least recently used first, with who signed each.
    #[command(
        after_help = "Each entry's signed manifest (not its archive) is checked against the \
keys trusted for the entry's scope (--trust-key, the config, the local key): `trusted` with \
the signer's key id, or `untrusted` with the reason. A trusted signature does not mean a \
restore would succeed; `cache verify` checks the archive too.\n\n\
With --remote, the remote cache's entries of one scope are listed instead: the tags of \
REPO/SCOPE that are cache keys, each with its signature checked the same way (and its \
statement, key and scope).\n\n\
Exit status: 0 listed, 2 usage error, 5 the registry can't be reached or refused.\n\n\
Examples:\n  hermetic cache ls --cache-dir ~/.cache/hermetic --trust-key ci.pub\n  \
hermetic cache ls --remote --cache-remote oci://registry.example/ci/cache --cache-scope main"
    )]
    Ls {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        keys: CacheKeysArgs,
        /// List the remote cache's entries of one scope instead of the local store's.
        #[arg(long)]
        remote: bool,
        /// With --remote: the scope listed (default: local).
        #[arg(long, value_name = "SCOPE", requires = "remote")]
        cache_scope: Option<String>,
        #[command(flatten)]
        remote_cache: CacheRemoteArgs,
    },
    /// Show what a verified entry was built from and holds (its signed manifest).
    #[command(
        after_help = "The entry is verified first, as `cache verify` does (a refused entry is \
quarantined and nothing is shown but the reason): an entry's content is never shown before \
its signature checked out.\n\n\
Exit status: 0 shown, 4 no such entry or refused, 2 usage error.\n\n\
Example:\n  hermetic cache show --cache-dir ~/.cache/hermetic 3f2a..."
    )]
    Show {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        trust: CacheTrustArgs,
        /// The entry's cache key.
        key: String,
    },
    /// Verify entries as a restore would (signature, key, scope, archive, every file),
    /// writing nothing; a refused entry is quarantined.
    #[command(
        after_help = "Without KEY, every entry of the scope is verified. With --json, each \
verified entry's signed manifest is printed.\n\n\
With --remote, the remote cache's entries of the scope are scrubbed in place instead: \
signature, statement, key and scope, the entry manifest, and the archive's size and digests \
(each downloaded to a temporary file in the cache directory, then removed). A refused \
entry's fetched parts are quarantined in the cache directory; nothing is deleted from the \
registry.\n\n\
Exit status: 0 all verified, 4 an entry was refused (and quarantined) or is missing, 2 usage \
error, 5 the registry can't be reached or refused.\n\n\
Examples:\n  hermetic cache verify --cache-dir ~/.cache/hermetic --trust-key ci.pub\n  \
hermetic cache verify --remote --cache-remote oci://registry.example/ci/cache --trust-key ci.pub"
    )]
    Verify {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        trust: CacheTrustArgs,
        /// The entry's cache key (64 hex digits, from `cache ls` or a build report).
        key: Option<String>,
        /// Verify the remote cache's entries instead of the local store's.
        #[arg(long)]
        remote: bool,
        #[command(flatten)]
        remote_cache: CacheRemoteArgs,
    },
    /// Publish a stored entry to the remote cache, signed for the registry.
    #[command(
        after_help = "The local entry is verified first, as `cache verify` does. It is then \
signed again with --sign-key (the statement names the archive and the registry's entry \
manifest), and the archive, the entry manifest (tagged with the key in REPO/SCOPE) and the \
signature are pushed. A tag that already names another entry is never overwritten: that is \
a conflict, reported and logged in <cache-dir>/events.ndjson.\n\n\
Exit status: 0 pushed or already there, 4 no verified local entry, or a conflict, 2 usage \
error, 5 the registry can't be reached, refused, or the push failed.\n\n\
Example:\n  hermetic cache push --cache-dir ~/.cache/hermetic --cache-remote \
oci://registry.example/ci/cache --cache-scope main --sign-key ci.key 3f2a..."
    )]
    Push {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        trust: CacheTrustArgs,
        #[command(flatten)]
        remote_cache: CacheRemoteArgs,
        /// Cosign-compatible private key that signs the published entry (password from
        /// HERMETIC_PASSWORD or COSIGN_PASSWORD; default: `[cache] sign_key`).
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        /// The entry's cache key.
        key: String,
    },
    /// Fetch an entry from the remote cache and verify it into the local store.
    #[command(
        after_help = "The entry is checked as a build's remote lookup checks it (signature \
by a key trusted for the scope, statement, key and scope, entry manifest, the archive's \
size and digests while it downloads), committed into the local store, and verified there \
entry by entry. A refused entry's fetched parts are quarantined in the cache directory.\n\n\
Exit status: 0 pulled, 4 no such entry or refused, 2 usage error, 5 the registry can't be \
reached or refused.\n\n\
Example:\n  hermetic cache pull --cache-dir ~/.cache/hermetic --cache-remote \
oci://registry.example/ci/cache --cache-scope main --trust-key ci.pub 3f2a..."
    )]
    Pull {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        trust: CacheTrustArgs,
        #[command(flatten)]
        remote_cache: CacheRemoteArgs,
        /// The entry's cache key.
        key: String,
    },
    /// Restore a verified entry's output tree into a new directory.
    #[command(
        after_help = "DIR must not exist; it appears, whole, only after every check passed. \
A refused entry is quarantined and nothing is created.\n\n\
Exit status: 0 restored, 4 no such entry or refused, 2 usage error.\n\n\
Example:\n  hermetic cache restore --cache-dir ~/.cache/hermetic 3f2a... --dest ./out"
    )]
    Restore {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        trust: CacheTrustArgs,
        /// The entry's cache key.
        key: String,
        /// The directory to create.
        #[arg(long, value_name = "DIR")]
        dest: PathBuf,
    },
    /// Inspect quarantined entries.
    #[command(
        subcommand,
        after_help = "Example:\n  hermetic cache quarantine ls --cache-dir ~/.cache/hermetic"
    )]
    Quarantine(QuarantineCommand),
    /// Evict least recently used entries until the cache fits in --max-size, and with
    /// --drop-untrusted every entry no trusted key signed.
    #[command(
        after_help = "Restoring an entry counts as using it. Quarantine is never evicted \
(it is evidence; remove it by hand). Leftovers of interrupted writes are removed too.\n\n\
--drop-untrusted first evicts the entries whose signed manifest no key trusted for their \
scope signed (--trust-key, the config, the local key; e.g. entries of a retired key, or of \
the local key once operator keys are configured): every restore would refuse them anyway. \
Without it the keys are not consulted.\n\n\
Examples:\n  hermetic cache gc --cache-dir ~/.cache/hermetic --max-size 10G\n  \
hermetic cache gc --cache-dir ~/.cache/hermetic --trust-key ci.pub --drop-untrusted"
    )]
    Gc {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        keys: CacheKeysArgs,
        /// Size cap: bytes, or with a unit as in profiles: K, M, G or T, also spelled
        /// KiB or KB and so on; every unit is a power of 1024 (10G = 10GiB = 10GB).
        #[arg(
            long,
            value_name = "SIZE",
            value_parser = hermetic::size::parse_size,
            required_unless_present = "drop_untrusted"
        )]
        max_size: Option<u64>,
        /// Also evict every entry not signed by a key trusted for its scope.
        #[arg(long)]
        drop_untrusted: bool,
    },
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum QuarantineCommand {
    /// List quarantined entries with the reason each was refused, oldest first, and
    /// whether a trusted key signed them.
    #[command(
        after_help = "Each entry keeps its files and a reason.json (step, reason, file, \
expected and found digests, time). Events are also in <cache-dir>/events.ndjson.\n\n\
The signed manifest is checked against the keys trusted for the entry's scope (--trust-key, \
the config, the local key): a refused entry that a trusted key signed was changed after it \
was signed (or the disk is failing); one no trusted key signed was forged or comes from a \
key you do not trust.\n\n\
Example:\n  hermetic cache quarantine ls --cache-dir ~/.cache/hermetic --trust-key ci.pub"
    )]
    Ls {
        #[command(flatten)]
        cache: CacheDirArgs,
        #[command(flatten)]
        keys: CacheKeysArgs,
    },
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// Fetch an image from a registry and store its unpacked tree.
    #[command(
        after_help = "REF is HOST[:PORT]/REPO:TAG, HOST[:PORT]/REPO@sha256:HEX or both. A tag is \
resolved once, to the digest printed; everything after is fetched by digest. A \
multi-platform image resolves to this host's platform. Every blob is checked against its \
digest and size, every layer against the config's diff_ids, and every tar member against \
the unpacker's rules; a refused image leaves nothing in the store.\n\n\
The registry is reached as the remote cache reaches one: the system's certificates plus \
--registry-ca, plain HTTP only on loopback unless --registry-plain-http, credentials from \
the docker and podman auth files.\n\n\
Exit status: 0 stored (or already there), 2 usage error or no such image, 4 the image was \
refused, 5 the registry can't be reached or an internal error.\n\n\
Examples:\n  hermetic image pull registry.example/debian:bookworm\n  \
hermetic image pull --json registry.example/tools@sha256:3f2a..."
    )]
    Pull {
        /// The image reference.
        #[arg(value_name = "REF")]
        reference: String,
        #[command(flatten)]
        store: ImageStoreArgs,
        #[command(flatten)]
        limits: ImageLimitArgs,
        /// PEM certificates trusted for the registry besides the system's.
        #[arg(long, value_name = "FILE")]
        registry_ca: Option<PathBuf>,
        /// Speak plain HTTP to a registry that is not on loopback (loopback always may);
        /// credentials then travel in the clear.
        #[arg(long)]
        registry_plain_http: bool,
        /// Seconds each registry request may take: connecting, the answer, each stall of
        /// a download.
        #[arg(long, value_name = "SECS", default_value_t = 60,
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
    /// Store the image of an OCI layout directory or a docker-archive tarball.
    #[command(
        after_help = "PATH is an OCI image layout directory (oci-layout, index.json, blobs/), or \
a tarball: `docker save`, `skopeo copy ... docker-archive:FILE`, or an OCI layout in a tar. \
--tag picks the image where PATH holds several. A docker-archive image has no manifest of \
its own: hermetic derives the OCI manifest of its uncompressed layers, whose digest \
identifies it. The checks and the refusals are those of `image pull`.\n\n\
Exit status: 0 stored (or already there), 2 usage error, 4 the image was refused, 5 internal \
error.\n\n\
Examples:\n  hermetic image import ./layout\n  hermetic image import --tag v1 --json image.tar"
    )]
    Import {
        /// The layout directory or tarball.
        path: PathBuf,
        /// The tag of the image to import (`org.opencontainers.image.ref.name` in a
        /// layout, RepoTags in a docker-archive).
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
        #[command(flatten)]
        store: ImageStoreArgs,
        #[command(flatten)]
        limits: ImageLimitArgs,
    },
    /// List the stored images with the reference each was stored under.
    #[command(
        after_help = "Each line: manifest digest, platform, files and bytes of the tree, and \
the reference it was first stored under.\n\n\
Exit status: 0 listed, 2 usage error, 5 the store can't be read.\n\n\
Examples:\n  hermetic image ls\n  hermetic image ls --json --state-dir /var/lib/hermetic"
    )]
    Ls {
        #[command(flatten)]
        store: ImageStoreArgs,
    },
    /// Re-hash stored trees and compare them with what was recorded when they were stored.
    #[command(
        after_help = "Every file's content, every mode, type and symlink target is compared \
with the tree's manifest written when the image was stored, and the stored manifest and \
config with their digests. Without DIGEST, every stored image is verified.\n\n\
Exit status: 0 all verified, 2 usage error or no such image, 4 an image differs, 5 the store \
can't be read.\n\n\
Examples:\n  hermetic image verify\n  hermetic image verify --json sha256:3f2a..."
    )]
    Verify {
        /// The image's manifest digest (sha256:HEX).
        #[arg(value_name = "DIGEST")]
        digest: Option<String>,
        #[command(flatten)]
        store: ImageStoreArgs,
    },
    /// Remove a stored image, unless a build or a verify is using it.
    #[command(
        after_help = "An image in use (a build, or `image verify`, holds it) is not removed: \
the command refuses at once, and the image stays.\n\n\
Exit status: 0 removed, 2 usage error or no such image, 4 the image is in use, 5 internal \
error.\n\n\
Example:\n  hermetic image rm sha256:3f2a..."
    )]
    Rm {
        /// The image's manifest digest (sha256:HEX).
        #[arg(value_name = "DIGEST")]
        digest: String,
        #[command(flatten)]
        store: ImageStoreArgs,
    },
}

// Where the image store is, and how to print (a plain comment, for the reason given at
// CacheKeysArgs).
#[derive(Debug, Args)]
pub struct ImageStoreArgs {
    /// The state directory whose images/ is the store (default: /var/lib/hermetic for
    /// root, else $XDG_STATE_HOME/hermetic or ~/.local/state/hermetic).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

// Bounds on what an image may make hermetic unpack (a plain comment, as above).
#[derive(Debug, Args)]
pub struct ImageLimitArgs {
    /// Refuse an image whose layers hold more file content than SIZE (bytes, or K, M,
    /// G, T as in profiles; default 64G).
    #[arg(long, value_name = "SIZE", value_parser = hermetic::size::parse_size)]
    pub max_bytes: Option<u64>,
    /// Refuse an image whose layers hold more tar members than N (default 2000000).
    #[arg(long, value_name = "N")]
    pub max_entries: Option<u64>,
    /// Store setuid and setgid files without those bits instead of refusing the image
    /// (distribution images have su, passwd, ...). Builds never gain privileges from them
    /// anyway: the tree is mounted nosuid.
    #[arg(long)]
    pub allow_setuid: bool,
}

#[derive(Debug, Args)]
pub struct CacheDirArgs {
    /// The cache directory (default: `[cache] dir` in the config file).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CacheTrustArgs {
    /// The scope (default: local).
    #[arg(long, value_name = "SCOPE")]
    pub cache_scope: Option<String>,
    #[command(flatten)]
    pub keys: CacheKeysArgs,
}

// The keys `hermetic cache` trusts, besides the config file's (a plain comment: a doc
// comment here would become the about of every subcommand that flattens it).
#[derive(Debug, Args)]
pub struct CacheKeysArgs {
    /// A trusted public key (PEM); repeatable. Once one is given, the local key no longer
    /// counts for trusted scopes.
    #[arg(long = "trust-key", value_name = "PUB")]
    pub trust_keys: Vec<PathBuf>,
    /// Where the local cache key lives (see `hermetic build --help`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The provenance bundle (Sigstore bundle v0.3 with a DSSE envelope).
    #[arg(long, value_name = "FILE", required_unless_present = "manifest")]
    pub bundle: Option<PathBuf>,
    /// A cache entry's signed manifest (entry.sigstore.json) to check instead: its
    /// signature, then the archive's digests and every file against it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bundle", "builder_id"])]
    pub manifest: Option<PathBuf>,
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
#[command(defer = true)]
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_tree_is_consistent_with_deferred_subcommands() {
        // Builds every deferred subcommand and runs clap's own consistency checks on it.
        Cli::command().debug_assert();
        let run = Cli::try_parse_from(["hermetic", "run", "--no-daemon", "--", "true"]).unwrap();
        assert!(
            run.no_daemon,
            "a global flag after the subcommand still counts"
        );
    }

    /// The command's own arguments, not a mistyped flag of hermetic's.
    fn command_of(args: &[&str]) -> Result<Vec<String>, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        Ok(match cli.command {
            super::Command::Run(run) => run.command,
            super::Command::Build(build) => build.command,
            _ => unreachable!("only run and build take a command"),
        })
    }

    #[test]
    fn an_unknown_flag_before_the_command_is_an_error_not_the_command() {
        for subcommand in ["run", "build"] {
            let err = command_of(&["hermetic", subcommand, "--jsn", "--src", ".", "--", "make"])
                .unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument, "{err}");
            // Everything after the command's first word is the command's, flags included,
            // with or without `--`.
            assert_eq!(
                command_of(&["hermetic", subcommand, "make", "-j4", "--keep-going"]).unwrap(),
                ["make", "-j4", "--keep-going"]
            );
            assert_eq!(
                command_of(&["hermetic", subcommand, "--", "-weird-name", "-x"]).unwrap(),
                ["-weird-name", "-x"]
            );
        }
    }

    /// Every command, one added later included, says what it does in its own words and
    /// shows an example (tests/builds/exit_codes.rs checks the printed help of the
    /// commands it lists).
    #[test]
    fn every_command_has_its_own_summary_and_an_example() {
        fn check(command: &clap::Command, path: &str, summaries: &mut BTreeMap<String, String>) {
            // `help` is clap's own.
            for subcommand in command.get_subcommands().filter(|s| s.get_name() != "help") {
                let path = format!("{path} {}", subcommand.get_name());
                let example = subcommand
                    .get_after_help()
                    .is_some_and(|text| text.to_string().contains("Example"));
                assert!(example, "`{path} --help` has no example");
                let summary = subcommand.get_about().map(|about| about.to_string());
                let summary = summary.unwrap_or_else(|| panic!("`{path}` has no summary"));
                if let Some(other) = summaries.insert(summary.clone(), path.clone()) {
                    panic!("`{path}` and `{other}` both sum themselves up as {summary:?}");
                }
                check(subcommand, &path, summaries);
            }
        }
        let mut command = Cli::command();
        command.build();
        check(&command, "hermetic", &mut BTreeMap::new());
    }

    #[test]
    fn max_size_takes_the_sizes_profiles_take_and_refuses_others_as_usage_errors() {
        let max_size = |size: &str| -> Result<Option<u64>, clap::Error> {
            let cli = Cli::try_parse_from(["hermetic", "cache", "gc", "--max-size", size])?;
            match cli.command {
                super::Command::Cache(super::CacheCommand::Gc { max_size, .. }) => Ok(max_size),
                _ => unreachable!("parsed `cache gc`"),
            }
        };
        assert_eq!(max_size("10G").unwrap(), Some(10 << 30));
        assert_eq!(max_size("10GiB").unwrap(), Some(10 << 30));
        assert_eq!(max_size("0").unwrap(), Some(0));
        let err = max_size("10 parsecs").unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
        assert!(err.to_string().contains("unknown unit `parsecs`"), "{err}");
    }
}

/// Create a key pair for signing build outputs (cosign-compatible).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The private key is ECDSA P-256, encrypted as `cosign generate-key-pair` does \
(scrypt and NaCl secretbox, PEM `ENCRYPTED SIGSTORE PRIVATE KEY`), so cosign can use it and \
hermetic can use cosign's keys. The password comes from HERMETIC_PASSWORD, else \
COSIGN_PASSWORD, else it is empty (allowed, as in cosign; a warning is printed).\n\n\
PREFIX.key is created with mode 0600 and PREFIX.pub with mode 0644. Existing files are never \
overwritten.\n\n\
Exit status: 0 written, 2 a key file already exists or the directory can't be written, \
5 internal error.\n\n\
Examples:\n  hermetic keygen\n  hermetic keygen --output-key-prefix keys/release"
)]
pub struct KeygenArgs {
    /// Write the private key to PREFIX.key and the public key to PREFIX.pub.
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    pub output_key_prefix: PathBuf,
}
