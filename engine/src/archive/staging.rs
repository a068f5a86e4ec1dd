//! The private directory an archive is extracted into before it is moved into place.
//!
//! It is created with mode 0700 next to the destination, so no other user can look at or
//! race with a half-written tree, and it only ever grows by entries we create ourselves:
//! every name is created relative to an fd of its parent with `O_EXCL`/`mkdirat`/`symlinkat`,
//! and parents are reached without following symlinks.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::manifest::MODE_EXECUTABLE;
use crate::sys::archive::{self as sys, DirFd, NodeKind};

const STAGING_MODE: u32 = 0o700;
/// Attempts at finding an unused staging name before giving up.
const NAME_ATTEMPTS: usize = 16;

/// A staging directory being filled; dropped without [`Staging::publish`] or
/// [`Staging::remove`] it stays on disk.
pub(super) struct Staging<'p> {
    parent: BorrowedFd<'p>,
    name: OsString,
    root: OwnedFd,
    /// The directory most recently created or written into: entries arrive sorted, so
    /// siblings reuse it instead of resolving their parent again.
    current_dir: Option<(String, OwnedFd)>,
}

impl<'p> Staging<'p> {
    /// Creates an empty staging directory with a fresh name in `parent`.
    pub(super) fn create(parent: BorrowedFd<'p>) -> io::Result<Self> {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        for _ in 0..NAME_ATTEMPTS {
            let name = format!(
                ".hermetic-staging-{}-{}-{nanos:08x}",
                std::process::id(),
                SEQUENCE.fetch_add(1, Ordering::Relaxed)
            );
            match sys::create_dir_at(parent, &name, STAGING_MODE) {
                Ok(root) => {
                    return Ok(Self {
                        parent,
                        name: name.into(),
                        root,
                        current_dir: None,
                    })
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "every staging directory name tried was taken",
        ))
    }

    /// Creates directory `path` (mode 0755); its parent must already exist.
    pub(super) fn create_dir(&mut self, path: &str) -> io::Result<()> {
        let created = {
            let (parent, name) = self.parent_of(path)?;
            sys::create_dir_at(parent, name, MODE_EXECUTABLE)?
        };
        self.current_dir = Some((path.to_owned(), created));
        Ok(())
    }

    /// Creates file `path` (mode 0600 until the caller sets the final mode).
    pub(super) fn create_file(&mut self, path: &str) -> io::Result<File> {
        let (parent, name) = self.parent_of(path)?;
        sys::create_file_at(parent, name)
    }

    /// Creates symlink `path` with `target` stored verbatim.
    pub(super) fn create_symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let (parent, name) = self.parent_of(path)?;
        sys::create_symlink_at(parent, name, target)
    }

    /// The directory holding `path`, reached without following symlinks, and the last
    /// component of `path`.
    fn parent_of<'a>(&mut self, path: &'a str) -> io::Result<(BorrowedFd<'_>, &'a str)> {
        let Some((dir, name)) = path.rsplit_once('/') else {
            return Ok((self.root.as_fd(), path));
        };
        let current = match self.current_dir.take() {
            Some((current, fd)) if current == dir => (current, fd),
            _ => (
                dir.to_owned(),
                sys::open_dir_beneath(self.root.as_fd(), dir)?,
            ),
        };
        let (_, fd) = &*self.current_dir.insert(current);
        Ok((fd.as_fd(), name))
    }

    /// Makes the tree world-readable like its contents and renames it to `dest_name`,
    /// failing if that name exists.
    pub(super) fn publish(&self, dest_name: &OsStr) -> io::Result<()> {
        sys::set_mode(self.root.as_fd(), MODE_EXECUTABLE)?;
        sys::rename_noreplace(self.parent, &self.name, dest_name)
    }

    /// Deletes the staging directory and everything in it, following no symlink.
    pub(super) fn remove(self) -> io::Result<()> {
        let Self {
            parent,
            name,
            root,
            current_dir,
        } = self;
        drop(current_dir);
        remove_contents(root.as_fd())?;
        drop(root);
        sys::remove_at(parent, &name, true)
    }

    #[cfg(test)]
    pub(super) fn name(&self) -> &OsStr {
        &self.name
    }
}

/// Empties the directory `root`. Directories are visited breadth first from `root` by path,
/// one fd at a time, and removed deepest first once their files are gone.
fn remove_contents(root: BorrowedFd<'_>) -> io::Result<()> {
    let mut dirs = vec![PathBuf::from(".")];
    let mut next = 0;
    while let Some(dir_path) = dirs.get(next).cloned() {
        let mut dir = DirFd::open_beneath(root, &dir_path)?;
        for name in dir.names()? {
            if dir.stat_child(&name)?.kind == NodeKind::Dir {
                dirs.push(dir_path.join(&name));
            } else {
                dir.remove_child(&name, false)?;
            }
        }
        next += 1;
    }
    for dir_path in dirs.iter().skip(1).rev() {
        if let (Some(parent), Some(name)) = (dir_path.parent(), dir_path.file_name()) {
            sys::remove_at(sys::open_dir_beneath(root, parent)?.as_fd(), name, true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_beneath_itself_publishes_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = sys::open_dir(tmp.path()).unwrap();
        let mut staging = Staging::create(parent.as_fd()).unwrap();
        let staging_path = tmp.path().join(staging.name());
        let mode = std::fs::metadata(&staging_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700);

        staging.create_dir("a").unwrap();
        staging.create_dir("a/b").unwrap();
        staging.create_file("a/b/f").unwrap();
        staging.create_symlink("a/l", "/etc").unwrap();
        staging.create_file("a/g").unwrap();
        let dup = staging.create_file("a/b/f").unwrap_err();
        assert_eq!(dup.kind(), io::ErrorKind::AlreadyExists);

        staging.publish(OsStr::new("dest")).unwrap();
        assert!(tmp.path().join("dest/a/b/f").is_file());
        let published = std::fs::metadata(tmp.path().join("dest")).unwrap();
        assert_eq!(published.permissions().mode() & 0o7777, 0o755);
        assert!(!staging_path.exists());
    }

    #[test]
    fn refuses_to_write_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let cache = tmp.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        let parent = sys::open_dir(&cache).unwrap();
        let mut staging = Staging::create(parent.as_fd()).unwrap();

        staging
            .create_symlink("l", outside.to_str().unwrap())
            .unwrap();
        let through_file = staging.create_file("l/evil").unwrap_err();
        assert!(sys::is_resolution_refused(&through_file), "{through_file}");
        let through_dir = staging.create_dir("l/evil").unwrap_err();
        assert!(sys::is_resolution_refused(&through_dir), "{through_dir}");
        let through_link = staging.create_symlink("l/evil", "x").unwrap_err();
        assert!(sys::is_resolution_refused(&through_link), "{through_link}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        staging.remove().unwrap();
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
        assert!(outside.is_dir());
    }

    #[test]
    fn remove_deletes_deep_trees_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let cache = tmp.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        let parent = sys::open_dir(&cache).unwrap();
        let mut staging = Staging::create(parent.as_fd()).unwrap();
        let mut path = String::from("d");
        staging.create_dir(&path).unwrap();
        for _ in 0..200 {
            path.push_str("/d");
            staging.create_dir(&path).unwrap();
        }
        staging.create_file(&format!("{path}/f")).unwrap();
        staging
            .create_symlink("d/out", outside.to_str().unwrap())
            .unwrap();

        staging.remove().unwrap();
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
        assert!(outside.join("keep").is_file());
    }
}
