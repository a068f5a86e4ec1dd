//! Getting the source tree into the sandbox.
//!
//! The launcher reads the source (with the caller's own privileges) and streams it as a
//! tar archive through a pipe; the sandbox's init unpacks it into the build dir after the
//! host root is gone. So the sandbox never needs to read host files itself (a root
//! caller's build runs as an unprivileged host uid that could not), and nothing in the
//! source, such as a symlink, can point the copy at a host path.
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::sandbox::error::{Layer, StepError};

/// Why the source could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("failed to read the source at {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the source contains {path}, which is not a regular file, directory or symlink")]
    Unsupported { path: PathBuf },
    #[error("{path} changed while the source was being copied (it was {expected} bytes); build from a tree nothing is writing to")]
    Changed { path: PathBuf, expected: u64 },
    #[error("failed to send the source into the sandbox")]
    Send(#[source] io::Error),
}

/// Writes `dir` as a tar stream: directories, regular files (content and exec bit) and
/// symlinks (never followed), in name order, or reverse name order when `reverse` (the
/// varied run of a dual build). Sockets and fifos (a daemon's socket, an editor's fifo
/// next to the sources) carry no content a build could use: they are left out, as tar and
/// docker's build context leave them out, and returned (relative paths) so the caller can
/// say so. A device is refused, so a build never depends on one that exists on one host.
pub fn stream_source(
    dir: &Path,
    reverse: bool,
    out: impl Write,
) -> Result<Vec<PathBuf>, SourceError> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut left_out = Vec::new();
    append_dir(&mut builder, dir, Path::new(""), reverse, &mut left_out)?;
    builder
        .into_inner()
        .map_err(SourceError::Send)?
        .flush()
        .map_err(SourceError::Send)?;
    Ok(left_out)
}

/// Says (on hermetic's own stream, never in the build's output) which sockets and fifos
/// [`stream_source`] left out.
pub fn say_left_out(left_out: &[PathBuf]) {
    if left_out.is_empty() {
        return;
    }
    let names: Vec<String> = left_out
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    tracing::warn!(
        "left out of the build dir, as sockets and fifos carry no content: {}",
        names.join(", ")
    );
}

/// A pipe's default capacity, and so the most one read from it returns: the size of the
/// buffers on both ends of the source pipe. (Larger ones came from the heap's mmap path, a
/// map and an unmap per build.)
pub(crate) const PIPE_BUFFER_BYTES: usize = 64 * 1024;

/// Writes the whole stream of `dir` into `pipe` when it fits the pipe's buffer, so that
/// the write cannot block and no thread has to stream it (an empty or small source), and
/// returns what [`stream_source`] left out. Returns None, having written nothing, when it
/// does not fit.
pub(crate) fn send_if_it_fits(
    dir: &Path,
    reverse: bool,
    pipe: &fs::File,
) -> Result<Option<Vec<PathBuf>>, SourceError> {
    let Some(limit) = crate::sandbox::message::pipe_capacity(pipe) else {
        return Ok(None);
    };
    let mut stream = BoundedBuffer {
        bytes: Vec::new(),
        limit,
    };
    let left_out = match stream_source(dir, reverse, &mut stream) {
        Ok(left_out) => left_out,
        // Larger than the pipe (or a file that failed while being copied, which the
        // streaming thread meets again and reports).
        Err(SourceError::Send(_)) => return Ok(None),
        Err(err) => return Err(err),
    };
    let mut pipe = pipe;
    pipe.write_all(&stream.bytes).map_err(SourceError::Send)?;
    Ok(Some(left_out))
}

/// Takes bytes up to `limit`, then refuses.
struct BoundedBuffer {
    bytes: Vec<u8>,
    limit: usize,
}

