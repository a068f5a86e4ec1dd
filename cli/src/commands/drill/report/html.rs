//! One self-contained HTML page: the results table, the differences of each failing case
//! and, over the history, each case's pass rate and duration drawn as inline SVG. No
//! script, no stylesheet or font from elsewhere: it opens from a CI artifact store offline.
use std::collections::BTreeMap;
use std::fmt::Write;

use hermetic_contract::report::DrillReport;

use super::escape_xml as esc;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];
const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
tr.passed td.result{color:#2a7d2a}tr.failed td.result{color:#b00020;font-weight:bold}\
code{font-size:90%}svg{border:1px solid #ddd;margin:0.5em 0}";

/// `history`: earlier drills of the same kind, newest first (this one may be among them).
pub fn html(report: &DrillReport, history: &[DrillReport]) -> String {
    let rows = report.results();
    let passed = rows.iter().filter(|row| row.passed).count();
    let title = format!(
        "hermetic drill ({}) {}: {}",
        report.kind,
        report.id,
        if report.passed { "passed" } else { "failed" }
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p id=\"summary\">{passed} of {} passed on <b>{}</b>, {} to {}, exit {}.</p>",
        esc(&title),
        rows.len(),
        esc(&report.runner),
        esc(&report.started),
        esc(&report.finished),
        report.exit_code
    );
    out.push_str("<h2>Results</h2>\n<table id=\"results\"><thead><tr><th>Name</th><th>Result</th><th>Digest</th><th>Duration</th><th>Reason</th></tr></thead><tbody>\n");
    for row in &rows {
        let _ = writeln!(
            out,
            "<tr class=\"row {}\"><td class=\"name\">{}</td><td class=\"result\">{}</td><td><code>{}</code></td><td>{:.1} s</td><td>{}</td></tr>",
            if row.passed { "passed" } else { "failed" },
            esc(row.name),
            esc(row.result),
            esc(row.digest.unwrap_or("")),
            row.duration_ms as f64 / 1000.0,
            esc(row.reason.unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>\n");
    let failing: Vec<_> = rows.iter().filter(|row| !row.passed).collect();
    if !failing.is_empty() {
        out.push_str("<h2>Differences</h2>\n");
        for row in failing {
            let _ = writeln!(
                out,
                "<section class=\"failing\"><h3>{}: {}</h3><p>{}</p>",
                esc(row.name),
                esc(row.result),
                esc(row.reason.unwrap_or(""))
            );
            if !row.differences.is_empty() {
                out.push_str("<table class=\"differences\"><tr><th>Path</th><th>Kind</th><th>Run a (BLAKE3)</th><th>Run b (BLAKE3)</th></tr>\n");
                for difference in row.differences {
                    let _ = writeln!(
                        out,
                        "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                        esc(&difference.path),
                        difference.kind,
                        esc(difference.digest_a.as_deref().unwrap_or("-")),
                        esc(difference.digest_b.as_deref().unwrap_or("-"))
                    );
                }
                out.push_str("</table>\n");
            }
            out.push_str("</section>\n");
        }
    }
    let series = Series::of(report, history);
    out.push_str("<h2>History</h2>\n");
    let _ = writeln!(
        out,
        "<p>Over the last {} drill(s) of this kind.</p>",
        series.drills
    );
    pass_rate_chart(&mut out, &series);
    duration_chart(&mut out, &series);
    out.push_str("</body></html>\n");
    out
}

/// Per case (or attack): (passed, duration in ms) per drill, oldest first, `None` where
/// a drill did not have it.
struct Series {
    drills: usize,
    by_name: BTreeMap<String, Vec<Option<(bool, u64)>>>,
}

impl Series {
    fn of(report: &DrillReport, history: &[DrillReport]) -> Series {
        let mut drills: Vec<&DrillReport> = history.iter().rev().collect();
        if !history.iter().any(|drill| drill.id == report.id) {
            drills.push(report);
        }
        let mut by_name: BTreeMap<String, Vec<Option<(bool, u64)>>> = BTreeMap::new();
        for row in report.results() {
            by_name.insert(row.name.to_owned(), vec![None; drills.len()]);
        }
        for (index, drill) in drills.iter().enumerate() {
            for row in drill.results() {
                if let Some(points) = by_name.get_mut(row.name) {
                    points[index] = Some((row.passed, row.duration_ms));
                }
            }
        }
        Series {
            drills: drills.len(),
            by_name,
        }
    }
}

fn pass_rate_chart(out: &mut String, series: &Series) {
    let (label_width, bar_width, bar_height) = (180, 300, 22);
    let height = series.by_name.len() * bar_height + 10;
    let _ = writeln!(
        out,
        "<h3>Pass rate per case</h3>\n<svg id=\"pass-rate\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"pass rate per case\">",
        label_width + bar_width + 60
    );
    for (index, (name, points)) in series.by_name.iter().enumerate() {
        let ran: Vec<bool> = points.iter().flatten().map(|(passed, _)| *passed).collect();
        let rate = ran.iter().filter(|passed| **passed).count() as f64 / ran.len().max(1) as f64;
        let y = 5 + index * bar_height;
        let width = (rate * bar_width as f64).round() as usize;
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>\
<rect x=\"{label_width}\" y=\"{y}\" width=\"{bar_width}\" height=\"{}\" fill=\"#eee\"/>\
<rect class=\"bar\" data-case=\"{}\" x=\"{label_width}\" y=\"{y}\" width=\"{width}\" height=\"{}\" fill=\"#2a7d2a\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"12\">{:.0}% of {}</text>",
            y + 15,
            esc(name),
            bar_height - 6,
            esc(name),
            bar_height - 6,
            label_width + bar_width + 5,
            y + 15,
            rate * 100.0,
            ran.len()
        );
    }
    out.push_str("</svg>\n");
}

fn duration_chart(out: &mut String, series: &Series) {
    let (width, height, margin) = (600.0, 220.0, 40.0);
    let longest = series
        .by_name
        .values()
        .flatten()
        .flatten()
        .map(|(_, ms)| *ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let _ = writeln!(
        out,
        "<h3>Duration per case</h3>\n<svg id=\"durations\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"duration per case over the drills\">",
        width + 200.0,
        height + margin
    );
    let _ = writeln!(
        out,
        "<line x1=\"{margin}\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" stroke=\"#888\"/>\
<line x1=\"{margin}\" y1=\"10\" x2=\"{margin}\" y2=\"{height}\" stroke=\"#888\"/>\
<text x=\"0\" y=\"20\" font-size=\"11\">{:.1} s</text><text x=\"0\" y=\"{height}\" font-size=\"11\">0</text>\
<text x=\"{margin}\" y=\"{}\" font-size=\"11\">oldest drill</text><text x=\"{}\" y=\"{}\" font-size=\"11\">newest</text>",
        longest / 1000.0,
        height + 15.0,
        width - 40.0,
        height + 15.0
    );
    let step = if series.drills > 1 {
        (width - margin - 10.0) / (series.drills - 1) as f64
    } else {
        0.0
    };
    for (index, (name, points)) in series.by_name.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let coordinates: Vec<(f64, f64)> = points
            .iter()
            .enumerate()
            .filter_map(|(at, point)| {
                point.map(|(_, ms)| {
                    (
                        margin + 5.0 + at as f64 * step,
                        height - (ms as f64 / longest) * (height - 20.0),
                    )
                })
            })
            .collect();
        let path: Vec<String> = coordinates
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "<polyline class=\"series\" data-case=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            esc(name),
            path.join(" ")
        );
        for (x, y) in &coordinates {
            let _ = write!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>"
            );
        }
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
            width + 10.0,
            10.0 + index as f64 * 16.0,
            width + 25.0,
            19.0 + index as f64 * 16.0,
            esc(name)
        );
    }
    out.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::super::tests::determinism;
    use super::*;

    #[test]
    fn the_page_has_a_row_per_case_and_charts_over_the_history() {
        let report = determinism();
        let mut older = determinism();
        older.id = "older".into();
        let page = html(&report, &[older]);
        assert_eq!(page.matches("<tr class=\"row ").count(), 4, "{page}");
        assert_eq!(page.matches("class=\"bar\"").count(), 4, "{page}");
        assert_eq!(page.matches("class=\"series\"").count(), 4, "{page}");
        assert!(page.contains("Over the last 2 drill(s)"), "{page}");
        assert!(page.contains("<code>out/time.txt</code>"), "{page}");
        for external in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
            assert!(!page.contains(external), "{external} in {page}");
        }
    }
}
