//! `hermetic drill poison` (docs/drills-poison.md): the engine's poison drill with this
//! deployment's cache dir, keys and registry, its builds run in this process as
//! `hermetic build --no-daemon` runs them; a summary on stdout and the
//! `hermetic.drill/v1` report with `--json`.
use std::path::PathBuf;

use clap::Args;
use hermetic::drill::poison::{self, DrillHost, PoisonOptions, ScratchTags};
use hermetic::signing::Password;
use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{AttackOutcome, AttackResult, BuildReport, DrillReport};

use crate::args::CacheRemoteArgs;
use crate::commands::cache::{config, remote_options, usage};
use crate::exit;
use crate::Failure;

pub const AFTER_HELP: &str = "The real cache is never written: it is copied into a scratch \
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

/// The drill's builds, in this process, as `hermetic build --no-daemon` runs them (their
/// log goes to stderr); the attacks, one line each on stdout as they are judged.
struct InProcess;

impl DrillHost for InProcess {
    fn build(&mut self, request: &BuildRequest) -> Result<BuildReport, String> {
        let log = || -> std::io::Result<Box<dyn std::io::Write + Send>> {
            Ok(Box::new(std::io::stderr()))
        };
        hermetic::build::execute(request, &log, None, None)
            .map_err(|error| hermetic::errors::Chain(&error).to_string())
    }

    fn judged(&mut self, attack: &AttackResult) {
        println!("{}", line(attack));
    }
}

fn line(attack: &AttackResult) -> String {
    let mark = match attack.outcome {
        AttackOutcome::Refused => "refused ",
        AttackOutcome::Accepted => "ACCEPTED",
    };
    format!(
        "{mark} {:<6} {:<45} {:>6} ms  {}",
        attack.target, attack.name, attack.duration_ms, attack.detail
    )
}

pub fn poison(args: PoisonArgs) -> Result<i32, Failure> {
    let config = config()?;
    let cache_dir = args
        .cache_dir
        .clone()
        .or(config.cache.dir.clone())
        .ok_or_else(|| {
            usage(anyhow::anyhow!(
                "no cache directory: give --cache-dir or set `dir` in the [cache] table of the config file"
            ))
        })?;
    let trust_keys = config
        .cache
        .trust_keys
        .iter()
        .chain(&args.trust_keys)
        .cloned()
        .collect();
    let options = PoisonOptions {
        cache_dir,
        scratch_parent: args.scratch_dir.clone(),
        trust_keys,
        sign_key: args.sign_key.clone().or(config.cache.sign_key.clone()),
        state_dir: args.state_dir.clone().unwrap_or(config.state_dir.clone()),
        remote: remote_options(&args.remote, false, &config.cache)?,
        payload: args.payload.clone(),
        profile: args.profile.clone(),
        runner: nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".to_owned()),
    };
    let mut tags = ScratchTags::default();
    let report = poison::run(&options, &Password::from_env(), &mut InProcess, &mut tags)
        .map_err(|error| Failure::new(exit::BUILD_FAILED, error));
    print_tags(&tags);
    let report = report?;
    summary(&report);
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).expect("reports serialise");
        std::fs::write(path, json).map_err(|error| {
            usage(anyhow::Error::new(error).context(format!("--json {}", path.display())))
        })?;
    }
    Ok(report.exit_code)
}

fn print_tags(tags: &ScratchTags) {
    let Some(repository) = &tags.repository else {
        return;
    };
    if tags.left.is_empty() {
        println!(
            "scratch repository {repository}: {} tag(s) deleted",
            tags.removed.len()
        );
    }
    for (tag, why) in &tags.left {
        println!("scratch repository {repository}: tag {tag} left behind: {why}");
    }
}

fn summary(report: &DrillReport) {
    let accepted: Vec<&AttackResult> = report
        .attacks
        .iter()
        .filter(|attack| attack.outcome == AttackOutcome::Accepted)
        .collect();
    for finding in &report.findings {
        println!("finding  {}: {}", finding.check, finding.detail);
    }
    if accepted.is_empty() {
        println!(
            "poison drill {}: passed, all {} attacks refused, {} finding(s)",
            report.id,
            report.attacks.len(),
            report.findings.len()
        );
    } else {
        println!(
            "poison drill {}: FAILED, {} of {} attacks accepted: {}",
            report.id,
            accepted.len(),
            report.attacks.len(),
            accepted
                .iter()
                .map(|attack| format!("{} ({})", attack.name, attack.target))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
