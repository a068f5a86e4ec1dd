//! What a drill reports: `hermetic.drill/v1`, written by `hermetic drill run` (a
//! determinism drill: `cases[]`) and `hermetic drill poison` (a cache-poisoning drill:
//! `attacks[]`), kept in the daemon's drill history and rendered as JSON, JUnit,
//! Markdown and HTML (docs/drills.md).
use serde::{Deserialize, Serialize};

use super::repro::Difference;
use crate::names::named_values;

/// The schema name of a drill report, and of each history record.
pub const DRILL_REPORT_SCHEMA: &str = "hermetic.drill/v1";

named_values! {
    /// Which drill a report is of; `hermetic drill status --kind` takes these names.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum DrillKind {
        /// Does everything the plan lists still build bit for bit (`drill run`).
        Determinism = "determinism",
        /// Would the deployed cache refuse a poisoned entry (`drill poison`).
        Poison = "poison",
    }
}

/// One drill: who ran it, when, and what each case or attack gave.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct DrillReport {
    /// Always [`DRILL_REPORT_SCHEMA`].
    pub schema: String,
    pub kind: DrillKind,
    /// Unique per drill (the history's key).
    pub id: String,
    /// Who ran it: the runner's identity (hostname unless configured).
    pub runner: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: String,
    /// True when every case was reproducible, or every attack refused.
    pub passed: bool,
    /// The exit code `hermetic drill` gave for it (docs/drills.md).
    pub exit_code: i32,
    /// Determinism drills: one per plan case, in plan order. Empty for poison drills.
    #[serde(default)]
    pub cases: Vec<CaseResult>,
    /// Poison drills: one per attack of the catalog, in catalog order. Empty for
    /// determinism drills.
    #[serde(default)]
    pub attacks: Vec<AttackResult>,
    /// Poison drills: what the check of the deployment itself found (unreadable trusted
    /// keys, a trusted scope writable by an untrusted key, a cache dir others can write).
    #[serde(default)]
    pub findings: Vec<Finding>,
}

named_values! {
    /// What one determinism-drill case gave.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum CaseVerdict {
        /// Every run gave the same bytes, and so did every earlier record for the same
        /// inputs (and `expect_sha256`, when set).
        Reproducible = "reproducible",
        /// The runs of this drill differ from each other.
        Nondeterministic = "nondeterministic",
        /// The runs agree, but not with an earlier record for the same inputs (this
        /// runner's or another's) or with `expect_sha256`.
        Drifted = "drifted",
        /// The build did not complete.
        Failed = "failed",
    }
}

/// One case or attack of a report, as every rendering and the drill history show it.
pub struct ResultRow<'a> {
    pub name: &'a str,
    /// Its verdict or outcome.
    pub result: &'a str,
    /// A case that was reproducible, an attack that was refused.
    pub passed: bool,
    pub duration_ms: u64,
    /// Why it did not pass (or, for attacks, what was checked).
    pub reason: Option<&'a str>,
    /// A case's archive digest.
    pub digest: Option<&'a str>,
    /// A case's cache key.
    pub cache_key: Option<&'a str>,
    pub differences: &'a [Difference],
}

impl DrillReport {
    /// The report's cases, then its attacks (a report has one or the other), in order.
    pub fn results(&self) -> Vec<ResultRow<'_>> {
        let cases = self.cases.iter().map(|case| ResultRow {
            name: &case.name,
            result: case.verdict.as_str(),
            passed: case.verdict == CaseVerdict::Reproducible,
            duration_ms: case.duration_ms,
            reason: case.reason.as_deref(),
            digest: case.digest.as_deref(),
            cache_key: case.cache_key.as_deref(),
            differences: &case.differences,
        });
        let attacks = self.attacks.iter().map(|attack| ResultRow {
            name: &attack.name,
            result: attack.outcome.as_str(),
            passed: attack.outcome == AttackOutcome::Refused,
            duration_ms: attack.duration_ms,
            reason: Some(&attack.detail),
            digest: None,
            cache_key: None,
            differences: &[],
        });
        cases.chain(attacks).collect()
    }
}

