//! `hermetic drill`'s arguments (the commands are in `commands/drill/`): kept beside
//! `args.rs`, which the commands import, so that the arguments import no command.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CacheRemoteArgs;

/// The drills.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Attack a scratch copy of this deployment's cache with every poisoning attack of the
    /// catalog; exit 0 only when each was refused.
    #[command(after_help = POISON_AFTER_HELP)]
    Poison(PoisonArgs),
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
    /// Write the report (`hermetic.drill/v1`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
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
