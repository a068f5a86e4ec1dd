//! `hermetic verify --bundle`: offline verification of provenance; `--manifest`: of a
//! cache entry's signed manifest and its archive.
use std::path::PathBuf;

use hermetic::errors::{error_chain, Chain};
use hermetic::provenance::verify_provenance;
use hermetic::signing::VerifyingKey;
use serde_json::json;

use crate::args::VerifyArgs;
use crate::exit;
use crate::Failure;

/// The public keys in `paths` (PEM), each named by its `--trust-key` on failure (exit 2).
pub(crate) fn trusted_keys<'a>(
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<Vec<VerifyingKey>, Failure> {
    paths
        .into_iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map_err(anyhow::Error::from)
                .and_then(|pem| VerifyingKey::from_pem(&pem).map_err(anyhow::Error::from))
                .map_err(|err| {
                    Failure::new(
                        exit::USAGE,
                        err.context(format!("--trust-key {}", path.display())),
                    )
                })
        })
        .collect()
}

pub fn verify(args: VerifyArgs) -> Result<i32, Failure> {
    let trusted = trusted_keys(&args.trust_keys)?;
    let bundle = match (&args.manifest, &args.bundle) {
        (Some(manifest), _) => return verify_manifest(&args, manifest, &trusted),
        (None, Some(bundle)) => bundle,
        (None, None) => {
            return Err(Failure::new(
                exit::USAGE,
                anyhow::anyhow!("--bundle or --manifest is required"),
            ))
        }
    };
    match verify_provenance(bundle, &args.artifact, &trusted, args.builder_id.as_deref()) {
        Ok(verified) => {
            if args.json {
                let report = json!({
                    "verified": true,
                    "key_id": verified.key_id,
                    "builder_id": verified.builder_id,
                    "subject": verified.subject,
                    "digest": { "sha256": verified.sha256, "blake3": verified.blake3 },
                    "verdict": verified.verdict,
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
                let report = json!({ "verified": false, "reason": err.reason(), "error": error_chain(&err) });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                eprintln!("hermetic: not verified ({}): {}", err.reason(), Chain(&err));
            }
            Ok(exit::NOT_VERIFIED)
        }
    }
}

/// `--manifest`: the entry's signature, then its archive, as a cache restore checks them
/// (without a requested key or scope to compare: they are printed instead).
fn verify_manifest(
    args: &VerifyArgs,
    manifest: &std::path::Path,
    trusted: &[VerifyingKey],
) -> Result<i32, Failure> {
    match hermetic::cache::verify_detached(manifest, &args.artifact, trusted) {
        Ok(verified) => {
            let entry = &verified.entry;
            if args.json {
                let report = json!({
                    "verified": true,
                    "key_id": verified.signer,
                    "cache_key": entry.cache_key,
                    "scope": entry.scope,
                    "verdict": entry.verdict,
                    "single_run": entry.single_run,
                    "digest": { "sha256": entry.archive.sha256, "blake3": entry.archive.blake3 },
                    "size": entry.archive.size,
                    "files": verified.files,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!(
                    "verified: {} ({} entries, {} bytes of files)",
                    args.artifact.display(),
                    verified.files,
                    verified.bytes
                );
                println!(
                    "  cache key {}, scope {}, verdict {}, signed by key {}",
                    entry.cache_key, entry.scope, entry.verdict, verified.signer
                );
            }
            Ok(exit::SUCCESS)
        }
        Err(err) => {
            if args.json {
                let report = json!({
                    "verified": false, "step": err.step(), "reason": err.reason(),
                    "error": err.message(),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                eprintln!(
                    "hermetic: not verified ({}, step {}): {}",
                    err.reason(),
                    err.step(),
                    err.message()
                );
            }
            Ok(exit::NOT_VERIFIED)
        }
    }
}