impl CaseVerdict {
    /// Whether a case with this verdict recorded the digest its inputs build to: one that
    /// built, reproducibly or drifted (a nondeterministic digest is one of several and
    /// says nothing). Drift is judged against such records only, this runner's and the
    /// fleet's.
    pub fn has_stable_digest(self) -> bool {
        matches!(self, CaseVerdict::Reproducible | CaseVerdict::Drifted)
    }
}

/// One determinism-drill case.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub verdict: CaseVerdict,
    /// sha256 of the canonical run's archive (`sha256:<hex>`), when it built.
    pub digest: Option<String>,
    /// The cache key of the case's inputs: what "the same inputs" means across drills.
    pub cache_key: Option<String>,
    /// Wall time of the case, all runs included.
    pub duration_ms: u64,
    /// Why it failed, drifted or was nondeterministic, in one line.
    pub reason: Option<String>,
    /// Per-file differences between the runs (nondeterministic) .
    #[serde(default)]
    pub differences: Vec<Difference>,
    /// The earlier record this case drifted from.
    pub drifted_from: Option<DriftRecord>,
    /// The daemon job(s) that ran it.
    #[serde(default)]
    pub jobs: Vec<String>,
}

/// The earlier result a drifted case disagrees with.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct DriftRecord {
    /// `sha256:<hex>` recorded then.
    pub digest: String,
    /// When (RFC 3339) and by which runner; `expect_sha256` when it is the plan's pin.
    pub recorded: String,
    pub runner: String,
}

named_values! {
    /// What the cache did with one poisoned entry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum AttackOutcome {
        /// Refused at the expected step, quarantined, destination untouched, next lookup
        /// a miss, fresh build right.
        Refused = "refused",
        /// Any of those checks failed: the cache would have let the attack through.
        Accepted = "accepted",
    }
}

/// One attack of a poison drill.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct AttackResult {
    /// The catalog's name for it (docs/restore-threats.md, docs/cache-format.md).
    pub name: String,
    /// `local` or `remote`: which store it attacked.
    pub target: String,
    pub outcome: AttackOutcome,
    /// The restore step expected to refuse it, and the one that did (if any).
    pub expected_step: String,
    pub refused_at: Option<String>,
    /// What was checked and what was found, in one line (why it counts as accepted).
    pub detail: String,
    pub duration_ms: u64,
}

/// Something the poison drill found wrong with the deployment itself.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Finding {
    /// A short fixed name, e.g. `trusted-key-unreadable`, `cache-dir-world-writable`.
    pub check: String,
    pub path: Option<String>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_what_it_wrote() {
        let report = DrillReport {
            schema: DRILL_REPORT_SCHEMA.into(),
            kind: DrillKind::Determinism,
            id: "d1".into(),
            runner: "runner-a".into(),
            started: "2026-12-07T00:00:00Z".into(),
            finished: "2026-12-07T00:01:00Z".into(),
            passed: false,
            exit_code: 3,
            cases: vec![CaseResult {
                name: "hello".into(),
                verdict: CaseVerdict::Drifted,
                digest: Some("sha256:aa".into()),
                cache_key: Some("key".into()),
                duration_ms: 1200,
                reason: Some("differs from runner-b's record".into()),
                differences: vec![],
                drifted_from: Some(DriftRecord {
                    digest: "sha256:bb".into(),
                    recorded: "2026-12-06T00:00:00Z".into(),
                    runner: "runner-b".into(),
                }),
                jobs: vec!["j1".into()],
            }],
            attacks: vec![],
            findings: vec![],
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""kind":"determinism""#), "{json}");
        assert!(json.contains(r#""verdict":"drifted""#), "{json}");
        let read: DrillReport = serde_json::from_str(&json).unwrap();
        assert_eq!(read, report);
    }
}
