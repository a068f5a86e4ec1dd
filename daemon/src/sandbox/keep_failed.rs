//! Keeping a failed build's tree, for the daemon's `keep_failed` (as nix's `--keep-failed`
//! keeps the build dir).
//!
//! The build dir is a tmpfs that dies with the sandbox, so it has to leave before: when
//! the build's command fails, init archives the whole dir into a memory file the launcher
//! handed it (`message::FAILED_TREE_FD`), and the launcher adds that archive here. The
//! daemon then extracts each one with the strict extractor into the job's scratch dir.
//! The tree was written by the build, so nothing in it is trusted: symlinks stay symlinks
//! and are never followed, and anything but files, directories and symlinks (a fifo, a
//! socket) makes the archive fail, which the job's log then says.
//!
//! A build that times out leaves its tree too: init, which then times the build itself,
//! stops it and archives the tree (the helper's own limit waits longer). A cancelled
//! build leaves none: its sandbox is killed whole.
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use crate::archive::extract::{extract_verified, ExtractLimits};
use crate::archive::manifest::Manifest;

/// The name the build dir of a run (or of a dual build's canonical run) is kept under.
pub const KEPT_TREE_NAME: &str = "build";

/// The failed trees of one job's runs, by the name each is kept under.
#[derive(Default)]
pub struct FailedTrees {
    trees: Mutex<Vec<(&'static str, Result<PackedTree, String>)>>,
}

struct PackedTree {
    archive: File,
    manifest: Manifest,
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
    pub(crate) fn add(&self, name: &'static str, archive: File, packed: Result<Manifest, String>) {
        let tree = packed.map(|manifest| PackedTree { archive, manifest });
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
                let kept = tree.and_then(|tree| {
                    extract(tree, dir, &dest).map_err(|err| {
                        format!("failed to extract it into {}: {err}", dest.display())
                    })
                });
                match kept {
                    Ok(()) => format!("kept the failed build's tree in {}", dest.display()),
                    Err(why) => format!("could not keep the failed build's tree: {why}"),
                }
            })
            .collect()
    }
}

fn extract(mut tree: PackedTree, dir: &Path, dest: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|err| err.to_string())?;
    // Init wrote through its own copy of the descriptor, which shares the offset.
    tree.archive
        .seek(SeekFrom::Start(0))
        .map_err(|err| err.to_string())?;
    extract_verified(
        std::io::BufReader::new(tree.archive),
        &tree.manifest,
        dest,
        &ExtractLimits::default(),
    )
    .map(|_| ())
    .map_err(|err| err.to_string())
}