impl Write for BoundedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(io::Error::other("more than the pipe holds"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    relative: &Path,
    reverse: bool,
    left_out: &mut Vec<PathBuf>,
) -> Result<(), SourceError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Read { path, source }
    };
    let mut entries: Vec<_> = fs::read_dir(dir)
        .and_then(|read| read.collect::<Result<Vec<_>, _>>())
        .map_err(read_error(dir))?;
    entries.sort_by_key(|entry| entry.file_name());
    if reverse {
        entries.reverse();
    }
    for entry in entries {
        let path = entry.path();
        let name = relative.join(entry.file_name());
        let meta = fs::symlink_metadata(&path).map_err(read_error(&path))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(read_error(&path))?;
            builder
                .append_link(&mut header, &name, &target)
                .map_err(SourceError::Send)?;
        } else if kind.is_dir() {
            builder
                .append_data(&mut header, &name, io::empty())
                .map_err(SourceError::Send)?;
            append_dir(builder, &path, &name, reverse, left_out)?;
        } else if kind.is_file() {
            let file = fs::File::open(&path).map_err(read_error(&path))?;
            header.set_size(meta.len());
            header.set_mode(if meta.mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            });
            let changed = || SourceError::Changed {
                path: path.clone(),
                expected: meta.len(),
            };
            let mut content = StatedLength::new(file, meta.len());
            if let Err(err) = builder.append_data(&mut header, &name, &mut content) {
                return Err(if content.came_up_short {
                    changed()
                } else {
                    SourceError::Send(err)
                });
            }
            let after = fs::symlink_metadata(&path).map_err(read_error(&path))?;
            if (after.len(), after.mtime(), after.mtime_nsec())
                != (meta.len(), meta.mtime(), meta.mtime_nsec())
            {
                return Err(changed());
            }
        } else if kind.is_fifo() || kind.is_socket() {
            left_out.push(name);
        } else {
            return Err(SourceError::Unsupported { path });
        }
    }
    Ok(())
}

/// A file's content as its tar header states it: exactly the length it had when it was
/// listed. A file written to while it is copied (a build's output tree inside the source,
/// say) must not put more or fewer bytes into the stream than its header announced: the
/// stream would then be read out of step, and the sandbox would fail on garbage headers
/// instead of saying which file changed.
struct StatedLength<R> {
    content: R,
    remaining: u64,
    came_up_short: bool,
}

impl<R: Read> StatedLength<R> {
    fn new(content: R, length: u64) -> Self {
        StatedLength {
            content,
            remaining: length,
            came_up_short: false,
        }
    }
}

