//! Deterministic packing of build outputs into tar+zstd, with their manifest.
//!
//! The tree was written by an untrusted build, so the walk never follows a symlink: every
//! open is beneath the build dir fd with symlink resolution refused (see `sys::archive`), and
//! symlinks are archived as symlinks with their target verbatim.
//!
//! Byte-for-byte determinism comes from: entries sorted by path bytes, fixed header fields
//! (GNU headers, uid/gid 0, empty owner names, one mtime, normalised modes), long names and
//! targets in GNU `L`/`K` members written the same way every time, zstd fed in fixed-size
//! chunks on one thread, and nothing read from the environment. It assumes the same zstd
//! library version (the `zstd` crate bundles it) and the same compression level.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::Digest as _;

use super::manifest::{FileEntry, FileKind, Manifest, MODE_EXECUTABLE, MODE_REGULAR, MODE_SYMLINK};
use super::outpath::{OutputPath, MAX_PATH_BYTES};
use crate::sys::archive::{self as sys, DirFd, NodeKind, NodeStat};

/// How file contents are read and fed to the compressor: large enough to amortise syscalls
/// and let BLAKE3 use its widest SIMD path.
const IO_CHUNK: usize = 1 << 20;
/// Size of the name and linkname fields of a tar header; longer values go in GNU `L`/`K`
/// members.
const TAR_NAME_FIELD: usize = 100;
/// Size of a tar block: headers, and content padded to a whole number of them.
const TAR_BLOCK: usize = 512;
/// Name GNU tar gives the `L`/`K` members that carry long names.
const GNU_LONG_LINK_NAME: &[u8] = b"././@LongLink";

/// Settings that shape the archive bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackOptions {
    /// Modification time of every entry (the build's `SOURCE_DATE_EPOCH`).
    pub mtime: u64,
    /// zstd compression level.
    pub zstd_level: i32,
}

/// Result of [`pack_outputs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedArchive {
    /// What the archive holds, entry by entry.
    pub manifest: Manifest,
    /// SHA-256 of the compressed archive bytes, lowercase hex.
    pub sha256: String,
    /// BLAKE3 of the compressed archive bytes, lowercase hex.
    pub blake3: String,
    /// Length of the compressed archive in bytes.
    pub size: u64,
}

/// Why outputs could not be packed or described.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("failed to open build dir `{root}`")]
    OpenBuildDir {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("output path `{path}` does not exist in the build dir")]
    MissingOutput { path: String },
    #[error("output path `{path}` is a symlink; outputs must be real files or directories")]
    OutputIsSymlink { path: String },
    #[error("output path `{output}` goes through `{path}`, which is not a directory")]
    AncestorNotDirectory { path: String, output: String },
    #[error("failed to stat `{path}`")]
    Stat {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to open directory `{path}`")]
    OpenDir {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to list directory `{path}`")]
    ReadDir {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to read symlink `{path}`")]
    ReadLink {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to open `{path}`")]
    OpenFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to read `{path}`")]
    ReadFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("unsupported file type at `{path}` ({kind}); outputs may only hold files, directories and symlinks")]
    UnsupportedFileType { path: String, kind: &'static str },
    #[error("failed to archive an entry of `{dir}`: its name {name:?} is not valid UTF-8")]
    NonUtf8Name { dir: String, name: String },
    #[error("failed to archive symlink `{path}`: its target is not valid UTF-8")]
    NonUtf8SymlinkTarget { path: String },
    #[error(
        "failed to archive `{path}`: the path is {len} bytes long, the limit is {MAX_PATH_BYTES}"
    )]
    PathTooLong { path: String, len: usize },
    #[error("`{path}` changed while it was being packed")]
    ChangedDuringPack { path: String },
    #[error("failed to write the archive")]
    WriteArchive {
        #[source]
        source: io::Error,
    },
}

/// Compression and hashing threads: the CPUs this process may run on (the build's pinned
/// set inside a sandbox), at most 8.
fn workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8) as u32)
}

/// Packs `outputs` (paths under the build dir `root`; files or directories, directories
/// recursively) into a deterministic tar+zstd stream written to `out`.
///
/// The archive holds each output's ancestor directories, then everything sorted by path
/// bytes, so a directory always precedes its contents. Hardlinks become regular files. On
/// error, whatever was written to `out` must be discarded.
pub fn pack_outputs<W: Write>(
    root: &Path,
    outputs: &[OutputPath],
    opts: &PackOptions,
    out: W,
) -> Result<PackedArchive, PackError> {
    pack_with_workers(root, outputs, opts, out, workers())
}

/// Packs everything under `root` as [`pack_outputs`] packs an output directory (symlinks
/// as symlinks, never followed): the whole build dir of a failed build, kept to look at
/// (the daemon's `keep_failed`). What no archive can hold (a fifo, a socket, a name that
/// is not UTF-8) is left out rather than failing the rest; the second value names it.
pub fn pack_whole_tree<W: Write>(
    root: &Path,
    opts: &PackOptions,
    out: W,
) -> Result<(PackedArchive, Vec<String>), PackError> {
    let mut tree = Tree::open(root)?;
    tree.left_out = Some(Vec::new());
    tree.walk("")?;
    let packed = write_archive(&tree, opts, out, workers())?;
    Ok((packed, tree.left_out.unwrap_or_default()))
}

fn pack_with_workers<W: Write>(
    root: &Path,
    outputs: &[OutputPath],
    opts: &PackOptions,
    out: W,
    workers: u32,
) -> Result<PackedArchive, PackError> {
    write_archive(&Tree::scan(root, outputs)?, opts, out, workers)
}

