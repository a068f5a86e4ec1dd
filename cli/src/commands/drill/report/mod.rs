//! Reports of any drill (`hermetic.drill/v1`, determinism cases or poison attacks):
//! JSON, JUnit XML, Markdown and one self-contained HTML page. `drill run` writes them,
//! and `drill poison`: everything here reads the report only through its
//! [`DrillReport::results`].
mod html;
mod junit;
mod markdown;

use std::path::Path;

use hermetic::exit_code as exit;
use hermetic_contract::report::DrillReport;

use crate::args::drill::DrillReportArgs;
use crate::Failure;

pub use html::html;
pub use junit::junit;
pub use markdown::markdown;

/// The report as JSON (`hermetic.drill/v1`), as written by `--json`.
pub fn json(report: &DrillReport) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// A report format: the drill, and its history (newest first), to text.
type Render = fn(&DrillReport, &[DrillReport]) -> String;

/// Writes each report asked for. `history` (newest first, this drill included) feeds the
/// HTML page's charts.
pub fn write_all(
    args: &DrillReportArgs,
    report: &DrillReport,
    history: &[DrillReport],
) -> Result<(), Failure> {
    let outputs: [(&Option<std::path::PathBuf>, &str, Render); 4] = [
        (&args.json, "--json", |report, _| json(report)),
        (&args.junit, "--junit", |report, _| junit(report)),
        (&args.markdown, "--markdown", |report, _| markdown(report)),
        (&args.html, "--html", html),
    ];
    for (path, flag, render) in outputs {
        if let Some(path) = path {
            write(path, &render(report, history)).map_err(|err| {
                Failure::new(
                    exit::USAGE,
                    anyhow::anyhow!("{flag} {}: {err}", path.display()),
                )
            })?;
        }
    }
    Ok(())
}

/// `-` is stdout; a file is replaced whole (written beside it, then renamed), except
/// `$GITHUB_STEP_SUMMARY` (the step's other summaries stay) and what is not a regular
/// file (a fifo, /dev/stderr): those are appended to.
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if path == Path::new("-") {
        return std::io::stdout().lock().write_all(text.as_bytes());
    }
    let step_summary =
        std::env::var_os("GITHUB_STEP_SUMMARY").is_some_and(|summary| Path::new(&summary) == path);
    if step_summary || path.metadata().is_ok_and(|meta| !meta.is_file()) {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)?
            .write_all(text.as_bytes());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// `text` safe in XML and HTML text and attribute values. Characters XML 1.0 forbids
/// (control characters other than tab and newlines) become U+FFFD: a build's message may
/// hold anything.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use hermetic_contract::report::{
        AttackOutcome, AttackResult, CaseResult, CaseVerdict, Difference, DifferenceKind,
        DriftRecord, DrillKind, DRILL_REPORT_SCHEMA,
    };

    use super::*;

    pub fn determinism() -> DrillReport {
        let case = |name: &str, verdict: CaseVerdict, reason: Option<&str>| CaseResult {
            name: name.into(),
            verdict,
            digest: Some(format!("sha256:{:064}", 1)),
            cache_key: Some("k".into()),
            duration_ms: 1500,
            reason: reason.map(Into::into),
            differences: vec![],
            drifted_from: None,
            jobs: vec!["1".into()],
        };
        let mut nondeterministic = case(
            "stamp<&>",
            CaseVerdict::Nondeterministic,
            Some("1 path(s) differ \"between\" runs \u{1}"),
        );
        nondeterministic.differences.push(Difference {
            path: "out/time.txt".into(),
            kind: DifferenceKind::Content,
            digest_a: Some("aa".into()),
            digest_b: Some("bb".into()),
        });
        let mut drifted = case("drift", CaseVerdict::Drifted, Some("differs"));
        drifted.drifted_from = Some(DriftRecord {
            digest: "sha256:00".into(),
            recorded: "2026-12-01T00:00:00Z".into(),
            runner: "runner-b".into(),
        });
        DrillReport {
            schema: DRILL_REPORT_SCHEMA.into(),
            kind: DrillKind::Determinism,
            id: "runner-a-1".into(),
            runner: "runner-a".into(),
            started: "2026-12-07T00:00:00Z".into(),
            finished: "2026-12-07T00:01:00Z".into(),
            passed: false,
            exit_code: exit::DRILL_CASE_FAILED,
            cases: vec![
                case("hello", CaseVerdict::Reproducible, None),
                nondeterministic,
                case(
                    "broken",
                    CaseVerdict::Failed,
                    Some("the command exited with status 1"),
                ),
                drifted,
            ],
            attacks: vec![],
            findings: vec![],
        }
    }

    pub fn poison() -> DrillReport {
        let attack = |name: &str, outcome| AttackResult {
            name: name.into(),
            target: "local".into(),
            outcome,
            expected_step: "signature".into(),
            refused_at: Some("signature".into()),
            detail: "refused at signature".into(),
            duration_ms: 12,
        };
        DrillReport {
            kind: DrillKind::Poison,
            id: "p1".into(),
            passed: false,
            exit_code: 3,
            cases: vec![],
            attacks: vec![
                attack("byte-flipped", AttackOutcome::Refused),
                attack("tag-moved", AttackOutcome::Accepted),
            ],
            ..determinism()
        }
    }

    #[test]
    fn rows_cover_cases_and_attacks_with_whether_they_passed() {
        let report = determinism();
        let rows = report.results();
        let passed: Vec<(&str, bool)> = rows.iter().map(|row| (row.name, row.passed)).collect();
        assert_eq!(
            passed,
            [
                ("hello", true),
                ("stamp<&>", false),
                ("broken", false),
                ("drift", false)
            ]
        );
        let report = poison();
        let rows = report.results();
        let passed: Vec<(&str, bool)> = rows.iter().map(|row| (row.name, row.passed)).collect();
        assert_eq!(passed, [("byte-flipped", true), ("tag-moved", false)]);
    }

    #[test]
    fn json_reads_back_as_the_report() {
        let report = determinism();
        let read: DrillReport = serde_json::from_str(&json(&report)).unwrap();
        assert_eq!(read, report);
    }

    #[test]
    fn a_report_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.md");
        std::fs::write(&file, "old text that is longer\n").unwrap();
        write(&file, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
        assert!(!dir.path().join("report.md.partial").exists());
    }

    #[test]
    fn escaping_leaves_no_markup_and_no_forbidden_character() {
        assert_eq!(
            escape_xml("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}\n"
        );
    }
}
