//! Removing a tree through directory fds, never following a symlink: what a whiteout, a
//! replaced path, a refused import's staging directory and `hermetic image rm` all do.
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys::archive::{self as sys, DirFd, NodeKind};

/// Owner permissions a directory needs to be listed and emptied.
const OWNER_ALL: u32 = 0o700;

/// Removes child `name` of `parent` and, when it is a directory, everything in it. A
/// directory is first made the owner's (`u+rwx`), since a stored image keeps its modes and
/// some (`/proc`, `/sys`) are 0555: without it an unprivileged owner could not empty them.
/// Nothing that does not exist is an error.
pub(super) fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let stat = match sys::stat_beneath(parent, name) {
        Ok(stat) => stat,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if stat.kind != NodeKind::Dir {
        return sys::remove_at(parent, name, false);
    }
    if stat.mode & OWNER_ALL != OWNER_ALL {
        sys::set_mode_at(parent, name, stat.mode | OWNER_ALL)?;
    }
    let mut dir = DirFd::open_beneath(parent, name)?;
    for child in dir.names()? {
        remove_tree(dir.as_fd(), &child)?;
    }
    drop(dir);
    sys::remove_at(parent, name, true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    #[test]
    fn removes_read_only_trees_and_never_follows_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("proc/sub")).unwrap();
        std::fs::write(tree.join("proc/sub/file"), b"x").unwrap();
        symlink(&outside, tree.join("proc/out")).unwrap();
        for dir in ["proc/sub", "proc"] {
            std::fs::set_permissions(tree.join(dir), std::fs::Permissions::from_mode(0o555))
                .unwrap();
        }
        let parent = sys::open_dir(tmp.path()).unwrap();
        remove_tree(parent.as_fd(), OsStr::new("tree")).unwrap();
        assert!(!tree.exists());
        assert!(outside.join("keep").is_file());
        remove_tree(parent.as_fd(), OsStr::new("tree")).unwrap();
    }
}