fn write_archive<W: Write>(
    tree: &Tree,
    opts: &PackOptions,
    out: W,
    workers: u32,
) -> Result<PackedArchive, PackError> {
    let write_failed = |source| PackError::WriteArchive { source };
    let mut encoder = zstd::stream::write::Encoder::new(DigestingWriter::new(out), opts.zstd_level)
        .map_err(write_failed)?;
    // The checksum lets the extractor tell a corrupted frame from a valid one on its own.
    encoder.include_checksum(true).map_err(write_failed)?;
    // zstd's multithreaded mode writes the same bytes whatever the number of workers (at
    // least one; the single-threaded mode writes others), so the archive stays identical
    // across machines while compression uses every core the build may use.
    encoder.multithread(workers).map_err(write_failed)?;
    let mut sink = TarSink {
        builder: tar::Builder::new(FixedChunkWriter::new(encoder)),
        mtime: opts.mtime,
    };
    let manifest = tree.emit(&mut sink)?;
    let chunked = sink.builder.into_inner().map_err(write_failed)?;
    let encoder = chunked.into_inner().map_err(write_failed)?;
    let mut digesting = encoder.finish().map_err(write_failed)?;
    digesting.inner.flush().map_err(write_failed)?;
    Ok(PackedArchive {
        manifest,
        sha256: hex::encode(digesting.sha256.finalize()),
        blake3: digesting.blake3.finalize().to_hex().to_string(),
        size: digesting.size,
    })
}

/// The manifest [`pack_outputs`] would produce for the same tree, without building an
/// archive (to compare two runs cheaply).
pub fn manifest_of_tree(root: &Path, outputs: &[OutputPath]) -> Result<Manifest, PackError> {
    Tree::scan(root, outputs)?.digest(workers() as usize)
}

/// [`manifest_of_tree`] of a source tree: sockets and fifos below the outputs are passed
/// over, as the source copy leaves them out.
pub fn manifest_of_source(root: &Path, outputs: &[OutputPath]) -> Result<Manifest, PackError> {
    let mut tree = Tree::open(root)?;
    tree.skip_sockets_and_fifos = true;
    Tree::scan_with(tree, outputs)?.digest(workers() as usize)
}

/// What the walk found at one path.
enum Node {
    Dir,
    Symlink { target: String },
    File { stat: NodeStat },
}

/// The outputs' entries, sorted by path, described but not yet read.
struct Tree {
    root: OwnedFd,
    nodes: BTreeMap<String, Node>,
    /// When set, entries no archive can hold are left out and named here instead of
    /// failing the walk (a failed build's tree, kept to look at).
    left_out: Option<Vec<String>>,
    /// Sockets and fifos are passed over, as the source copy passes over them (a source
    /// tree's digest describes what the build sees).
    skip_sockets_and_fifos: bool,
}

/// How an entry the walk could not take is named when it is left out; None for errors
/// that fail the walk whatever it is for (an unreadable directory, a failed stat).
fn left_out(err: &PackError) -> Option<String> {
    Some(match err {
        PackError::UnsupportedFileType { path, kind } => format!("{path} ({kind})"),
        PackError::NonUtf8Name { dir, name } if dir.is_empty() => {
            format!("{name} (name not UTF-8)")
        }
        PackError::NonUtf8Name { dir, name } => format!("{dir}/{name} (name not UTF-8)"),
        PackError::NonUtf8SymlinkTarget { path } => format!("{path} (link target not UTF-8)"),
        PackError::PathTooLong { path, len } => format!("{path} (path of {len} bytes)"),
        _ => return None,
    })
}

impl Tree {
    fn open(root: &Path) -> Result<Self, PackError> {
        let root_fd = sys::open_dir(root).map_err(|source| PackError::OpenBuildDir {
            root: root.to_owned(),
            source,
        })?;
        Ok(Self {
            root: root_fd,
            nodes: BTreeMap::new(),
            left_out: None,
            skip_sockets_and_fifos: false,
        })
    }

    fn scan(root: &Path, outputs: &[OutputPath]) -> Result<Self, PackError> {
        Self::scan_with(Self::open(root)?, outputs)
    }

    fn scan_with(mut tree: Self, outputs: &[OutputPath]) -> Result<Self, PackError> {
        let mut sorted: Vec<&OutputPath> = outputs.iter().collect();
        sorted.sort();
        let mut walked: Vec<&str> = Vec::new();
        for output in sorted {
            let output = output.as_str();
            tree.add_output(output)?;
            let covered = walked.iter().any(|dir| is_within(output, dir));
            if !covered && matches!(tree.nodes.get(output), Some(Node::Dir)) {
                tree.walk(output)?;
                walked.push(output);
            }
        }
        Ok(tree)
    }

    /// Checks `output` and its ancestors component by component and records them.
    fn add_output(&mut self, output: &str) -> Result<(), PackError> {
        let ancestors = output.match_indices('/').map(|(end, _)| &output[..end]);
        for ancestor in ancestors {
            match self.stat_output_prefix(ancestor, output)?.kind {
                NodeKind::Dir => {
                    self.nodes.insert(ancestor.to_owned(), Node::Dir);
                }
                NodeKind::Symlink => {
                    return Err(PackError::OutputIsSymlink {
                        path: ancestor.to_owned(),
                    })
                }
                _ => {
                    return Err(PackError::AncestorNotDirectory {
                        path: ancestor.to_owned(),
                        output: output.to_owned(),
                    })
                }
            }
        }
        let stat = self.stat_output_prefix(output, output)?;
        let node = match stat.kind {
            NodeKind::Symlink => {
                return Err(PackError::OutputIsSymlink {
                    path: output.to_owned(),
                })
            }
            NodeKind::Dir => Node::Dir,
            NodeKind::File => Node::File { stat },
            other => {
                return Err(PackError::UnsupportedFileType {
                    path: output.to_owned(),
                    kind: other.describe(),
                })
            }
        };
        self.nodes.insert(output.to_owned(), node);
        Ok(())
    }

