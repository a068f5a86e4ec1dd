//! `hermetic drill poison` (docs/drills-poison.md): the engine's poison drill with this
//! deployment's cache dir, keys and registry, its builds run in this process as
//! `hermetic build --no-daemon` runs them; a summary on stdout, the drill kept in the
//! daemon's history, and the reports asked for (`--json`, `--junit`, `--markdown`,
//! `--html`).
use hermetic::drill::poison::{self, DrillHost, PoisonOptions, ScratchTags};
use hermetic::signing::Password;
use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{AttackOutcome, AttackResult, BuildReport, DrillReport};

use crate::args::drill::PoisonArgs;
use crate::client::autostart;
use crate::commands::cache::{config, remote_options, usage};
use crate::exit;
use crate::Failure;

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
    // Kept in the daemon's history, like a determinism drill: `drill status --kind poison`
    // and the metrics read it from there.
    let client =
        autostart::connect_or_start().map_err(|error| Failure::new(exit::SANDBOX_FAILED, error))?;
    super::record_and_report(&client, &report, &args.reports, args.history_limit)?;
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
