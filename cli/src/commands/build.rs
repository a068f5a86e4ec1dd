//! `hermetic build`: runs `hermetic::build::execute` and prints its report, as JSON
//! (`--json`) or for a human.
use hermetic::build::{self, BuildReport, BuildRequest};
use hermetic::exit_code as exit;

use crate::args::BuildArgs;
use crate::Failure;

pub fn build(args: BuildArgs) -> Result<i32, Failure> {
    let request = BuildRequest {
        profile: args.sandbox.profile.clone(),
        src: args.sandbox.src.clone(),
        outputs: args.outputs.clone(),
        artifact: args.artifact.clone(),
        extract: args.extract.clone(),
        single: args.single,
        explain: args.explain,
        source_date_epoch: args.sandbox.source_date_epoch,
        command: args.command.clone(),
    };
    // The build's own output is a log, not hermetic's result: it goes to stderr, so stdout
    // carries only the report. The build never holds the terminal: its log is relayed.
    let log =
        || -> std::io::Result<Box<dyn std::io::Write + Send>> { Ok(Box::new(std::io::stderr())) };
    let report = build::execute(&request, &log).map_err(|err| Failure::new(exit::USAGE, err))?;
    let json =
        serde_json::to_value(&report).map_err(|err| Failure::new(exit::SANDBOX_FAILED, err))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print_human(&report, &json);
    }
    Ok(report.exit_code)
}

fn print_human(report: &BuildReport, json: &serde_json::Value) {
    if let Some(error) = &report.error {
        eprintln!("hermetic: build failed: {error}");
        return;
    }
    let Some(output) = &report.output else { return };
    if report.verdict != "nondeterministic" {
        println!(
            "{}: {} ({} entries, {} bytes)",
            report.verdict,
            output.archive.display(),
            output.files.len(),
            output.size
        );
        println!("  sha256 {}", output.digest.sha256);
        println!("  blake3 {}", output.digest.blake3);
        if let Some(dest) = &output.extracted_to {
            println!("  extracted to {}", dest.display());
        }
        return;
    }
    let empty = Vec::new();
    let differences = json["differences"].as_array().unwrap_or(&empty);
    let causes = json["suspected_causes"].as_array().unwrap_or(&empty);
    println!(
        "nondeterministic: {} path(s) differ between the canonical and the varied run",
        differences.len()
    );
    for difference in differences {
        let path = difference["path"].as_str().unwrap_or_default();
        let suspected: Vec<&str> = causes
            .iter()
            .filter(|c| c["path"] == path)
            .filter_map(|c| c["cause"].as_str())
            .collect();
        let suspected = if suspected.is_empty() {
            String::new()
        } else {
            format!("  (suspected: {})", suspected.join(", "))
        };
        println!(
            "  {:<8} {path}{suspected}",
            difference["kind"].as_str().unwrap_or_default()
        );
    }
    let varied: Vec<&str> = json["varied"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|v| v["what"].as_str())
        .collect();
    println!("varied: {}", varied.join(", "));
    match &report.explain_report {
        Some(path) => println!("report: {}", path.display()),
        None => {
            println!("report: rerun with --explain for a per-file explanation (--json for digests)")
        }
    }
    println!(
        "kept for inspection, flagged nondeterministic: {}",
        output.archive.display()
    );
}