impl<R: Read> Read for StatedLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let most = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.content.read(&mut buf[..most])?;
        if read == 0 {
            self.came_up_short = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than when it was listed",
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// Unpacks the launcher's stream into `dest`. Runs inside the sandbox after the host root
/// is detached. Entries come from our own launcher, but are still checked: every path must
/// be relative and plain, and its parent a directory this unpacking created.
pub(crate) fn unpack_source(stream: impl Read, dest: &Path) -> Result<(), StepError> {
    let fail = |path: &Path, source: io::Error| {
        StepError::new(
            Layer::Filesystem,
            "unpack the source",
            "write",
            Some(path.to_path_buf()),
            source,
        )
    };
    let mut archive = tar::Archive::new(stream);
    let mut created: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    created.insert(PathBuf::new());
    let entries = archive.entries().map_err(|err| fail(dest, err))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| fail(dest, err))?;
        let name = entry.path().map_err(|err| fail(dest, err))?.into_owned();
        let plain = name.components().all(|c| matches!(c, Component::Normal(_)));
        let parent = name.parent().map(Path::to_path_buf).unwrap_or_default();
        if !plain || !created.contains(&parent) {
            return Err(fail(
                &name,
                io::Error::other("unexpected path in the source stream"),
            ));
        }
        let target = dest.join(&name);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&target)
                    .map_err(|err| fail(&target, err))?;
                created.insert(name);
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|err| fail(&target, err))?
                    .ok_or_else(|| fail(&target, io::Error::other("symlink without a target")))?;
                symlink(link, &target).map_err(|err| fail(&target, err))?;
            }
            tar::EntryType::Regular => {
                let mode = entry.header().mode().map_err(|err| fail(&target, err))? & 0o755;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|err| fail(&target, err))?;
                io::copy(&mut entry, &mut file).map_err(|err| fail(&target, err))?;
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|err| fail(&target, err))?;
            }
            _ => {
                return Err(fail(
                    &target,
                    io::Error::other("unsupported entry type in the source stream"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (fs::File, fs::File) {
        let (read, write) = nix::unistd::pipe().unwrap();
        (fs::File::from(read), fs::File::from(write))
    }

    #[test]
    fn a_source_that_fits_the_pipe_is_in_it_whole_and_one_that_does_not_is_left_alone() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("small"), "content").unwrap();
        let (mut read, write) = pipe();
        assert_eq!(
            send_if_it_fits(src.path(), false, &write).unwrap(),
            Some(vec![])
        );
        drop(write);
        let mut sent = Vec::new();
        read.read_to_end(&mut sent).unwrap();
        let mut whole = Vec::new();
        stream_source(src.path(), false, &mut whole).unwrap();
        assert_eq!(sent, whole);

        fs::write(src.path().join("large"), vec![7u8; PIPE_BUFFER_BYTES]).unwrap();
        let (read, write) = pipe();
        assert_eq!(send_if_it_fits(src.path(), false, &write).unwrap(), None);
        drop(write);
        let mut sent = Vec::new();
        (&read).read_to_end(&mut sent).unwrap();
        assert!(
            sent.is_empty(),
            "nothing of a source that does not fit is written"
        );
    }

    #[test]
    fn a_source_that_cannot_be_read_is_an_error_before_anything_is_sent() {
        let src = tempfile::tempdir().unwrap();
        // A device node (as root, which the test suites run as): refused, not left out.
        nix::sys::stat::mknod(
            &src.path().join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::S_IRUSR,
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod needs root");
        let (read, write) = pipe();
        let err = send_if_it_fits(src.path(), false, &write).unwrap_err();
        assert!(matches!(err, SourceError::Unsupported { .. }), "{err}");
        drop(write);
        let mut sent = Vec::new();
        (&read).read_to_end(&mut sent).unwrap();
        assert!(sent.is_empty());
    }

    #[test]
    fn a_tree_round_trips_without_following_symlinks() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("d/e")).unwrap();
        fs::write(src.path().join("d/e/f"), "content").unwrap();
        fs::write(src.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.path().join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("/etc/passwd", src.path().join("link")).unwrap();
        let mut stream = Vec::new();
        stream_source(src.path(), false, &mut stream).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack_source(stream.as_slice(), dest.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dest.path().join("d/e/f")).unwrap(),
            "content"
        );
        assert_eq!(
            fs::metadata(dest.path().join("run.sh")).unwrap().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_link(dest.path().join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
    }

    #[test]
    fn reverse_order_lists_entries_backwards() {
        let src = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            fs::write(src.path().join(name), name).unwrap();
        }
        let names = |reverse| {
            let mut stream = Vec::new();
            stream_source(src.path(), reverse, &mut stream).unwrap();
            let mut archive = tar::Archive::new(stream.as_slice());
            archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(false), ["a", "b", "c"]);
        assert_eq!(names(true), ["c", "b", "a"]);
    }

    #[test]
    fn a_file_gives_the_stream_exactly_the_length_it_was_listed_with() {
        let mut longer = StatedLength::new(&b"grown since"[..], 5);
        let mut read = Vec::new();
        longer.read_to_end(&mut read).unwrap();
        assert_eq!(read, b"grown", "bytes past the listed length stay out");

        let mut shorter = StatedLength::new(&b"shr"[..], 5);
        let err = shorter.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(shorter.came_up_short);
    }

    #[test]
    fn a_file_that_shrinks_while_it_is_copied_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, vec![b'x'; 4096]).unwrap();
        // A tar sink that truncates the file after its header went out, as a writer
        // running beside the copy could.
        struct TruncatingSink<'a> {
            path: &'a Path,
            written: usize,
        }
        impl Write for TruncatingSink<'_> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.written += buf.len();
                if self.written >= 512 {
                    fs::File::options()
                        .write(true)
                        .open(self.path)?
                        .set_len(10)?;
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = TruncatingSink {
            path: &path,
            written: 0,
        };
        match stream_source(dir.path(), false, sink) {
            Err(SourceError::Changed {
                path: named,
                expected,
            }) => {
                assert_eq!(named, path);
                assert_eq!(expected, 4096);
            }
            other => panic!("expected the changed file to be named, got {other:?}"),
        }
    }

    #[test]
    fn fifos_and_sockets_in_the_source_are_left_out_and_named() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("sub")).unwrap();
        nix::unistd::mkfifo(
            &src.path().join("sub/pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(src.path().join("daemon.sock")).unwrap();
        fs::write(src.path().join("kept.txt"), "kept").unwrap();
        let mut stream = Vec::new();
        let left_out = stream_source(src.path(), false, &mut stream).unwrap();
        assert_eq!(
            left_out,
            [PathBuf::from("daemon.sock"), PathBuf::from("sub/pipe")]
        );
        let dest = tempfile::tempdir().unwrap();
        unpack_source(stream.as_slice(), dest.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dest.path().join("kept.txt")).unwrap(),
            "kept"
        );
        assert!(dest.path().join("sub").is_dir());
        assert!(!dest.path().join("sub/pipe").exists());
        assert!(!dest.path().join("daemon.sock").exists());
    }

    #[test]
    fn a_stream_that_writes_through_a_symlink_is_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        builder.append_link(&mut link, "escape", "/tmp").unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(1);
        builder
            .append_data(&mut file, "escape/x", &b"x"[..])
            .unwrap();
        let stream = builder.into_inner().unwrap();
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack_source(stream.as_slice(), dest.path()).is_err());
    }
}
