//! `hermetic image pull|import|ls|verify|rm`: the image store in `<state-dir>/images`, in
//! this process (no daemon: an image is the engine's, whoever asks).
use std::path::PathBuf;
use std::time::Duration;

use hermetic::exit_code as exit;
use hermetic::image::{
    self, ImageDigest, ImageError, ImageLimits, ImageRecord, Imported, PullOptions, Store,
    StoreError, Verification,
};
use serde_json::json;

use super::cache::{print_json, usage};
use crate::args::{ImageCommand, ImageLimitArgs, ImageStoreArgs};
use crate::Failure;

pub fn image(command: ImageCommand) -> Result<i32, Failure> {
    match command {
        ImageCommand::Pull {
            reference,
            store,
            limits,
            registry_ca,
            registry_plain_http,
            timeout,
        } => {
            let registry_ca = match registry_ca {
                Some(ca) => Some(super::remote::absolute("--registry-ca", &ca).map_err(usage)?),
                None => None,
            };
            let options = PullOptions {
                timeout: Duration::from_secs(timeout),
                registry_ca,
                plain_http: registry_plain_http,
            };
            let stored = image::pull(
                &state_dir(&store)?,
                &reference,
                &options,
                &limits_of(&limits),
            );
            report_stored(stored, store.json)
        }
        ImageCommand::Import {
            path,
            tag,
            store,
            limits,
        } => {
            let stored = image::import(
                &state_dir(&store)?,
                &path,
                tag.as_deref(),
                &limits_of(&limits),
            );
            report_stored(stored, store.json)
        }
        ImageCommand::Ls { store } => ls(&store),
        ImageCommand::Verify { digest, store } => verify(&store, digest.as_deref()),
        ImageCommand::Rm { digest, store } => rm(&store, &digest),
    }
}

/// `--state-dir`, else the config file's state directory.
fn state_dir(store: &ImageStoreArgs) -> Result<PathBuf, Failure> {
    match &store.state_dir {
        Some(dir) => Ok(dir.clone()),
        None => Ok(super::cache::config()?.state_dir),
    }
}

fn limits_of(flags: &ImageLimitArgs) -> ImageLimits {
    let defaults = ImageLimits::default();
    ImageLimits {
        max_total_bytes: flags.max_bytes.unwrap_or(defaults.max_total_bytes),
        max_entries: flags.max_entries.unwrap_or(defaults.max_entries),
        allow_setuid: flags.allow_setuid,
        ..defaults
    }
}

fn open(store: &ImageStoreArgs) -> Result<Store, Failure> {
    Store::open(&state_dir(store)?).map_err(store_failure)
}

fn parse_digest(digest: &str) -> Result<ImageDigest, Failure> {
    ImageDigest::parse(digest).map_err(usage)
}

/// The exit code a store error means: no such image is the request's fault, an image in use
/// a refusal, the rest this machine's.
fn store_failure(error: StoreError) -> Failure {
    let code = match error {
        StoreError::NotFound { .. } | StoreError::Version { .. } => exit::USAGE,
        StoreError::InUse { .. } => exit::NOT_VERIFIED,
        _ => exit::SANDBOX_FAILED,
    };
    Failure::new(code, error)
}

