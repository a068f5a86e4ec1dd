//! The canonical run's archive once the build is judged: moved into place, reported, and
//! extracted when asked.
use std::fs::File;
use std::path::Path;

use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{BuildReport, BuildVerdict, Digests, OutputFlag, OutputReport};

use super::partial::PartialArtifact;
use crate::archive::extract::{extract_verified, ExtractLimits};
use crate::errors::{error_chain, Chain};
use crate::exit_code as exit;
use crate::sandbox::launch::PackedOutputs;

/// Moves the canonical archive into place and fills in the report (and extracts it when
/// asked; never a flagged one).
pub(super) fn keep_archive(
    request: &BuildRequest,
    partial: PartialArtifact,
    packed: &PackedOutputs,
    flagged: Option<OutputFlag>,
    verdict: BuildVerdict,
    code: i32,
    report: &mut BuildReport,
) {
    let archive = match partial.commit() {
        Ok(archive) => archive,
        Err(err) => {
            report.exit_code = exit::SANDBOX_FAILED;
            report.error = Some(error_chain(&err));
            return;
        }
    };
    let mut output = OutputReport {
        archive,
        digest: packed.into(),
        size: packed.size,
        manifest_blake3: packed.manifest.blake3_hex(),
        flagged,
        extracted_to: None,
        files: packed.manifest.files.clone(),
    };
    report.verdict = verdict;
    report.exit_code = code;
    if let (Some(dest), None) = (&request.extract, flagged) {
        match extract(&output.archive, packed, dest) {
            Ok(()) => output.extracted_to = Some(dest.clone()),
            Err(message) => {
                report.verdict = BuildVerdict::Failed;
                report.exit_code = exit::SANDBOX_FAILED;
                report.error = Some(message);
            }
        }
    }
    report.output = Some(output);
}

fn extract(archive: &Path, packed: &PackedOutputs, dest: &Path) -> Result<(), String> {
    let file = File::open(archive)
        .map_err(|err| format!("failed to open {}: {err}", archive.display()))?;
    extract_verified(
        std::io::BufReader::new(file),
        &packed.manifest,
        dest,
        &ExtractLimits::default(),
    )
    .map(|_| ())
    .map_err(|err| {
        format!(
            "failed to extract the outputs into {}: {}",
            dest.display(),
            Chain(&err)
        )
    })
}

impl From<&PackedOutputs> for Digests {
    fn from(packed: &PackedOutputs) -> Self {
        Digests {
            sha256: packed.sha256.clone(),
            blake3: packed.blake3.clone(),
        }
    }
}
