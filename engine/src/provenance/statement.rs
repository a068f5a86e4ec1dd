//! Building the in-toto statement from a finished build.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{AppliedLayers, BuildReport, BuildVerdict, RunName};

use crate::timestamp::rfc3339;

/// What the statement is made from. A report that came back from the daemon serves as well
/// as one made in-process: it reads back as the same value.
pub struct ProvenanceInputs<'a> {
    pub request: &'a BuildRequest,
    pub report: &'a BuildReport,
    pub builder_id: String,
    pub started_on: SystemTime,
    pub finished_on: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("provenance is only issued for reproducible builds; this build is {verdict} (pass --unsigned-provenance to get an unsigned report)")]
    NotReproducible { verdict: BuildVerdict },
    #[error("the build report has no archive to attest")]
    NoOutput,
    #[error("failed to compute the digest of the source {path}: {message}")]
    SourceDigest { path: PathBuf, message: String },
}

/// The statement for `inputs`. Unless `allow_unreproducible`, only a reproducible dual
/// build gets one.
pub fn statement_for(
    inputs: &ProvenanceInputs<'_>,
    allow_unreproducible: bool,
) -> Result<Value, ProvenanceError> {
    let report = inputs.report;
    if report.verdict != BuildVerdict::Reproducible && !allow_unreproducible {
        return Err(ProvenanceError::NotReproducible {
            verdict: report.verdict,
        });
    }
    let output = report.output.as_ref().ok_or(ProvenanceError::NoOutput)?;
    let source = inputs
        .request
        .src
        .canonicalize()
        .unwrap_or_else(|_| inputs.request.src.clone());
    let source_blake3 = tree_blake3(&source)?;
    let git_commit = git_head(&source);
    let name = output
        .archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let outputs: Vec<&str> = if inputs.request.outputs.is_empty() {
        vec!["out"]
    } else {
        inputs.request.outputs.iter().map(String::as_str).collect()
    };
    let profile = &report.profile;

    let mut external = json!({
        "command": inputs.request.command,
        "outputs": outputs,
        "profile": profile.name,
        "source": { "uri": format!("file://{}", source.display()), "digest": { "blake3": source_blake3 } },
    });
    if let Some(commit) = &git_commit {
        external["source"]["gitCommit"] = json!(commit);
    }
    // The image a build ran in is as much an input as its profile (`drill rebuild` builds
    // in it again); absent when the profile's own root was used.
    if let Some(image) = &inputs.request.image {
        external["image"] = json!(image);
    }
    let mut dependencies = vec![
        json!({ "name": "source", "uri": format!("file://{}", source.display()), "digest": { "blake3": source_blake3 } }),
        json!({ "name": "profile", "uri": profile.origin, "digest": { "sha256": profile.sha256 } }),
    ];
    if let Some(sandbox) = &report.sandbox {
        dependencies.push(json!({
            "name": "seccomp-policy",
            "uri": format!("hermetic:seccomp/{}", sandbox.seccomp_policy),
            "digest": { "sha256": sandbox.seccomp_sha256 },
        }));
    }
    match (&report.image, &profile.rootfs_blake3) {
        (Some(image), _) => {
            let hex = image
                .digest
                .strip_prefix("sha256:")
                .unwrap_or(&image.digest);
            dependencies.push(
                json!({ "name": "image", "uri": image.reference, "digest": { "sha256": hex } }),
            )
        }
        (None, Some(rootfs)) => {
            dependencies.push(json!({ "name": "rootfs", "digest": { "blake3": rootfs } }))
        }
        (None, None) => {
            if let Some(os_release) = file_sha256(Path::new("/usr/lib/os-release")) {
                dependencies.push(json!({ "name": "toolchain", "uri": "host:/usr", "digest": { "sha256": os_release } }));
            }
        }
    }

    let mut byproducts = vec![json!({
        "name": super::VERDICT_BYPRODUCT,
        "annotations": {
            "verdict": report.verdict,
            "mode": report.mode,
            "varied": report.varied,
            "differences": report.differences.as_ref().map_or(0, Vec::len),
        },
    })];
    let run_b_digest = report
        .runs
        .iter()
        .find(|run| run.name == RunName::B)
        .and_then(|run| run.output_digest.as_ref());
    if let Some(digest) = run_b_digest {
        byproducts.push(json!({ "name": "run-b-output", "digest": { "sha256": digest.sha256, "blake3": digest.blake3 } }));
    }
    byproducts.push(json!({ "name": "manifest", "digest": { "blake3": output.manifest_blake3 } }));
    if let Some(log) = &report.log {
        byproducts.push(json!({ "name": "log", "digest": { "sha256": log.sha256 } }));
    }

    Ok(json!({
        "_type": super::STATEMENT_TYPE,
        "subject": [ { "name": name, "digest": { "sha256": output.digest.sha256, "blake3": output.digest.blake3 } } ],
        "predicateType": super::SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": super::BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "pins": report.pins,
                    "sandbox": report.sandbox.as_ref().map(sandbox_parameters),
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": { "id": inputs.builder_id, "version": { "hermetic": env!("CARGO_PKG_VERSION") } },
                "metadata": {
                    "invocationId": invocation_id(),
                    "startedOn": rfc3339(inputs.started_on),
                    "finishedOn": rfc3339(inputs.finished_on),
                },
                "byproducts": byproducts,
            },
        },
    }))
}

/// The layers in force, without what names this particular run (the cgroup directories
/// carry a per-run name): two builds of the same inputs must state the same parameters.
fn sandbox_parameters(sandbox: &AppliedLayers) -> AppliedLayers {
    let mut sandbox = sandbox.clone();
    if let Some(cgroup) = &mut sandbox.cgroup {
        for placed in [&mut cgroup.pids, &mut cgroup.memory, &mut cgroup.cpu]
            .into_iter()
            .flatten()
        {
            if let Some((version, _)) = placed.split_once(':') {
                *placed = version.to_owned();
            }
        }
    }
    sandbox
}

/// BLAKE3 over the manifest of every top-level entry of `dir` that is not a symlink,
/// plus the symlinks themselves (the same digest a rootfs gets).
fn tree_blake3(dir: &Path) -> Result<String, ProvenanceError> {
    crate::sandbox::plan::tree_digest(dir, &[]).map_err(|message| ProvenanceError::SourceDigest {
        path: dir.to_path_buf(),
        message,
    })
}

fn git_head(source: &Path) -> Option<String> {
    if !source.join(".git").exists() {
        return None;
    }
    let output = std::process::Command::new("git")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", "/nonexistent")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(source)
        .args(["rev-parse", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && commit.len() >= 40).then_some(commit)
}

fn file_sha256(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|bytes| crate::digest::sha256_hex(&bytes))
}

/// A random 128-bit id, hex.
fn invocation_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom_fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    hex::encode(bytes)
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), rand_core::Error> {
    use rand_core::RngCore;
    rand_core::OsRng.try_fill_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_ids_differ() {
        assert_ne!(invocation_id(), invocation_id());
        assert_eq!(invocation_id().len(), 32);
    }
}
