//! `hermetic drill history`, `drill status` (the freshness gate) and `drill record`: the
//! daemon's drill history, read and added to.
use std::time::{Duration, SystemTime};

use hermetic::exit_code as exit;
use hermetic::repro::fleet::{FleetResult, FLEET_SCHEMA};
use hermetic::timestamp::parse_rfc3339;
use hermetic_contract::report::{DrillKind, DrillReport};
use serde::Serialize;

use crate::args::drill::{DrillHistoryArgs, DrillRecordArgs, DrillStatusArgs};
use crate::client::{autostart, Client, ClientError};
use crate::Failure;

fn connect() -> Result<Client, Failure> {
    autostart::connect_or_start().map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))
}

fn daemon_failure(err: ClientError) -> Failure {
    let code = match err.code() {
        Some("bad-request" | "exists") => exit::USAGE,
        _ => exit::SANDBOX_FAILED,
    };
    Failure::new(code, err)
}

pub fn history(args: DrillHistoryArgs) -> Result<i32, Failure> {
    if args.remote.is_some() {
        return remote_history(&args);
    }
    let list = connect()?
        .drills(
            &[
                ("kind", args.kind.as_deref()),
                ("case", args.case.as_deref()),
            ],
            args.limit,
        )
        .map_err(daemon_failure)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(exit::SUCCESS);
    }
    for drill in &list.drills {
        println!(
            "{}  {}  {}  {}  {}  exit {}",
            drill.finished,
            drill.kind,
            if drill.passed { "passed" } else { "failed" },
            drill.runner,
            drill.id,
            drill.exit_code
        );
        for case in &drill.cases {
            println!(
                "    {:<16} {:<24} {:>8} ms  {}{}",
                case.verdict,
                case.name,
                case.duration_ms,
                case.digest.as_deref().unwrap_or("-"),
                case.reason
                    .as_deref()
                    .map(|reason| format!("  ({reason})"))
                    .unwrap_or_default()
            );
        }
        for attack in &drill.attacks {
            println!(
                "    {:<16} {:<24} {:>8} ms  {}",
                attack.outcome, attack.name, attack.duration_ms, attack.detail
            );
        }
    }
    Ok(exit::SUCCESS)
}

/// What `drill history --remote --json` prints.
#[derive(Serialize)]
struct RemoteHistory {
    schema: &'static str,
    repository: String,
    /// Trusted results, newest first.
    results: Vec<FleetResult>,
    /// Results not shown: not signed by a trusted key, not about their inputs, unreadable.
    ignored: usize,
}

fn remote_history(args: &DrillHistoryArgs) -> Result<i32, Failure> {
    let fleet = super::fleet::connect(
        args.remote.as_deref(),
        &args.trust_keys,
        None,
        false,
        args.registry_plain_http,
    )?
    .ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            anyhow::anyhow!(
                "--remote needs a URL, or `remote` in the [cache] table of the config file"
            ),
        )
    })?;
    let unreachable =
        |err: hermetic::repro::fleet::FleetError| Failure::new(exit::SANDBOX_FAILED, err);
    let mut history = RemoteHistory {
        schema: FLEET_SCHEMA,
        repository: fleet.fleet.repository(),
        results: Vec::new(),
        ignored: 0,
    };
    for key in fleet.fleet.keys().map_err(unreachable)? {
        let results = fleet
            .fleet
            .results(&key, &fleet.trusted)
            .map_err(unreachable)?;
        history.ignored += results.ignored;
        history.results.extend(
            results
                .trusted
                .into_iter()
                .filter(|result| args.case.as_ref().is_none_or(|case| result.case == *case)),
        );
    }
    history
        .results
        .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.drill.cmp(&a.drill)));
    history.results.truncate(args.limit);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&history).unwrap_or_default()
        );
        return Ok(exit::SUCCESS);
    }
    for result in &history.results {
        println!(
            "{}  {:<16} {:<24} {:<16} {}  key {}",
            result.time,
            result.runner,
            result.case,
            result.verdict,
            result.digest.as_deref().unwrap_or("-"),
            &result.cache_key[..16]
        );
    }
    if history.ignored > 0 {
        eprintln!(
            "hermetic: {} result(s) in {} ignored: not signed by a trusted key, or unreadable",
            history.ignored, history.repository
        );
    }
    Ok(exit::SUCCESS)
}

