//! JUnit XML: one `<testsuite>` per drill, one `<testcase>` per case or attack, a
//! `<failure>` with the reason for each that did not pass. The subset GitLab, Jenkins and
//! GitHub reporters read (tests/drills/junit.xsd is the schema the tests hold it to).
use std::fmt::Write;

use hermetic_contract::report::DrillReport;

use super::escape_xml as esc;

pub fn junit(report: &DrillReport) -> String {
    let rows = report.results();
    let failures = rows.iter().filter(|row| !row.passed).count();
    let total_secs: f64 = rows.iter().map(|row| row.duration_ms as f64 / 1000.0).sum();
    let suite = format!("hermetic drill {}", report.kind);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{total_secs:.3}\">",
        esc(&suite),
        rows.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{total_secs:.3}\" timestamp=\"{}\" hostname=\"{}\" id=\"{}\">",
        esc(&suite),
        rows.len(),
        // JUnit's timestamp is ISO 8601 without a zone (its schema's xs:dateTime is fine
        // with one, but some readers are not).
        esc(report.started.trim_end_matches('Z')),
        esc(&report.runner),
        esc(&report.id)
    );
    let classname = format!("hermetic.drill.{}", report.kind);
    for row in &rows {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            esc(row.name),
            esc(&classname),
            row.duration_ms as f64 / 1000.0
        );
        if row.passed {
            out.push_str("/>\n");
            continue;
        }
        let reason = row.reason.unwrap_or(row.result);
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\" type=\"{}\">{}",
            esc(reason),
            esc(row.result),
            esc(&format!("{}: {reason}", row.result))
        );
        for difference in row.differences {
            let _ = writeln!(
                out,
                "{}",
                esc(&format!("  {} {}", difference.kind, difference.path))
            );
        }
        out.push_str("</failure>\n    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{determinism, poison};
    use super::*;

    #[test]
    fn each_case_is_a_testcase_and_each_that_did_not_pass_a_failure() {
        let xml = junit(&determinism());
        assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 3, "{xml}");
        assert!(xml.contains("tests=\"4\" failures=\"3\""), "{xml}");
        assert!(xml.contains("name=\"stamp&lt;&amp;&gt;\""), "{xml}");
        assert!(xml.contains("type=\"failed\""), "{xml}");
        assert!(xml.contains("content out/time.txt"), "{xml}");
        let xml = junit(&poison());
        assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
        assert!(xml.contains("type=\"accepted\""), "{xml}");
    }
}
