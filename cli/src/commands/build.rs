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
    let started_on = std::time::SystemTime::now();
    let report = build::execute(&request, &log).map_err(|err| Failure::new(exit::USAGE, err))?;
    let finished_on = std::time::SystemTime::now();
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
    if let Some(path) = &args.provenance {
        if report.output.is_some() {
            write_provenance(&args, &request, &report, path, started_on, finished_on)?;
        }
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

/// Writes the signed provenance bundle (or, when asked for a non-reproducible build, the
/// unsigned statement). Refuses to attest anything that is not reproducible.
fn write_provenance(
    args: &BuildArgs,
    request: &BuildRequest,
    report: &BuildReport,
    path: &std::path::Path,
    started_on: std::time::SystemTime,
    finished_on: std::time::SystemTime,
) -> Result<(), Failure> {
    use hermetic::provenance::{statement_for, ProvenanceInputs, BUILDER_ID_PREFIX};
    use hermetic::signing::{dsse::IN_TOTO_PAYLOAD_TYPE, sign_dsse, Password, SigningKey};
    let fail = |code: i32, err: anyhow::Error| Failure::new(code, err);
    let reproducible = report.verdict == "reproducible";
    let key = match (&args.sign_key, reproducible || !args.unsigned_provenance) {
        (Some(key_path), true) => {
            let pem = std::fs::read_to_string(key_path).map_err(|e| {
                fail(
                    exit::USAGE,
                    anyhow::anyhow!("--sign-key {}: {e}", key_path.display()),
                )
            })?;
            let password = Password::from_env();
            Some(
                SigningKey::from_pem(&pem, Some(password.as_bytes())).map_err(|e| {
                    fail(
                        exit::USAGE,
                        anyhow::anyhow!("--sign-key {}: {e}", key_path.display()),
                    )
                })?,
            )
        }
        (None, true) => {
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!("--provenance needs --sign-key KEY"),
            ))
        }
        (_, false) => None,
    };
    let builder_id = match (&args.builder_id, &key) {
        (Some(id), _) => id.clone(),
        (None, Some(key)) => format!("{BUILDER_ID_PREFIX}{}", key.verifying_key().key_id()),
        (None, None) => format!("{BUILDER_ID_PREFIX}unsigned"),
    };
    let inputs = ProvenanceInputs {
        request,
        report,
        builder_id,
        started_on,
        finished_on,
    };
    let statement = statement_for(&inputs, args.unsigned_provenance).map_err(|e| {
        fail(
            if report.exit_code == exit::SUCCESS {
                exit::SANDBOX_FAILED
            } else {
                report.exit_code
            },
            e.into(),
        )
    })?;
    let payload =
        serde_json::to_vec(&statement).map_err(|e| fail(exit::SANDBOX_FAILED, e.into()))?;
    let bytes = match &key {
        Some(key) if reproducible => sign_dsse(key, IN_TOTO_PAYLOAD_TYPE, &payload)
            .to_json()
            .into_bytes(),
        _ => serde_json::to_vec_pretty(&statement)
            .map_err(|e| fail(exit::SANDBOX_FAILED, e.into()))?,
    };
    let temp = path.with_extension("partial");
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| {
            fail(
                exit::SANDBOX_FAILED,
                anyhow::anyhow!("--provenance {}: {e}", path.display()),
            )
        })
}
