//! `hermetic drill`'s arguments (the commands are in `commands/drill/`): kept beside
//! `args.rs`, which the commands import, so that the arguments import no command.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CacheRemoteArgs;

/// `hermetic drill ...`.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DrillCommand {
    /// Build every case of a plan twice (and more, varied) through the daemon, never from
    /// the cache, and give each a verdict against its own runs and its history.
    #[command(
        after_help = "Each case runs as a dual build (plus `extra_runs` more) submitted to the \
daemon like any build: its jobs show in `hermetic jobs`, its logs in `hermetic logs ID`. \
Verdicts: reproducible; nondeterministic (the runs differ: the differing files are listed); \
drifted (the runs agree, but the digest differs from the last one this history recorded for \
the same inputs, i.e. the same cache key, or from the case's expect_sha256: the old and new \
digests, when and which runner are named); failed (it did not build). The drill is recorded \
in the daemon's history whatever its result.\n\n\
The plan (TOML, paths relative to the plan file):\n  version = 1\n  [[case]]\n  \
name = \"hello\"\n  src = \"examples/hello\"        # or git = \"URL-or-path\" and rev = \"COMMIT\"\n  \
command = [\"make\"]\n  outputs = [\"out\"]             # the default\n  \
profile = \"default\"           # or image = \"REF@sha256:...\"\n  \
expect_sha256 = \"...\"         # optional: the archive digest this case must give\n  \
extra_runs = 0                # optional: more varied runs\n\n\
Exit status: 0 every case reproducible, 1 a case failed to build, 2 usage error (a bad plan), \
3 a case nondeterministic or drifted (and none failed), 5 the daemon can't be reached.\n\n\
Examples:\n  hermetic drill run drills.toml\n  \
hermetic drill run drills.toml --json drill.json --junit drill.xml --markdown \"$GITHUB_STEP_SUMMARY\" --html drill.html"
    )]
    Run(DrillRunArgs),
    /// List recorded drills and their results, newest first.
    #[command(
        after_help = "Exit status: 0 listed, 2 usage error, 5 the daemon can't be reached.\n\n\
With --remote, the results every runner published to the registry (`drill run --publish`, or \
`[cache] remote`) are listed instead, newest first; only those signed by a --trust-key (or a key of \
`[cache] trust_keys`) are shown, the others counted as ignored.\n\n\
Examples:\n  hermetic drill history\n  hermetic drill history --case hello --json\n  \
hermetic drill history --remote oci://registry.example/ci --trust-key fleet.pub"
    )]
    History(DrillHistoryArgs),
    /// The freshness gate: did a drill of this kind pass recently enough?
    #[command(
        after_help = "Prints one line: the kind, the last complete drill's age and result. \
Meant for a release workflow, which should not ship what has not been drilled lately.\n\n\
Exit status: 0 the last drill of the kind finished less than --max-age ago and passed, 1 it \
is older, it failed, or there is none, 2 usage error, 5 the daemon can't be reached.\n\n\
Examples:\n  hermetic drill status --max-age 7d\n  hermetic drill status --max-age 36h --kind poison --json"
    )]
    Status(DrillStatusArgs),
    /// Keep a drill report (hermetic.drill/v1 JSON, e.g. another runner's --json) in this
    /// daemon's history.
    #[command(
        after_help = "The report is kept as it is; a drill id already in the history is \
refused.\n\nExit status: 0 recorded, 2 not a readable drill report or already recorded, 5 \
the daemon can't be reached.\n\nExample:\n  hermetic drill record drill.json"
    )]
    Record(DrillRecordArgs),
    /// Rebuild a released archive from its signed provenance and compare: good or bad.
    #[command(
        after_help = "Before anything is built: the bundle's signature must be by a \
--trust-key (never a key the bundle names), the statement hermetic's dual-run provenance, \
the --src tree's digest the one it records, and the profile (the statement's, or --profile) \
the file it records, byte for byte. Then the statement's command, outputs, \
SOURCE_DATE_EPOCH (and image) are built as a daemon job, never from the cache, and the \
archive is compared with the statement's subject: good (identical) or bad. With --artifact \
(the released archive), a bad rebuild lists the files that differ.\n\n\
Exit status: 0 good, 1 the rebuild failed to build, 2 usage error, 3 bad, 4 refused (the \
reason is named), 5 the daemon can't be reached.\n\n\
Examples:\n  hermetic drill rebuild --bundle prov.json --src ./project --trust-key release.pub\n  \
hermetic drill rebuild --bundle prov.json --src . --trust-key release.pub --artifact dist.tar.zst --json"
    )]
    Rebuild(DrillRebuildArgs),
    /// Attack a scratch copy of this deployment's cache with every poisoning attack of the
    /// catalog; exit 0 only when each was refused.
    #[command(after_help = POISON_AFTER_HELP)]
    Poison(PoisonArgs),
}