/// What `drill status --json` prints.
#[derive(Serialize)]
struct Status<'a> {
    kind: &'a str,
    fresh: bool,
    max_age_secs: u64,
    /// Absent when there is no drill of the kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    age_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    passed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drill: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished: Option<&'a str>,
    message: String,
}

pub fn status(args: DrillStatusArgs) -> Result<i32, Failure> {
    let max_age = parse_age(&args.max_age).map_err(|err| Failure::new(exit::USAGE, err))?;
    let kind = DrillKind::parse(&args.kind)
        .ok_or_else(|| Failure::new(exit::USAGE, anyhow::anyhow!("--kind {}", args.kind)))?;
    let list = connect()?
        .drills(&[("kind", Some(kind.as_str()))], 1)
        .map_err(daemon_failure)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let last: Option<&DrillReport> = list.drills.first();
    let status = match last {
        None => Status {
            kind: kind.as_str(),
            fresh: false,
            max_age_secs: max_age.as_secs(),
            age_secs: None,
            passed: None,
            drill: None,
            finished: None,
            message: format!("{kind}: stale: no {kind} drill recorded"),
        },
        Some(drill) => {
            let finished = parse_rfc3339(&drill.finished).unwrap_or_default();
            // A clock set back makes a drill look younger than zero: it counts as new.
            let age = (now - finished).max(0) as u64;
            let young = age <= max_age.as_secs();
            let fresh = young && drill.passed;
            Status {
                kind: kind.as_str(),
                fresh,
                max_age_secs: max_age.as_secs(),
                age_secs: Some(age),
                passed: Some(drill.passed),
                drill: Some(&drill.id),
                finished: Some(&drill.finished),
                message: format!(
                    "{kind}: {}: last drill {} finished {} ago ({}), {}{}",
                    if fresh { "fresh" } else { "stale" },
                    drill.id,
                    human_age(age),
                    drill.finished,
                    if drill.passed { "passed" } else { "failed" },
                    if young {
                        String::new()
                    } else {
                        format!(", older than {}", args.max_age)
                    }
                ),
            }
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
    } else {
        println!("{}", status.message);
    }
    Ok(if status.fresh {
        exit::DRILL_FRESH
    } else {
        exit::DRILL_STALE
    })
}

pub fn record(args: DrillRecordArgs) -> Result<i32, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    let text = std::fs::read(&args.report)
        .map_err(|err| usage(anyhow::anyhow!("{}: {err}", args.report.display())))?;
    let report: DrillReport = serde_json::from_slice(&text).map_err(|err| {
        usage(anyhow::anyhow!(
            "{}: not a drill report: {err}",
            args.report.display()
        ))
    })?;
    let recorded = connect()?.record_drill(&report).map_err(daemon_failure)?;
    println!("recorded drill {} ({})", recorded.id, recorded.kind);
    Ok(exit::SUCCESS)
}

/// `7d`, `36h`, `90m`, `600s`, or plain seconds.
fn parse_age(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("--max-age {text}: give a number with s, m, h or d (e.g. 7d)"),
    };
    let number: u64 = number.parse().map_err(|_| {
        anyhow::anyhow!("--max-age {text}: give a number with s, m, h or d (e.g. 7d)")
    })?;
    number
        .checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| anyhow::anyhow!("--max-age {text}: too large"))
}

/// An age as a person reads it: the two largest units.
fn human_age(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m {}s", secs % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_a_unit() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("36h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_age("600").unwrap(), Duration::from_secs(600));
        for bad in ["", "d", "7w", "-1d", "1.5d", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert_eq!(human_age(90_061), "1d 1h");
        assert_eq!(human_age(59), "59s");
    }
}