    fn stat_output_prefix(&self, prefix: &str, output: &str) -> Result<NodeStat, PackError> {
        sys::stat_beneath(self.root.as_fd(), prefix).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                PackError::MissingOutput {
                    path: output.to_owned(),
                }
            } else {
                PackError::Stat {
                    path: prefix.to_owned(),
                    source,
                }
            }
        })
    }

    /// Records everything below directory `start` (the root itself when empty). Directories
    /// are reopened from the root by path rather than kept open, so deep trees cannot
    /// exhaust file descriptors.
    fn walk(&mut self, start: &str) -> Result<(), PackError> {
        let mut pending = vec![start.to_owned()];
        while let Some(dir_path) = pending.pop() {
            let open_path = if dir_path.is_empty() { "." } else { &dir_path };
            let mut dir = DirFd::open_beneath(self.root.as_fd(), open_path).map_err(|source| {
                PackError::OpenDir {
                    path: open_path.to_owned(),
                    source,
                }
            })?;
            let names = dir.names().map_err(|source| PackError::ReadDir {
                path: dir_path.clone(),
                source,
            })?;
            for name in names {
                if let Err(err) = self.add_child(&dir, &dir_path, &name, &mut pending) {
                    match (&mut self.left_out, left_out(&err)) {
                        (Some(entries), Some(entry)) => entries.push(entry),
                        _ => return Err(err),
                    }
                }
            }
        }
        Ok(())
    }

    /// Records child `name` of directory `dir_path`; a directory is queued in `pending`.
    fn add_child(
        &mut self,
        dir: &DirFd,
        dir_path: &str,
        name: &OsStr,
        pending: &mut Vec<String>,
    ) -> Result<(), PackError> {
        let name_str = name.to_str().ok_or_else(|| PackError::NonUtf8Name {
            dir: dir_path.to_owned(),
            name: name.to_string_lossy().into_owned(),
        })?;
        let path = if dir_path.is_empty() {
            name_str.to_owned()
        } else {
            format!("{dir_path}/{name_str}")
        };
        if path.len() > MAX_PATH_BYTES {
            return Err(PackError::PathTooLong {
                len: path.len(),
                path,
            });
        }
        let stat = dir.stat_child(name).map_err(|source| PackError::Stat {
            path: path.clone(),
            source,
        })?;
        let node = match stat.kind {
            NodeKind::Dir => {
                pending.push(path.clone());
                Node::Dir
            }
            NodeKind::File => Node::File { stat },
            NodeKind::Symlink => {
                let target = dir
                    .read_link_child(name)
                    .map_err(|source| PackError::ReadLink {
                        path: path.clone(),
                        source,
                    })?;
                let target = target
                    .into_string()
                    .map_err(|_| PackError::NonUtf8SymlinkTarget { path: path.clone() })?;
                Node::Symlink { target }
            }
            NodeKind::Fifo | NodeKind::Socket if self.skip_sockets_and_fifos => return Ok(()),
            other => {
                return Err(PackError::UnsupportedFileType {
                    path,
                    kind: other.describe(),
                })
            }
        };
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Feeds every entry to `sink` in path order, reading each file once, and returns the
    /// manifest.
    fn emit(&self, sink: &mut impl EntrySink) -> Result<Manifest, PackError> {
        let write_failed = |source| PackError::WriteArchive { source };
        let mut buffer = vec![0; IO_CHUNK];
        let mut files = Vec::with_capacity(self.nodes.len());
        for (path, node) in &self.nodes {
            let entry = match node {
                Node::Dir => {
                    sink.directory(path).map_err(write_failed)?;
                    FileEntry::dir(path)
                }
                Node::Symlink { target } => {
                    sink.symlink(path, target).map_err(write_failed)?;
                    FileEntry::symlink(path, target)
                }
                Node::File { stat } => self.emit_file(path, stat, sink, &mut buffer)?,
            };
            files.push(entry);
        }
        Ok(Manifest::new(files))
    }

    /// The manifest [`Tree::emit`] gives, with up to `workers` threads hashing files at
    /// once: one thread hashes more slowly than the page cache delivers. Files are handed
    /// out largest first, so a big file met late cannot leave the other threads idle, and
    /// the entries are put back in path order.
    fn digest(&self, workers: usize) -> Result<Manifest, PackError> {
        let nodes: Vec<(&String, &Node)> = self.nodes.iter().collect();
        let mut order: Vec<(usize, &NodeStat)> = nodes
            .iter()
            .enumerate()
            .filter_map(|(index, (_, node))| match node {
                Node::File { stat } => Some((index, stat)),
                _ => None,
            })
            .collect();
        order.sort_by_key(|(index, stat)| (std::cmp::Reverse(stat.size), *index));
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let hash_files = || {
            let mut buffer = vec![0; IO_CHUNK];
            let mut hashed = Vec::new();
            // After a failure the others stop taking files: the walk is refused anyway.
            while !failed.load(Ordering::Relaxed) {
                let Some(&(index, stat)) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let entry = self.emit_file(nodes[index].0, stat, &mut DigestOnly, &mut buffer);
                if entry.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                hashed.push((index, entry));
            }
            hashed
        };
        let workers = workers.clamp(1, order.len().max(1));
        let batches: Vec<Vec<(usize, Result<FileEntry, PackError>)>> = if workers == 1 {
            vec![hash_files()]
        } else {
            std::thread::scope(|scope| {
                let threads: Vec<_> = (0..workers).map(|_| scope.spawn(hash_files)).collect();
                threads
                    .into_iter()
                    .map(|thread| {
                        thread
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        let mut hashed: Vec<Option<Result<FileEntry, PackError>>> =
            nodes.iter().map(|_| None).collect();
        for (index, entry) in batches.into_iter().flatten() {
            hashed[index] = Some(entry);
        }
        let mut files = Vec::with_capacity(nodes.len());
        for ((path, node), entry) in nodes.iter().zip(hashed) {
            match (node, entry) {
                (Node::Dir, _) => files.push(FileEntry::dir(path)),
                (Node::Symlink { target }, _) => files.push(FileEntry::symlink(path, target)),
                // The first failure in path order is returned.
                (Node::File { .. }, Some(entry)) => files.push(entry?),
                // Not hashed because another file failed; that error comes further on.
                (Node::File { .. }, None) => {}
            }
        }
        Ok(Manifest::new(files))
    }

    fn emit_file(
        &self,
        path: &str,
        walked: &NodeStat,
        sink: &mut impl EntrySink,
        buffer: &mut [u8],
    ) -> Result<FileEntry, PackError> {
        let file = sys::open_file_beneath(self.root.as_fd(), path).map_err(|source| {
            PackError::OpenFile {
                path: path.to_owned(),
                source,
            }
        })?;
        let opened = sys::stat_fd(file.as_fd()).map_err(|source| PackError::Stat {
            path: path.to_owned(),
            source,
        })?;
        let same_file = opened.kind == NodeKind::File
            && (opened.dev, opened.ino, opened.size) == (walked.dev, walked.ino, walked.size);
        if !same_file {
            return Err(PackError::ChangedDuringPack {
                path: path.to_owned(),
            });
        }
        let mode = if walked.mode & 0o111 != 0 {
            MODE_EXECUTABLE
        } else {
            MODE_REGULAR
        };
        let mut content = FileContent::new(file, walked.size, buffer);
        let written = sink.file(path, mode, walked.size, &mut content);
        if let Some(source) = content.read_error.take() {
            return Err(PackError::ReadFile {
                path: path.to_owned(),
                source,
            });
        }
        written.map_err(|source| PackError::WriteArchive { source })?;
        if content.remaining != 0 {
            return Err(PackError::ChangedDuringPack {
                path: path.to_owned(),
            });
        }
        Ok(FileEntry {
            path: path.to_owned(),
            kind: FileKind::File,
            mode,
            size: walked.size,
            blake3: Some(content.hasher.finalize().to_hex().to_string()),
            target: None,
        })
    }
}

/// Whether `path` is `dir` itself or below it.
fn is_within(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Where the walk's entries go: into a tar stream, or only through the hasher.
trait EntrySink {
    fn directory(&mut self, path: &str) -> io::Result<()>;
    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()>;
    /// Must consume `content` to its end.
    fn file(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        content: &mut FileContent<'_>,
    ) -> io::Result<()>;
}

/// Sink of [`manifest_of_tree`]: contents are only hashed.
struct DigestOnly;

impl EntrySink for DigestOnly {
    fn directory(&mut self, _path: &str) -> io::Result<()> {
        Ok(())
    }

    fn symlink(&mut self, _path: &str, _target: &str) -> io::Result<()> {
        Ok(())
    }

    fn file(
        &mut self,
        _path: &str,
        _mode: u32,
        _size: u64,
        content: &mut FileContent<'_>,
    ) -> io::Result<()> {
        while content.fill()? != 0 {}
        Ok(())
    }
}

/// Sink of [`pack_outputs`]: writes deterministic tar members.
struct TarSink<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> TarSink<W> {
    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    /// Names `header` and appends the GNU `L`/`K` members that must precede it when the name
    /// or target does not fit its header field. Names are copied byte for byte: the tar
    /// crate's `set_path` and `set_link_name` would normalise them (`a/./b` becomes `a/b`),
    /// and targets must stay verbatim.
    fn name(
        &mut self,
        mut header: tar::Header,
        path: &str,
        target: Option<&str>,
    ) -> io::Result<tar::Header> {
        if path.len() > TAR_NAME_FIELD {
            self.append_long_name(tar::EntryType::GNULongName, path)?;
        }
        copy_truncated(&mut header.as_old_mut().name, path);
        if let Some(target) = target {
            if target.len() > TAR_NAME_FIELD {
                self.append_long_name(tar::EntryType::GNULongLink, target)?;
            }
            copy_truncated(&mut header.as_old_mut().linkname, target);
        }
        header.set_cksum();
        Ok(header)
    }

    /// Writes a GNU long-name member exactly as GNU tar (and the tar crate) lay it out.
    fn append_long_name(&mut self, kind: tar::EntryType, value: &str) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..GNU_LONG_LINK_NAME.len()].copy_from_slice(GNU_LONG_LINK_NAME);
        header.set_entry_type(kind);
        header.set_mode(MODE_REGULAR);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(value.len() as u64 + 1);
        header.set_cksum();
        self.builder
            .append(&header, value.as_bytes().chain(&[0u8][..]))
    }
}

fn copy_truncated(field: &mut [u8; TAR_NAME_FIELD], value: &str) {
    let len = value.len().min(TAR_NAME_FIELD);
    field[..len].copy_from_slice(&value.as_bytes()[..len]);
}

impl<W: Write> EntrySink for TarSink<W> {
    fn directory(&mut self, path: &str) -> io::Result<()> {
        let header = self.header(tar::EntryType::Directory, MODE_EXECUTABLE, 0);
        let header = self.name(header, path, None)?;
        self.builder.append(&header, io::empty())
    }

    fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let header = self.header(tar::EntryType::Symlink, MODE_SYMLINK, 0);
        let header = self.name(header, path, Some(target))?;
        self.builder.append(&header, io::empty())
    }

    /// Lays the member out as the tar builder would (header, content, zeros to a whole
    /// block), but writes the content from the read buffer straight on: the builder would
    /// copy it through a small buffer of its own.
    fn file(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        content: &mut FileContent<'_>,
    ) -> io::Result<()> {
        let header = self.header(tar::EntryType::Regular, mode, size);
        let header = self.name(header, path, None)?;
        let out = self.builder.get_mut();
        out.write_all(header.as_bytes())?;
        let mut written = 0;
        while content.fill()? != 0 {
            out.write_all(content.filled())?;
            written += content.filled().len();
        }
        // A file that shrank is refused by the caller; its padding does not matter.
        let padding = (TAR_BLOCK - written % TAR_BLOCK) % TAR_BLOCK;
        out.write_all(&[0; TAR_BLOCK][..padding])
    }
}

/// A file's content read in large blocks, each hashed with BLAKE3 as it arrives, so the file
/// is read exactly once whether it is archived or only digested.
struct FileContent<'b> {
    file: File,
    /// Bytes still to read; more than zero at the end means the file shrank.
    remaining: u64,
    buffer: &'b mut [u8],
    /// Length of the block in `buffer`.
    len: usize,
    hasher: blake3::Hasher,
    /// Set when reading failed, so callers can tell it apart from a failing archive writer.
    read_error: Option<io::Error>,
}

impl<'b> FileContent<'b> {
    fn new(file: File, size: u64, buffer: &'b mut [u8]) -> Self {
        Self {
            file,
            remaining: size,
            buffer,
            len: 0,
            hasher: blake3::Hasher::new(),
            read_error: None,
        }
    }

    /// Replaces the buffer with the next block of the file and hashes it; returns its length,
    /// 0 at the end. Bytes beyond the size seen by the walk are never read. A read error is
    /// kept in `read_error` and returned as a plain error for the sink to pass on.
    fn fill(&mut self) -> io::Result<usize> {
        let want =
            usize::try_from(self.remaining).map_or(self.buffer.len(), |r| r.min(self.buffer.len()));
        let mut filled = 0;
        while filled < want {
            match self.file.read(&mut self.buffer[filled..want]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let kind = err.kind();
                    self.read_error = Some(err);
                    return Err(io::Error::new(kind, "reading an output file failed"));
                }
            }
        }
        self.hasher.update(&self.buffer[..filled]);
        self.remaining -= filled as u64;
        self.len = filled;
        Ok(filled)
    }

    /// The block the last [`FileContent::fill`] read.
    fn filled(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

/// Passes data on in chunks of exactly [`IO_CHUNK`] bytes (except the last), so the
/// compressor's input boundaries, and thus its output, never depend on how the tar writer
/// split its writes, and zstd is called once per MiB rather than once per header.
struct FixedChunkWriter<W: Write> {
    inner: W,
    chunk: Vec<u8>,
}

impl<W: Write> FixedChunkWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            chunk: Vec::with_capacity(IO_CHUNK),
        }
    }

    /// Passes on the last, partial chunk and returns the inner writer.
    fn into_inner(mut self) -> io::Result<W> {
        self.inner.write_all(&self.chunk)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for FixedChunkWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(IO_CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&data[..n]);
        if self.chunk.len() == IO_CHUNK {
            self.inner.write_all(&self.chunk)?;
            self.chunk.clear();
        }
        Ok(n)
    }

    /// Does not pass on a partial chunk: that would make chunk boundaries depend on when
    /// flush is called. [`FixedChunkWriter::into_inner`] does it at the end.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes and counts the compressed bytes on their way to the caller's writer.
struct DigestingWriter<W: Write> {
    inner: W,
    sha256: sha2::Sha256,
    blake3: blake3::Hasher,
    size: u64,
}

impl<W: Write> DigestingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            sha256: sha2::Sha256::new(),
            blake3: blake3::Hasher::new(),
            size: 0,
        }
    }
}

