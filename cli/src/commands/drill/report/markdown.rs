//! A Markdown summary, for `$GITHUB_STEP_SUMMARY` or a merge request comment.
use std::fmt::Write;

use hermetic_contract::report::DrillReport;

pub fn markdown(report: &DrillReport) -> String {
    let rows = report.results();
    let passed = rows.iter().filter(|row| row.passed).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## hermetic drill ({}): {}\n\n{passed} of {} passed on `{}`, {} (drill `{}`, exit {}).\n",
        report.kind,
        if report.passed { "passed" } else { "failed" },
        rows.len(),
        cell(&report.runner),
        report.finished,
        cell(&report.id),
        report.exit_code
    );
    let digests = !report.cases.is_empty();
    out.push_str(if digests {
        "| | Case | Verdict | Digest | Duration | Reason |\n|---|---|---|---|---:|---|\n"
    } else {
        "| | Attack | Outcome | Duration | Detail |\n|---|---|---|---:|---|\n"
    });
    for row in &rows {
        let mark = if row.passed { "✅" } else { "❌" };
        let digest = if digests {
            format!(" `{}` |", cell(row.digest.unwrap_or("-")))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {mark} | {} | {} |{digest} {:.1} s | {} |",
            cell(row.name),
            row.result,
            row.duration_ms as f64 / 1000.0,
            cell(row.reason.unwrap_or(""))
        );
    }
    for row in rows.iter().filter(|row| !row.differences.is_empty()) {
        let _ = writeln!(out, "\n### Differences: {}\n", cell(row.name));
        for difference in row.differences {
            let _ = writeln!(out, "- {} `{}`", difference.kind, cell(&difference.path));
        }
    }
    out
}

/// Text safe in a table cell: no line break, no column separator, no HTML.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{determinism, poison};
    use super::*;

    #[test]
    fn the_summary_has_a_row_per_case_and_lists_differences() {
        let text = markdown(&determinism());
        assert!(text.contains("1 of 4 passed"), "{text}");
        assert!(
            text.contains("| ❌ | stamp&lt;&> | nondeterministic |"),
            "{text}"
        );
        assert!(
            text.contains("### Differences: stamp&lt;&>\n\n- content `out/time.txt`"),
            "{text}"
        );
        let text = markdown(&poison());
        assert!(text.contains("| ❌ | tag-moved | accepted |"), "{text}");
    }
}