fn report_stored(stored: Result<Imported, ImageError>, json: bool) -> Result<i32, Failure> {
    let imported = match stored {
        Ok(imported) => imported,
        Err(error) => {
            let code = if error.is_refusal() {
                exit::NOT_VERIFIED
            } else if error.is_usage() {
                exit::USAGE
            } else {
                exit::SANDBOX_FAILED
            };
            if json {
                let refusal = error.refusal();
                print_json(&json!({
                    "stored": false,
                    "error": hermetic::errors::error_chain(&error),
                    "rule": refusal.map(|refusal| refusal.rule.as_str()),
                    "layer": refusal.and_then(|refusal| refusal.layer.as_ref()),
                    "member": refusal.and_then(|refusal| refusal.member.as_deref()),
                }));
            }
            return Err(Failure::new(code, error));
        }
    };
    let resolution = &imported.resolution;
    if json {
        print_json(&json!({
            "stored": true,
            "already_stored": imported.already_stored,
            "reference": resolution.reference,
            "tag": resolution.tag,
            "resolved": resolution.resolved,
            "digest": resolution.manifest,
            "tree": imported.tree,
            "image": imported.record,
        }));
        return Ok(exit::SUCCESS);
    }
    let via = if resolution.resolved == resolution.manifest {
        String::new()
    } else {
        format!(" (index) -> {}", resolution.manifest)
    };
    let record = &imported.record;
    if imported.already_stored {
        println!(
            "{} -> {}{via}: already stored",
            resolution.reference, resolution.resolved
        );
    } else {
        println!(
            "{} -> {}{via}: stored, {} layers, {} files, {} bytes",
            resolution.reference,
            resolution.resolved,
            record.layers.len(),
            record.files,
            record.bytes
        );
    }
    println!("tree: {}", imported.tree.display());
    Ok(exit::SUCCESS)
}

fn ls(store_args: &ImageStoreArgs) -> Result<i32, Failure> {
    let store = open(store_args)?;
    let images = store.list().map_err(store_failure)?;
    if store_args.json {
        print_json(&json!({ "images": images }));
        return Ok(exit::SUCCESS);
    }
    for record in &images {
        println!(
            "{}  {:<14} {:>8} files {:>12} bytes  {}",
            record.digest,
            record.platform.as_deref().unwrap_or("-"),
            record.files,
            record.bytes,
            record.resolution.reference
        );
    }
    Ok(exit::SUCCESS)
}

fn verify(store_args: &ImageStoreArgs, digest: Option<&str>) -> Result<i32, Failure> {
    let store = open(store_args)?;
    let digests: Vec<ImageDigest> = match digest {
        Some(digest) => vec![parse_digest(digest)?],
        None => store
            .list()
            .map_err(store_failure)?
            .into_iter()
            .map(|record: ImageRecord| record.digest)
            .collect(),
    };
    let mut results = Vec::new();
    let mut all_verified = true;
    for digest in &digests {
        let (_, verdict) = store.verify(digest).map_err(store_failure)?;
        let (verified, problem) = match &verdict {
            Verification::Verified => (true, None),
            Verification::Differs(difference) => (
                false,
                Some(json!({
                    "path": difference.path, "field": difference.field,
                    "expected": difference.expected, "found": difference.found,
                })),
            ),
            Verification::Unreadable(error) => (
                false,
                Some(json!({ "error": hermetic::errors::error_chain(error) })),
            ),
        };
        all_verified &= verified;
        if !store_args.json {
            match &verdict {
                Verification::Verified => println!("{digest}: verified"),
                Verification::Differs(difference) => println!(
                    "{digest}: differs at {} ({}): expected {}, found {}",
                    difference.path, difference.field, difference.expected, difference.found
                ),
                Verification::Unreadable(error) => {
                    println!("{digest}: {}", hermetic::errors::Chain(error))
                }
            }
        }
        results.push(json!({ "digest": digest, "verified": verified, "difference": problem }));
    }
    if store_args.json {
        print_json(&json!({ "images": results }));
    }
    Ok(if all_verified {
        exit::SUCCESS
    } else {
        exit::NOT_VERIFIED
    })
}

fn rm(store_args: &ImageStoreArgs, digest: &str) -> Result<i32, Failure> {
    let digest = parse_digest(digest)?;
    let store = open(store_args)?;
    let removed = store.remove(&digest).map_err(store_failure)?;
    if store_args.json {
        print_json(&json!({ "removed": removed }));
    } else {
        println!("removed {}", removed.digest);
    }
    Ok(exit::SUCCESS)
}
