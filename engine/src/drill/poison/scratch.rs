//! The drill's scratch space: a private directory beside the real cache that receives a
//! copy of the real store, the drill's own state dir (its throwaway key), the source of
//! its builds and the work dirs restores write to. Removed when the drill ends, whatever
//! happened; the real store is only ever read.
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::DrillError;

/// The scratch directory, removed on drop.
pub(super) struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// Creates `<parent>/.hermetic-drill-<id>` (mode 0700).
    pub(super) fn create(parent: &Path, id: &str) -> Result<Self, DrillError> {
        let root = parent.join(format!(".hermetic-drill-{id}"));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&root)
            .map_err(|source| DrillError::Scratch {
                path: root.clone(),
                source,
            })?;
        Ok(Scratch { root })
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(&self.root) {
            tracing::warn!(path = %self.root.display(), error = %error, "could not remove the drill's scratch directory");
        }
    }
}

/// Copies the tree at `from` to `to` (which must not exist): directories with their mode,
/// regular files by content, symlinks as symlinks (never followed); sockets, FIFOs and
/// devices are left out. Nothing under `from` is written.
pub(super) fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    fs::DirBuilder::new().mode(0o700).create(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &dest)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &dest)?;
        } else if kind.is_file() {
            fs::copy(&source, &dest)?;
        }
    }
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy keeps files, modes and symlinks (as symlinks, not followed), and a file
    /// written in the copy does not reach the original.
    #[test]
    fn the_store_copy_keeps_symlinks_and_modes_and_is_independent() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        fs::create_dir_all(from.join("scopes/main")).unwrap();
        fs::write(from.join("scopes/main/f"), "bytes").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("scopes/main/l")).unwrap();
        fs::set_permissions(from.join("scopes"), fs::Permissions::from_mode(0o750)).unwrap();

        copy_tree(&from, &to).unwrap();
        assert_eq!(fs::read(to.join("scopes/main/f")).unwrap(), b"bytes");
        assert_eq!(
            fs::read_link(to.join("scopes/main/l")).unwrap(),
            Path::new("/etc/passwd")
        );
        let mode = fs::metadata(to.join("scopes")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o750);
        fs::write(to.join("scopes/main/f"), "changed").unwrap();
        assert_eq!(fs::read(from.join("scopes/main/f")).unwrap(), b"bytes");
    }
}