#[derive(Debug, Args)]
pub struct DrillRebuildArgs {
    /// The provenance bundle (`hermetic build --provenance`).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The source tree to rebuild from; its digest must be the statement's.
    #[arg(long, value_name = "DIR")]
    pub src: PathBuf,
    /// A public key trusted to have signed the bundle (repeatable).
    #[arg(long = "trust-key", value_name = "PUB", required = true)]
    pub trust_keys: Vec<PathBuf>,
    /// The profile to build with, when the statement's is not found here by its name or
    /// path; its bytes must be the recorded ones.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// The released archive: a bad rebuild is compared with it file by file.
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// Keep the rebuilt archive here (default: removed).
    #[arg(long, value_name = "FILE")]
    pub keep: Option<PathBuf>,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

// Where `drill run` writes its reports (each optional; `-` for stdout). A plain comment:
// a doc comment on a flattened group replaces the command's own summary.
#[derive(Debug, Args)]
pub struct DrillReportArgs {
    /// Write the hermetic.drill/v1 report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML: one testcase per case, a failure with its reason for each that is
    /// not reproducible (GitLab, Jenkins and GitHub test reporters read it).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary (e.g. to $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write one self-contained HTML page: the results, each failing case's differences,
    /// and charts of pass rate and duration per case over the history.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DrillRunArgs {
    /// The drill plan (TOML).
    pub plan: PathBuf,
    /// The name this runner's results carry (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub runner: Option<String>,
    /// How many earlier drills the HTML report's charts cover.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub history_limit: usize,
    #[command(flatten)]
    pub reports: DrillReportArgs,
    #[command(flatten)]
    pub fleet: DrillFleetArgs,
    /// The key that signs this runner's published results (password from
    /// HERMETIC_PASSWORD or COSIGN_PASSWORD; default: `[cache] sign_key`).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
}

// The fleet: drill results shared through a registry (docs/drills.md). A plain comment: a
// doc comment on a flattened group replaces the command's own summary.
#[derive(Debug, Args)]
pub struct DrillFleetArgs {
    /// Share results with the fleet through this registry, oci://HOST[:PORT]/REPO (results
    /// in REPO/drills); default: `[cache] remote` when the config sets one. Each case is
    /// then also compared with the other runners' results for the same inputs.
    #[arg(long, value_name = "URL")]
    pub publish: Option<String>,
    /// A public key whose fleet results are trusted (repeatable; besides `[cache]
    /// trust_keys` and this runner's own key). Results signed otherwise are ignored.
    #[arg(long = "trust-key", value_name = "PUB")]
    pub trust_keys: Vec<PathBuf>,
    /// Speak plain HTTP to a registry that is not on loopback (loopback always may).
    #[arg(long)]
    pub registry_plain_http: bool,
}

#[derive(Debug, Args)]
pub struct DrillHistoryArgs {
    /// Only this case (or attack), in each drill that has it.
    #[arg(long, value_name = "NAME")]
    pub case: Option<String>,
    /// Only drills of this kind.
    #[arg(long, value_name = "KIND", value_parser = ["determinism", "poison"])]
    pub kind: Option<String>,
    /// Show at most N drills.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Print the list (schema hermetic.daemon/v1, each drill hermetic.drill/v1) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Read the fleet's results from this registry (oci://HOST[:PORT]/REPO; alone:
    /// `[cache] remote`) instead of this daemon's history: only those signed by a trusted
    /// key.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub remote: Option<String>,
    /// With --remote: a public key whose results are trusted (repeatable; besides
    /// `[cache] trust_keys`).
    #[arg(long = "trust-key", value_name = "PUB", requires = "remote")]
    pub trust_keys: Vec<PathBuf>,
    /// With --remote: speak plain HTTP to a registry that is not on loopback.
    #[arg(long, requires = "remote")]
    pub registry_plain_http: bool,
}

#[derive(Debug, Args)]
pub struct DrillStatusArgs {
    /// How old the last drill may be: a number with s, m, h or d (e.g. 7d, 36h).
    #[arg(long, value_name = "AGE", default_value = "7d")]
    pub max_age: String,
    /// Which drills count.
    #[arg(long, value_name = "KIND", default_value = "determinism", value_parser = ["determinism", "poison"])]
    pub kind: String,
    /// Print one JSON object on stdout instead of the line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrillRecordArgs {
    /// The report (hermetic.drill/v1 JSON).
    pub report: PathBuf,
}

const POISON_AFTER_HELP: &str = "The real cache is never written: it is copied into a scratch \
directory beside it (--scratch-dir to put it elsewhere). A real build stores an entry there \
in a scope of the drill's own, drill-<id>, signed by a throwaway key only the drill trusts \
(and, with --sign-key, the same entry signed by your key, read with your --trust-key keys). \
Each attack of the catalog (bytes swapped, signatures forged, keys replayed, hostile archives, \
...; docs/drills-poison.md lists them) is made against a fresh copy of that entry and run as \
a real restore. An attack counts as refused only when the restore refused it at the expected \
step, quarantined it with a reason, logged the event, left the destination untouched, and the \
next lookup was a miss; once per drill a real build over a poisoned entry must give the honest \
bytes. With a registry (--cache-remote, or the config's), its attacks run against a scratch \
repository REPO/drill-<id>, whose tags are deleted afterwards where the registry allows \
deletion.\n\n\
It also checks the deployment and reports findings (they do not change the exit status): \
trusted keys that cannot be read, trusted scopes that accept the key untrusted builds sign \
with, cache directories others can write.\n\n\
Exit status: 0 every attack refused, 3 at least one accepted (named on stdout and in the \
report), 1 the drill could not run (its build failed, the honest entry did not restore), \
2 usage error.\n\n\
Examples:\n  hermetic drill poison --cache-dir /var/cache/hermetic --trust-key ci.pub\n  \
hermetic drill poison --cache-dir DIR --cache-remote oci://registry.example/ci/cache \
--trust-key ci.pub --sign-key ci.key --json poison.json";

#[derive(Debug, Args)]
pub struct PoisonArgs {
    /// The deployment's cache dir (default: the config's `[cache] dir`); only read.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The deployment's trusted public keys (with the config's `[cache] trust_keys`).
    #[arg(long = "trust-key", value_name = "PUB")]
    pub trust_keys: Vec<PathBuf>,
    /// Your signing key (password from HERMETIC_PASSWORD or COSIGN_PASSWORD): an entry it
    /// signs is attacked too (default: the config's `[cache] sign_key`).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    #[command(flatten)]
    pub reports: DrillReportArgs,
    /// How many earlier poison drills the HTML report's charts cover.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub history_limit: usize,
    /// The deployment's state dir, whose local key the trust checks look at (default: the
    /// config's); never written.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where the scratch copy goes (default: the directory the cache dir is in).
    #[arg(long, value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,
    /// A directory copied into the drill's entry (repeatable; as the sandbox sees it, e.g.
    /// /usr/lib/gcc), so that the attacks run on an entry as large as yours.
    #[arg(long, value_name = "DIR")]
    pub payload: Vec<PathBuf>,
    /// The profile of the drill's builds.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub profile: String,
    #[command(flatten)]
    pub remote: CacheRemoteArgs,
}