impl<W: Write> Write for DigestingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.sha256.update(&data[..n]);
        self.blake3.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::archive::extract::{extract_verified, ExtractLimits};

    fn outputs(paths: &[&str]) -> Vec<OutputPath> {
        paths
            .iter()
            .map(|path| OutputPath::parse(path).unwrap())
            .collect()
    }

    fn options() -> PackOptions {
        PackOptions {
            mtime: 1_700_000_000,
            zstd_level: 3,
        }
    }

    fn pack(root: &Path, outputs: &[OutputPath]) -> Result<(Vec<u8>, PackedArchive), PackError> {
        let mut bytes = Vec::new();
        let packed = pack_outputs(root, outputs, &options(), &mut bytes)?;
        Ok((bytes, packed))
    }

    /// Incompressible, reproducible bytes spanning several read chunks.
    fn noise(len: usize) -> Vec<u8> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 33) as u8
            })
            .collect()
    }

    enum Item {
        Dir(&'static str),
        File(String, Vec<u8>, bool),
        Link(&'static str, String),
        HardLink(&'static str, &'static str),
    }

    fn long_dir() -> String {
        format!(
            "out/{}",
            "long-directory-name/".repeat(6).trim_end_matches('/')
        )
    }

    fn sample_items() -> Vec<Item> {
        vec![
            Item::Dir("out"),
            Item::Dir("out/bin"),
            Item::File(
                "out/bin/tool".into(),
                b"#!/bin/sh\necho hi\n".to_vec(),
                true,
            ),
            Item::Dir("out/lib"),
            Item::File("out/lib/data.txt".into(), b"hello\n".to_vec(), false),
            Item::File("out/empty".into(), Vec::new(), false),
            Item::File(
                "out/a.txt".into(),
                b"sorts between out/a and its children".to_vec(),
                false,
            ),
            Item::Dir("out/a"),
            Item::File("out/a/b".into(), b"b".to_vec(), false),
            Item::File("out/big.bin".into(), noise(3 * IO_CHUNK + 17), false),
            Item::Link("out/rel", "lib/./data.txt".into()),
            Item::Link("out/abs", "/etc/passwd".into()),
            Item::Link("out/long-target", "t/".repeat(80)),
            Item::Dir("out/long-directory-name"),
            Item::File(
                "out/ünïcode name".into(),
                "ü".repeat(10).into_bytes(),
                false,
            ),
            Item::HardLink("out/hard", "out/lib/data.txt"),
            Item::Dir("other"),
            Item::File("other/file.txt".into(), b"other".to_vec(), false),
            Item::File("other/not-an-output.txt".into(), b"no".to_vec(), false),
            Item::File("stray.txt".into(), b"no".to_vec(), false),
        ]
    }

    /// Creates the sample tree, items in reverse order if `reverse`, with permission bits
    /// varied by `loose` (as a different umask would) and every mtime set to `mtime`.
    fn build_tree(root: &Path, reverse: bool, loose: bool, mtime: SystemTime) {
        let long = long_dir();
        fs::create_dir_all(root.join(&long)).unwrap();
        for dir in ["out/bin", "out/lib", "out/a", "other"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let mut items = sample_items();
        items.push(Item::File(format!("{long}/leaf"), b"leaf".to_vec(), false));
        if reverse {
            items.reverse();
        }
        let (exec_mode, file_mode, dir_mode) = if loose {
            (0o775, 0o664, 0o777)
        } else {
            (0o700, 0o600, 0o700)
        };
        let mut hard_links = Vec::new();
        for item in items {
            match item {
                Item::Dir(path) => {
                    fs::set_permissions(root.join(path), fs::Permissions::from_mode(dir_mode))
                        .unwrap()
                }
                Item::File(path, content, executable) => {
                    let path = root.join(path);
                    fs::write(&path, content).unwrap();
                    let mode = if executable { exec_mode } else { file_mode };
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
                }
                Item::Link(path, target) => symlink(target, root.join(path)).unwrap(),
                Item::HardLink(path, original) => hard_links.push((path, original)),
            }
        }
        for (path, original) in hard_links {
            fs::hard_link(root.join(original), root.join(path)).unwrap();
        }
        set_mtimes(root, mtime);
    }

    fn set_mtimes(dir: &Path, mtime: SystemTime) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                set_mtimes(&path, mtime);
            }
            if !meta.is_symlink() {
                fs::File::open(&path).unwrap().set_modified(mtime).unwrap();
            }
        }
    }

    fn chown_tree(dir: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                chown_tree(&path, uid, gid);
            } else {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
    }

    fn sample_outputs() -> Vec<OutputPath> {
        outputs(&["out", "other/file.txt", "out/bin"])
    }

    /// Extracts `bytes` into `dest` against `manifest`, with the default limits.
    fn restore(
        bytes: &[u8],
        manifest: &crate::archive::manifest::Manifest,
        dest: &Path,
    ) -> Result<crate::archive::extract::ExtractReport, crate::archive::extract::ExtractError> {
        extract_verified(bytes, manifest, dest, &ExtractLimits::default())
    }

    #[test]
    fn round_trip_restores_the_same_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("build");
        build_tree(
            &root,
            false,
            false,
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        );
        let (bytes, packed) = pack(&root, &sample_outputs()).unwrap();

        assert_eq!(packed.size, bytes.len() as u64);
        assert_eq!(packed.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(packed.blake3, blake3::hash(&bytes).to_hex().to_string());
        assert_eq!(
            packed.manifest,
            manifest_of_tree(&root, &sample_outputs()).unwrap()
        );
        packed.manifest.validate().unwrap();

        let manifest = &packed.manifest;
        let entry = |path: &str| manifest.files.iter().find(|entry| entry.path == path);
        assert_eq!(entry("out/bin/tool").unwrap().mode, 0o755);
        assert_eq!(entry("out/lib/data.txt").unwrap().mode, 0o644);
        assert_eq!(entry("out/a").unwrap().kind, FileKind::Dir);
        assert_eq!(entry("other").unwrap().kind, FileKind::Dir);
        assert_eq!(
            entry("out/rel").unwrap().target.as_deref(),
            Some("lib/./data.txt")
        );
        let hard = entry("out/hard").unwrap();
        assert_eq!((hard.kind, hard.size), (FileKind::File, 6));
        assert!(entry("other/not-an-output.txt").is_none());
        assert!(entry("stray.txt").is_none());
        let paths: Vec<&str> = manifest
            .files
            .iter()
            .map(|entry| entry.path.as_str())
            .collect();
        assert!(paths.windows(2).all(|pair| pair[0] < pair[1]), "{paths:?}");
        assert!(paths.iter().any(|path| path.len() > TAR_NAME_FIELD));

        let dest = tmp.path().join("restored");
        let report = restore(&bytes, manifest, &dest).unwrap();
        assert_eq!(report.files, manifest.files.len() as u64);
        assert_eq!(
            report.bytes,
            manifest.files.iter().map(|entry| entry.size).sum::<u64>()
        );
        assert_eq!(
            &manifest_of_tree(&dest, &sample_outputs()).unwrap(),
            manifest
        );
        assert_eq!(
            fs::read(dest.join("out/big.bin")).unwrap(),
            noise(3 * IO_CHUNK + 17)
        );
        assert_eq!(
            fs::read_link(dest.join("out/abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        let mode = |path: &str| {
            fs::symlink_metadata(dest.join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("out/bin/tool"), 0o755);
        assert_eq!(mode("out/lib/data.txt"), 0o644);
        assert_eq!(mode("out/a"), 0o755);
        assert_eq!(mode(""), 0o755);
    }

    #[test]
    fn same_tree_gives_identical_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let first = tmp.path().join("first");
        build_tree(
            &first,
            false,
            false,
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        );
        let second = tmp.path().join("elsewhere/second");
        build_tree(&second, true, true, SystemTime::now());
        if nix::unistd::geteuid().is_root() {
            chown_tree(&second, 1234, 5678);
        }

        let (bytes, packed) = pack(&first, &sample_outputs()).unwrap();
        let (again, _) = pack(&first, &sample_outputs()).unwrap();
        assert!(bytes == again, "packing the same tree twice differs");
        let reordered: Vec<OutputPath> = sample_outputs().into_iter().rev().collect();
        let (other, other_packed) = pack(&second, &reordered).unwrap();
        assert_eq!(packed, other_packed);
        assert!(
            bytes == other,
            "a copy made in another order with other modes and times differs"
        );

        let mut archive =
            tar::Archive::new(zstd::stream::read::Decoder::new(bytes.as_slice()).unwrap());
        for member in archive.entries().unwrap() {
            let member = member.unwrap();
            let header = member.header();
            assert_eq!(header.mtime().unwrap(), options().mtime);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        }
    }

    /// Spans several of zstd's multithreaded jobs, so a worker count that changed the
    /// bytes would show.
    #[test]
    fn the_number_of_compression_workers_does_not_change_the_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("noise"), noise(6 << 20)).unwrap();
        fs::write(out.join("text"), "compressible line\n".repeat(600_000)).unwrap();
        let archive = |workers| {
            let mut bytes = Vec::new();
            pack_with_workers(
                tmp.path(),
                &outputs(&["out"]),
                &options(),
                &mut bytes,
                workers,
            )
            .unwrap();
            bytes
        };
        let one = archive(1);
        assert!(one == archive(2), "2 workers wrote other bytes than 1");
        assert!(one == archive(5), "5 workers wrote other bytes than 1");
    }

    #[test]
    fn hashing_threads_give_the_sequential_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("build");
        build_tree(&root, false, false, SystemTime::now());
        let tree = Tree::scan(&root, &sample_outputs()).unwrap();
        let sequential = tree.emit(&mut DigestOnly).unwrap();
        for workers in [1, 2, 7, 100] {
            assert_eq!(
                tree.digest(workers).unwrap(),
                sequential,
                "{workers} workers"
            );
        }
    }

    #[test]
    fn a_file_gone_after_the_walk_fails_the_threaded_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("build");
        build_tree(&root, false, false, SystemTime::now());
        let tree = Tree::scan(&root, &sample_outputs()).unwrap();
        fs::remove_file(root.join("out/lib/data.txt")).unwrap();
        let err = tree.digest(3).unwrap_err();
        assert!(
            matches!(&err, PackError::OpenFile { path, .. } if path == "out/lib/data.txt"),
            "{err}"
        );
    }

    /// Far more data than the decoding thread reads ahead: a refusal at the first file
    /// stops it while it waits to hand over a chunk, and a good archive still restores.
    #[test]
    fn restores_stop_early_or_finish_with_the_decoder_ahead() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        for index in 0..12 {
            fs::write(out.join(format!("f{index:02}")), noise(IO_CHUNK + index)).unwrap();
        }
        let (bytes, packed) = pack(tmp.path(), &outputs(&["out"])).unwrap();
        let mut tampered = packed.manifest.clone();
        tampered.files[1].blake3 = Some("0".repeat(64));
        let err = restore(&bytes, &tampered, &tmp.path().join("refused")).unwrap_err();
        assert_eq!(err.reason(), "content_digest_mismatch", "{err}");
        assert!(!tmp.path().join("refused").exists());

        let dest = tmp.path().join("restored");
        restore(&bytes, &packed.manifest, &dest).unwrap();
        assert_eq!(
            fs::read(dest.join("out/f11")).unwrap(),
            noise(IO_CHUNK + 11)
        );
    }

    #[test]
    fn missing_outputs_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("out")).unwrap();
        for missing in ["nope", "out/nope", "nope/deeper"] {
            let err = pack(tmp.path(), &outputs(&[missing])).unwrap_err();
            assert!(
                matches!(&err, PackError::MissingOutput { path } if path == missing),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!("output path `{missing}` does not exist in the build dir")
            );
        }
    }

    #[test]
    fn symlink_outputs_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("out/bin")).unwrap();
        fs::write(tmp.path().join("out/file"), b"x").unwrap();
        symlink("out", tmp.path().join("link")).unwrap();
        for (output, offender) in [("link", "link"), ("link/bin", "link")] {
            let err = pack(tmp.path(), &outputs(&[output])).unwrap_err();
            assert!(
                matches!(&err, PackError::OutputIsSymlink { path } if path == offender),
                "{err}"
            );
        }
        let err = pack(tmp.path(), &outputs(&["out/file/x"])).unwrap_err();
        assert!(
            matches!(&err, PackError::AncestorNotDirectory { path, .. } if path == "out/file"),
            "{err}"
        );
    }

    #[test]
    fn symlinks_inside_outputs_are_stored_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        nix::unistd::mkfifo(&outside.join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        let root = tmp.path().join("build");
        fs::create_dir_all(root.join("out")).unwrap();
        symlink("/etc/passwd", root.join("out/passwd")).unwrap();
        symlink(&outside, root.join("out/escape")).unwrap();

        let (bytes, packed) = pack(&root, &outputs(&["out"])).unwrap();
        let targets: Vec<(&str, Option<&str>)> = packed
            .manifest
            .files
            .iter()
            .map(|entry| (entry.path.as_str(), entry.target.as_deref()))
            .collect();
        let outside_target = outside.to_str().unwrap();
        assert_eq!(
            targets,
            [
                ("out", None),
                ("out/escape", Some(outside_target)),
                ("out/passwd", Some("/etc/passwd"))
            ]
        );
        let size: u64 = packed.manifest.files.iter().map(|entry| entry.size).sum();
        assert_eq!(
            size, 0,
            "no file content may have been read through the links"
        );
        let mut archive =
            tar::Archive::new(zstd::stream::read::Decoder::new(bytes.as_slice()).unwrap());
        let kinds: Vec<tar::EntryType> = archive
            .entries()
            .unwrap()
            .map(|member| member.unwrap().header().entry_type())
            .collect();
        assert_eq!(
            kinds,
            [
                tar::EntryType::Directory,
                tar::EntryType::Symlink,
                tar::EntryType::Symlink
            ]
        );
    }

    #[test]
    fn fifos_sockets_and_non_utf8_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("fifo")).unwrap();
        nix::unistd::mkfifo(&tmp.path().join("fifo/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        for output in ["fifo", "fifo/pipe"] {
            let err = pack(tmp.path(), &outputs(&[output])).unwrap_err();
            assert!(
                matches!(&err, PackError::UnsupportedFileType { path, kind: "fifo" } if path == "fifo/pipe"),
                "{err}"
            );
            assert!(err.to_string().contains("fifo/pipe"), "{err}");
        }

        fs::create_dir_all(tmp.path().join("socket")).unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(tmp.path().join("socket/sock")).unwrap();
        let err = pack(tmp.path(), &outputs(&["socket"])).unwrap_err();
        assert!(
            matches!(&err, PackError::UnsupportedFileType { kind: "socket", .. }),
            "{err}"
        );

        fs::create_dir_all(tmp.path().join("bytes")).unwrap();
        fs::write(
            tmp.path()
                .join("bytes")
                .join(std::ffi::OsStr::from_bytes(b"\xff")),
            b"",
        )
        .unwrap();
        let err = pack(tmp.path(), &outputs(&["bytes"])).unwrap_err();
        assert!(
            matches!(&err, PackError::NonUtf8Name { dir, .. } if dir == "bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_whole_tree_packs_with_symlinks_as_symlinks_leaves_out_the_rest_and_restores() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("build");
        fs::create_dir_all(root.join("obj/deep")).unwrap();
        fs::write(root.join("Makefile"), b"all:\n").unwrap();
        fs::write(root.join("obj/deep/half.o"), b"half").unwrap();
        symlink("/etc/passwd", root.join("escape")).unwrap();
        nix::unistd::mkfifo(&root.join("obj/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs::create_dir(root.join(std::ffi::OsStr::from_bytes(b"bad\xff"))).unwrap();
        fs::write(
            root.join(std::ffi::OsStr::from_bytes(b"bad\xff/inside")),
            b"",
        )
        .unwrap();
        let mut bytes = Vec::new();
        let (packed, left_out) = pack_whole_tree(&root, &options(), &mut bytes).unwrap();
        let mut left_out = left_out;
        left_out.sort();
        assert_eq!(
            left_out,
            ["bad\u{fffd} (name not UTF-8)", "obj/pipe (fifo)"],
            "what no archive holds is left out and named"
        );
        let paths: Vec<(&str, Option<&str>)> = packed
            .manifest
            .files
            .iter()
            .map(|entry| (entry.path.as_str(), entry.target.as_deref()))
            .collect();
        assert_eq!(
            paths,
            [
                ("Makefile", None),
                ("escape", Some("/etc/passwd")),
                ("obj", None),
                ("obj/deep", None),
                ("obj/deep/half.o", None),
            ]
        );
        let dest = tmp.path().join("kept");
        restore(&bytes, &packed.manifest, &dest).unwrap();
        assert_eq!(fs::read(dest.join("obj/deep/half.o")).unwrap(), b"half");
        assert_eq!(
            fs::read_link(dest.join("escape")).unwrap(),
            Path::new("/etc/passwd")
        );

        let mut empty = Vec::new();
        fs::create_dir(tmp.path().join("empty")).unwrap();
        let (packed, left_out) =
            pack_whole_tree(&tmp.path().join("empty"), &options(), &mut empty).unwrap();
        assert!(packed.manifest.files.is_empty());
        assert!(left_out.is_empty());
    }

    #[test]
    fn no_outputs_give_an_empty_archive_that_restores() {
        let tmp = tempfile::tempdir().unwrap();
        let (bytes, packed) = pack(tmp.path(), &[]).unwrap();
        assert!(packed.manifest.files.is_empty());
        let dest = tmp.path().join("dest");
        restore(&bytes, &packed.manifest, &dest).unwrap();
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
    }

    /// Random trees: what is packed comes back entry for entry, and the archive's bytes
    /// depend only on the tree (not on the order it was made in, its permission bits
    /// beyond the exec bit, its times, or how many threads compress).
    mod properties {
        use std::collections::BTreeMap;
        use std::os::unix::fs::PermissionsExt;

        use proptest::prelude::*;

        use super::*;

        #[derive(Clone, Debug)]
        enum Entry {
            File {
                size: usize,
                executable: bool,
                seed: u8,
            },
            Dir,
            Symlink {
                target: String,
            },
        }

        /// Paths below `out/`, deduplicated, no entry below a file or a symlink.
        fn tree() -> impl Strategy<Value = BTreeMap<String, Entry>> {
            let name = prop_oneof![
                Just("a"),
                Just("b"),
                Just("z.txt"),
                Just("Ä-ü"),
                Just("with space"),
                Just("x".repeat(120).leak() as &str),
            ];
            let path = proptest::collection::vec(name, 1..4).prop_map(|parts| parts.join("/"));
            let entry = prop_oneof![
                4 => (0usize..70_000, any::<bool>(), any::<u8>())
                    .prop_map(|(size, executable, seed)| Entry::File { size, executable, seed }),
                1 => Just(Entry::Dir),
                1 => prop_oneof![Just("a"), Just("../b"), Just("z.txt"), Just("missing")]
                    .prop_map(|target| Entry::Symlink { target: target.to_owned() }),
            ];
            proptest::collection::vec((path, entry), 0..20).prop_map(|entries| {
                let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
                for (path, entry) in entries {
                    let blocked = tree.iter().any(|(other, kind)| {
                        other == &path
                            || (path.starts_with(&format!("{other}/"))
                                && !matches!(kind, Entry::Dir))
                            || other.starts_with(&format!("{path}/"))
                    });
                    if !blocked {
                        tree.insert(path, entry);
                    }
                }
                tree
            })
        }

        /// Makes `tree` under `root/out`, in `reversed` order or not, with permission
        /// bits as a umask of 022 or 077 would leave them, and its own times.
        fn make(root: &Path, tree: &BTreeMap<String, Entry>, reversed: bool, private: bool) {
            let out = root.join("out");
            fs::create_dir_all(&out).unwrap();
            let mut entries: Vec<_> = tree.iter().collect();
            if reversed {
                entries.reverse();
            }
            let (dir_mode, file_mode, exec_mode) = if private {
                (0o700, 0o600, 0o700)
            } else {
                (0o755, 0o644, 0o755)
            };
            for (path, entry) in entries {
                let at = out.join(path);
                fs::create_dir_all(at.parent().unwrap()).unwrap();
                match entry {
                    Entry::File {
                        size,
                        executable,
                        seed,
                    } => {
                        let bytes: Vec<u8> = (0..*size)
                            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(*seed))
                            .collect();
                        fs::write(&at, bytes).unwrap();
                        let mode = if *executable { exec_mode } else { file_mode };
                        fs::set_permissions(&at, fs::Permissions::from_mode(mode)).unwrap();
                    }
                    Entry::Dir => fs::create_dir_all(&at).unwrap(),
                    Entry::Symlink { target } => symlink(target, &at).unwrap(),
                }
            }
            let mut dirs = vec![out.clone()];
            while let Some(dir) = dirs.pop() {
                for entry in fs::read_dir(&dir).unwrap().flatten() {
                    if entry.file_type().unwrap().is_dir() {
                        dirs.push(entry.path());
                    }
                }
                fs::set_permissions(&dir, fs::Permissions::from_mode(dir_mode)).unwrap();
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn a_packed_tree_extracts_to_the_same_manifest(tree in tree()) {
                let tmp = tempfile::tempdir().unwrap();
                let root = tmp.path().join("build");
                make(&root, &tree, false, false);
                let (bytes, packed) = pack(&root, &outputs(&["out"])).unwrap();
                let dest = tmp.path().join("dest");
                restore(&bytes, &packed.manifest, &dest).unwrap();
                prop_assert_eq!(
                    manifest_of_tree(&dest, &outputs(&["out"])).unwrap(),
                    packed.manifest
                );
            }

            #[test]
            fn the_bytes_depend_only_on_the_tree(tree in tree()) {
                let tmp = tempfile::tempdir().unwrap();
                let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
                make(&first, &tree, false, false);
                make(&second, &tree, true, true);
                let packed = |root: &Path, workers: u32| {
                    let mut bytes = Vec::new();
                    pack_with_workers(root, &outputs(&["out"]), &options(), &mut bytes, workers)
                        .unwrap();
                    bytes
                };
                let reference = packed(&first, 1);
                prop_assert!(packed(&second, 1) == reference, "creation order or modes changed the bytes");
                for workers in [2, 8] {
                    prop_assert!(packed(&first, workers) == reference, "{} workers changed the bytes", workers);
                }
            }
        }

        #[test]
        fn a_large_sparse_file_round_trips() {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("build");
            fs::create_dir_all(root.join("out")).unwrap();
            let sparse = fs::File::create(root.join("out/sparse")).unwrap();
            sparse.set_len(24 << 20).unwrap();
            std::os::unix::fs::FileExt::write_at(&sparse, b"middle", 12 << 20).unwrap();
            drop(sparse);
            let (bytes, packed) = pack(&root, &outputs(&["out"])).unwrap();
            let dest = tmp.path().join("dest");
            restore(&bytes, &packed.manifest, &dest).unwrap();
            let restored = fs::read(dest.join("out/sparse")).unwrap();
            assert_eq!(restored.len(), 24 << 20);
            assert_eq!(&restored[12 << 20..(12 << 20) + 6], b"middle");
            assert_eq!(
                manifest_of_tree(&dest, &outputs(&["out"])).unwrap(),
                packed.manifest
            );
        }
    }
}
