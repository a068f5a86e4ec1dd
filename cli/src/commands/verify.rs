//! `hermetic verify --bundle`: offline verification of provenance.
use hermetic::provenance::verify_provenance;
use hermetic::signing::VerifyingKey;
use serde_json::json;

use crate::args::VerifyArgs;
use crate::exit;
use crate::Failure;

pub fn verify(args: VerifyArgs) -> Result<i32, Failure> {
    let mut trusted = Vec::new();
    for path in &args.trust_keys {
        let pem = std::fs::read_to_string(path).map_err(|err| {
            Failure::new(
                exit::USAGE,
                anyhow::anyhow!("--trust-key {}: {err}", path.display()),
            )
        })?;
        let key = VerifyingKey::from_pem(&pem).map_err(|err| {
            Failure::new(
                exit::USAGE,
                anyhow::anyhow!("--trust-key {}: {err}", path.display()),
            )
        })?;
        trusted.push(key);
    }
    match verify_provenance(
        &args.bundle,
        &args.artifact,
        &trusted,
        args.builder_id.as_deref(),
    ) {
        Ok(verified) => {
            if args.json {
                let report = json!({
                    "verified": true,
                    "key_id": verified.key_id,
                    "builder_id": verified.builder_id,
                    "subject": verified.subject,
                    "digest": { "sha256": verified.sha256, "blake3": verified.blake3 },
                    "verdict": verdict_of(&verified.statement),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!(
                    "verified: {} (sha256 {})",
                    args.artifact.display(),
                    verified.sha256
                );
                println!(
                    "  signed by key {}, builder {}",
                    verified.key_id, verified.builder_id
                );
            }
            Ok(exit::SUCCESS)
        }
        Err(err) => {
            if args.json {
                let report =
                    json!({ "verified": false, "reason": err.reason(), "error": err.to_string() });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                eprintln!("hermetic: not verified ({}): {err}", err.reason());
            }
            Ok(exit::NOT_VERIFIED)
        }
    }
}

fn verdict_of(statement: &serde_json::Value) -> serde_json::Value {
    statement["predicate"]["runDetails"]["byproducts"]
        .as_array()
        .and_then(|items| items.iter().find(|b| b["name"] == "hermetic-verdict"))
        .map(|b| b["annotations"]["verdict"].clone())
        .unwrap_or(serde_json::Value::Null)
}
