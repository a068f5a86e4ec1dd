//! Raw calls used by the archive packer and strict extractor.
//!
//! Trees handled here were written by untrusted builds or come out of untrusted archives, so
//! no call follows a symlink: multi-component paths are resolved with openat2(2) (Linux 5.6+)
//! and `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` relative to a
//! directory fd, and single names go through the `*at` calls with `AT_SYMLINK_NOFOLLOW` or
//! `O_NOFOLLOW`. The nix wrappers keep all of it safe code.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, FcntlArg, OFlag, OpenHow, RenameFlags, ResolveFlag};
use nix::sys::stat::{self, FileStat, Mode};
use nix::unistd::{self, UnlinkatFlags};

/// File type of a directory entry, as lstat(2) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl NodeKind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::File => "regular file",
            Self::Dir => "directory",
            Self::Symlink => "symlink",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
            Self::CharDevice => "character device",
            Self::BlockDevice => "block device",
        }
    }
}

/// The parts of stat(2) the archive code looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeStat {
    pub(crate) kind: NodeKind,
    /// Permission bits including setuid/setgid/sticky.
    pub(crate) mode: u32,
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl NodeStat {
    fn from_stat(st: &FileStat) -> io::Result<Self> {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => NodeKind::File,
            libc::S_IFDIR => NodeKind::Dir,
            libc::S_IFLNK => NodeKind::Symlink,
            libc::S_IFIFO => NodeKind::Fifo,
            libc::S_IFSOCK => NodeKind::Socket,
            libc::S_IFCHR => NodeKind::CharDevice,
            libc::S_IFBLK => NodeKind::BlockDevice,
            other => {
                return Err(io::Error::other(format!(
                    "unknown file type {other:#o} in st_mode"
                )))
            }
        };
        Ok(Self {
            kind,
            mode: st.st_mode & 0o7777,
            size: u64::try_from(st.st_size).map_err(io::Error::other)?,
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }
}

fn strict_resolution() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

fn open_beneath(dir: BorrowedFd<'_>, path: &Path, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(strict_resolution());
    Ok(fcntl::openat2(dir, path, how)?)
}

/// True when the kernel refused a resolution because it would follow a symlink, leave the
/// starting directory or treat a non-directory as one: ELOOP from `RESOLVE_NO_SYMLINKS` or
/// `O_NOFOLLOW`, EXDEV from `RESOLVE_BENEATH`, ENOTDIR from `O_DIRECTORY` (which is also what
/// opening a symlink as a parent directory reports).
pub(crate) fn is_resolution_refused(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ELOOP | libc::EXDEV | libc::ENOTDIR)
    )
}

