//! Keeping a failed build's tree, for the daemon's `keep_failed` (as nix's `--keep-failed`
//! keeps the build dir).
//!
//! The build dir is a tmpfs that dies with the sandbox, so it has to leave before: when
//! the build's command fails, init archives the whole dir into a memory file the launcher
//! handed it (`message::FAILED_TREE_FD`), and the launcher adds that archive here. The
//! daemon then extracts each one with the strict extractor into the job's scratch dir.
//! The tree was written by the build, so nothing in it is trusted: symlinks stay symlinks
//! and are never followed. What no archive holds (a fifo, a socket, a name that is not
//! UTF-8) is left out, and the job's log names it.
//!
//! A build that times out leaves its tree too: init, which then times the build itself,
//! stops it and archives the tree (the helper's own limit waits longer). A cancelled
//! build leaves none: its sandbox is killed whole.
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::archive::extract::{extract_verified, ExtractError, ExtractLimits};
use crate::archive::manifest::Manifest;

/// The name the build dir of a run (or of a dual build's canonical run) is kept under.
pub const KEPT_TREE_NAME: &str = "build";

/// How many left-out entries a log line names.
const LEFT_OUT_NAMED: usize = 10;

/// The failed trees of one job's runs, by the name each is kept under.
#[derive(Default)]
pub struct FailedTrees {
    trees: Mutex<Vec<(&'static str, Result<ArchivedTree, KeepError>)>>,
}

/// Why a failed build's tree is not kept.
#[derive(Debug, thiserror::Error)]
enum KeepError {
    /// Init could not archive it (its message).
    #[error("{0}")]
    Archive(String),
    #[error("failed to create {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read its archive back")]
    Rewind(#[source] std::io::Error),
    #[error("failed to extract it into {dest}")]
    Extract {
        dest: PathBuf,
        #[source]
        source: ExtractError,
    },
}

/// What init reports of a failed build's dir it archived.
pub(crate) struct PackedTree {
    pub(crate) manifest: Manifest,
    /// Entries no archive holds, left out.
    pub(crate) left_out: Vec<String>,
}

struct ArchivedTree {
    archive: File,
    packed: PackedTree,
}

impl FailedTrees {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file for init to archive a failed build's dir into.
    pub(crate) fn file() -> std::io::Result<File> {
        crate::sys::archive::anonymous_file("hermetic-failed-tree")
    }

    /// Records what init reported for the run kept under `name`: the archive in `archive`
    /// and its manifest, or why there is none.
    pub(crate) fn add(
        &self,
        name: &'static str,
        archive: File,
        packed: Result<PackedTree, String>,
    ) {
        let tree = packed
            .map(|packed| ArchivedTree { archive, packed })
            .map_err(KeepError::Archive);
        self.trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name, tree));
    }

    /// Extracts every tree into `dir/NAME` (`dir` is created if need be). Returns a line
    /// per tree, saying where it is or why it is not, for the job's log.
    pub fn extract_into(self, dir: &Path) -> Vec<String> {
        let trees = self.trees.into_inner().unwrap_or_else(|p| p.into_inner());
        trees
            .into_iter()
            .map(|(name, tree)| {
                let dest = dir.join(name);
                match tree.and_then(|tree| extract(tree, dir, &dest)) {
                    Ok(left_out) => format!(
                        "kept the failed build's tree in {}{}",
                        dest.display(),
                        describe_left_out(&left_out)
                    ),
                    Err(why) => format!("could not keep the failed build's tree: {why}"),
                }
            })
            .collect()
    }
}

/// Extracts `tree` into `dest` (in `dir`); returns what init left out of it.
fn extract(mut tree: ArchivedTree, dir: &Path, dest: &Path) -> Result<Vec<String>, KeepError> {
    std::fs::create_dir_all(dir).map_err(|source| KeepError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    // Init wrote through its own copy of the descriptor, which shares the offset.
    tree.archive
        .seek(SeekFrom::Start(0))
        .map_err(KeepError::Rewind)?;
    extract_verified(
        std::io::BufReader::new(tree.archive),
        &tree.packed.manifest,
        dest,
        &ExtractLimits::default(),
    )
    .map_err(|source| KeepError::Extract {
        dest: dest.to_owned(),
        source,
    })?;
    Ok(tree.packed.left_out)
}

/// " (left out, as no archive holds them: pipe (fifo), ...)", naming at most
/// `LEFT_OUT_NAMED`; empty when nothing was left out.
fn describe_left_out(left_out: &[String]) -> String {
    if left_out.is_empty() {
        return String::new();
    }
    let named = left_out[..left_out.len().min(LEFT_OUT_NAMED)].join(", ");
    let more = left_out.len().saturating_sub(LEFT_OUT_NAMED);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(" (left out, as no archive holds them: {named}{more})")
}
