//! An archive while it is written: a temporary file beside the destination, renamed into
//! place only when it is kept, removed otherwise. Nobody ever sees half an archive.
use std::fs::File;
use std::path::{Path, PathBuf};

use super::BuildError;

pub(super) struct PartialArtifact {
    pub(super) file: File,
    /// Where it is written, until `commit`.
    pub(super) temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartialArtifact {
    /// A new partial archive for `dest`; `run_suffix` tells the runs of a dual build apart.
    pub(super) fn create(dest: &Path, run_suffix: &str) -> Result<Self, BuildError> {
        let artifact_error = |message: String| BuildError::Artifact {
            path: dest.to_path_buf(),
            message,
        };
        let name = dest
            .file_name()
            .ok_or_else(|| artifact_error("not a file name".into()))?;
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(artifact_error(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        remove_stale_partials(&dir, &name.to_string_lossy());
        let temp = dir.join(format!(
            ".{}{run_suffix}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp)
            .map_err(|err| artifact_error(format!("failed to create {}: {err}", temp.display())))?;
        Ok(PartialArtifact {
            file,
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    pub(super) fn error(&self, err: std::io::Error) -> BuildError {
        BuildError::Artifact {
            path: self.dest.clone(),
            message: err.to_string(),
        }
    }

    pub(super) fn commit(mut self) -> std::io::Result<PathBuf> {
        self.file.sync_all()?;
        std::fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        Ok(self.dest.clone())
    }
}

/// Removes the partial archives for `name` in `dir` that a killed build left behind (a
/// process that died before its `Drop` ran: SIGKILL, a crash, a killed daemon): those whose
/// writer's pid is gone. The next build of the same artifact sweeps them, with the same
/// file access it creates its own with.
fn remove_stale_partials(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes = ["", ".run-b", ".run-c"].map(|suffix| format!(".{name}{suffix}.partial-"));
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let writer = prefixes
            .iter()
            .find_map(|prefix| file_name.strip_prefix(prefix.as_str()))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = writer {
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
            if !alive && is_file {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for PartialArtifact {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