/// Opens a directory given by a trusted path (from our own configuration, so symlinks in it
/// are followed).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens directory `path` beneath `dir` as an `O_PATH` fd, for use as the base of `*at` calls.
pub(crate) fn open_dir_beneath(
    dir: BorrowedFd<'_>,
    path: &(impl AsRef<Path> + ?Sized),
) -> io::Result<OwnedFd> {
    open_beneath(
        dir,
        path.as_ref(),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
}

/// Describes `path` beneath `dir`. A symlink as the last component is described, not
/// followed; a symlink anywhere before it is an ELOOP error.
pub(crate) fn stat_beneath(
    dir: BorrowedFd<'_>,
    path: &(impl AsRef<Path> + ?Sized),
) -> io::Result<NodeStat> {
    let fd = open_beneath(dir, path.as_ref(), OFlag::O_PATH, Mode::empty())?;
    stat_fd(fd.as_fd())
}

/// Describes an open file.
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<NodeStat> {
    NodeStat::from_stat(&stat::fstat(fd)?)
}

/// Opens file `path` beneath `dir` for reading.
pub(crate) fn open_file_beneath(
    dir: BorrowedFd<'_>,
    path: &(impl AsRef<Path> + ?Sized),
) -> io::Result<File> {
    // O_NONBLOCK: if a FIFO were swapped in after the caller checked the type, opening it
    // must fail fast instead of waiting for a writer. It changes nothing for regular files.
    let fd = open_beneath(
        dir,
        path.as_ref(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// A directory opened for listing; its children are looked at without following symlinks.
pub(crate) struct DirFd(Dir);

impl DirFd {
    /// Opens directory `path` beneath `dir`.
    pub(crate) fn open_beneath(
        dir: BorrowedFd<'_>,
        path: &(impl AsRef<Path> + ?Sized),
    ) -> io::Result<Self> {
        let fd = open_beneath(
            dir,
            path.as_ref(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )?;
        Ok(Self(Dir::from_fd(fd)?))
    }

    /// Names of the children, without `.` and `..`, in readdir order.
    pub(crate) fn names(&mut self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in self.0.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        Ok(names)
    }

    /// Describes child `name` (lstat semantics).
    pub(crate) fn stat_child(&self, name: &OsStr) -> io::Result<NodeStat> {
        NodeStat::from_stat(&stat::fstatat(
            self.0.as_fd(),
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Target of symlink child `name`, verbatim.
    pub(crate) fn read_link_child(&self, name: &OsStr) -> io::Result<OsString> {
        Ok(fcntl::readlinkat(self.0.as_fd(), name)?)
    }

    /// Removes child `name`, a directory when `is_dir`.
    pub(crate) fn remove_child(&self, name: &OsStr, is_dir: bool) -> io::Result<()> {
        remove_at(self.0.as_fd(), name, is_dir)
    }
}

impl AsFd for DirFd {
    /// The directory itself, as the base of `*at` calls on its children.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Creates directory `name` in `parent`, sets its mode exactly (regardless of umask) and
/// returns it opened.
pub(crate) fn create_dir_at(parent: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<OwnedFd> {
    stat::mkdirat(parent, name, Mode::S_IRWXU)?;
    let dir = open_beneath(
        parent,
        Path::new(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    set_mode(dir.as_fd(), mode)?;
    Ok(dir)
}

/// Creates file `name` in `parent` for writing, mode 0600; fails if anything, even a dangling
/// symlink, already has that name.
pub(crate) fn create_file_at(parent: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let fd = open_beneath(
        parent,
        Path::new(name),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )?;
    Ok(File::from(fd))
}

/// Creates file `name` in `parent` for reading and writing, mode 0600; fails if anything,
/// even a dangling symlink, already has that name.
pub(crate) fn create_read_write_file_at(parent: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let fd = open_beneath(
        parent,
        Path::new(name),
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )?;
    Ok(File::from(fd))
}

/// Creates symlink `name` in `parent` pointing at `target` (stored, never resolved).
pub(crate) fn create_symlink_at(
    parent: BorrowedFd<'_>,
    name: &str,
    target: &str,
) -> io::Result<()> {
    Ok(unistd::symlinkat(target, parent, name)?)
}

/// Sets the permission bits of an open file or directory.
pub(crate) fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(stat::fchmod(fd, Mode::from_bits_truncate(mode))?)
}

/// Whether `parent` has a child `name` of any type (a dangling symlink counts).
pub(crate) fn exists_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    match stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Renames `from` to `to` within `parent`, failing with EEXIST if `to` exists.
pub(crate) fn rename_noreplace(parent: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(fcntl::renameat2(
        parent,
        from,
        parent,
        to,
        RenameFlags::RENAME_NOREPLACE,
    )?)
}

/// Makes `new_name` in `new_dir` another name of `old_name` in `old_dir` (a hard link);
/// a symlink at `old_name` is linked itself, never followed.
pub(crate) fn create_hardlink_at(
    old_dir: BorrowedFd<'_>,
    old_name: &str,
    new_dir: BorrowedFd<'_>,
    new_name: &str,
) -> io::Result<()> {
    Ok(unistd::linkat(
        old_dir,
        old_name,
        new_dir,
        new_name,
        AtFlags::empty(),
    )?)
}

/// Renames `from` in `from_dir` to `to` in `to_dir` (one filesystem), failing with EEXIST
/// if `to` exists.
pub(crate) fn rename_noreplace_between(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
) -> io::Result<()> {
    Ok(fcntl::renameat2(
        from_dir,
        from,
        to_dir,
        to,
        RenameFlags::RENAME_NOREPLACE,
    )?)
}

/// Sets the permission bits of child `name` of `parent` without opening it (so without
/// read permission on it); a symlink there is refused (EOPNOTSUPP), never followed.
pub(crate) fn set_mode_at(parent: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    Ok(stat::fchmodat(
        parent,
        name,
        Mode::from_bits_truncate(mode),
        stat::FchmodatFlags::NoFollowSymlink,
    )?)
}

/// Creates the new file `path` (mode 0600) for writing with `O_DIRECT` when the filesystem
/// allows it; returns the file and whether it is direct. Direct writes need buffers, lengths
/// and offsets aligned to the device's logical block size (4096 always is).
pub(crate) fn create_file_direct(path: &Path) -> io::Result<(File, bool)> {
    let create = |direct: bool| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
    };
    match create(true) {
        Ok(file) => Ok((file, true)),
        // Filesystems without direct I/O refuse the flag at open.
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Ok((create(false)?, false)),
        Err(err) => Err(err),
    }
}

/// Turns `O_DIRECT` off for an open file, so writes of any length and alignment go
/// through the page cache again.
pub(crate) fn clear_direct(file: &File) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl::fcntl(file, FcntlArg::F_GETFL)?);
    fcntl::fcntl(file, FcntlArg::F_SETFL(flags - OFlag::O_DIRECT))?;
    Ok(())
}

/// Removes `name` from `parent` without following it; a directory must be empty.
pub(crate) fn remove_at(parent: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<()> {
    let flag = if is_dir {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    Ok(unistd::unlinkat(parent, name, flag)?)
}

/// A file in memory, with no name (memfd): where a failed build's tree waits, compressed,
/// until the daemon extracts it. Memory rather than disk because the job's thread acts as
/// the caller, who may not write to the daemon's state directory.
pub(crate) fn anonymous_file(name: &str) -> io::Result<File> {
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(File::from(fd))
}

/// A file writer that starts the kernel's writeback of what it wrote every `WINDOW`
/// bytes (sync_file_range with SYNC_FILE_RANGE_WRITE: asynchronous, never waits), so that
/// an archive is mostly on disk by the time it is fsynced before its rename, instead of
/// all of it being flushed then.
pub(crate) struct WriteBehind {
    file: File,
    written: u64,
    flushed: u64,
}

impl WriteBehind {
    const WINDOW: u64 = 8 << 20;

    pub(crate) fn new(file: File) -> Self {
        WriteBehind {
            file,
            written: 0,
            flushed: 0,
        }
    }
}

impl io::Write for WriteBehind {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = io::Write::write(&mut self.file, bytes)?;
        self.written += n as u64;
        if self.written - self.flushed >= Self::WINDOW {
            // SAFETY: sync_file_range takes the descriptor of a file we own and plain
            // integers; SYNC_FILE_RANGE_WRITE only queues writeback. A failure (a file
            // system without it, a pipe) changes nothing but the timing of the final fsync.
            unsafe {
                libc::sync_file_range(
                    std::os::fd::AsRawFd::as_raw_fd(&self.file),
                    self.flushed as libc::off64_t,
                    (self.written - self.flushed) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.flushed = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(&mut self.file)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn beneath_resolution_refuses_symlinks_and_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::fs::write(tmp.path().join("real/file"), b"x").unwrap();
        symlink("real", tmp.path().join("link")).unwrap();
        let root = open_dir(tmp.path()).unwrap();

        let through_link = stat_beneath(root.as_fd(), "link/file").unwrap_err();
        assert!(is_resolution_refused(&through_link), "{through_link}");
        let escape = stat_beneath(root.as_fd(), "../x").unwrap_err();
        assert!(is_resolution_refused(&escape), "{escape}");
        let absolute = open_file_beneath(root.as_fd(), "/etc/passwd").unwrap_err();
        assert!(is_resolution_refused(&absolute), "{absolute}");

        assert_eq!(
            stat_beneath(root.as_fd(), "link").unwrap().kind,
            NodeKind::Symlink
        );
        assert_eq!(stat_beneath(root.as_fd(), "real/file").unwrap().size, 1);
        let opened_link = open_file_beneath(root.as_fd(), "link").unwrap_err();
        assert!(is_resolution_refused(&opened_link), "{opened_link}");
    }

    #[test]
    fn create_file_refuses_existing_names_including_dangling_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        symlink(&outside, tmp.path().join("dangling")).unwrap();
        let root = open_dir(tmp.path()).unwrap();
        let err = create_file_at(root.as_fd(), "dangling").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(!outside.exists());
    }

    #[test]
    fn everything_written_behind_arrives_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        let mut writer = WriteBehind::new(File::create(&path).unwrap());
        let mut expected = Vec::new();
        for block in 0..40u32 {
            let bytes: Vec<u8> = (0..(1 << 19) + block).map(|i| (i ^ block) as u8).collect();
            writer.write_all(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
        }
        writer.flush().unwrap();
        assert!(writer.flushed > 0, "no writeback was started");
        drop(writer);
        assert!(std::fs::read(&path).unwrap() == expected);
    }
}
