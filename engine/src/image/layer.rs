//! The strict layer applier: an image's layers applied in order into a private directory,
//! as the OCI image spec's layer.md says, as strictly as a cache restore reads an archive.
//!
//! Each layer is read once: the blob's bytes are hashed (its descriptor's digest and size),
//! decompressed (none, gzip or zstd, with nothing after the stream), hashed again (the
//! config's `diff_id`) and parsed member by member. Whiteouts (`.wh.NAME`) and opaque
//! whiteouts (`.wh..wh..opq`) hide what lower layers put there and never what this layer
//! wrote, wherever they stand in the tar; a path that exists is replaced (unlinked and
//! created anew, so a hard link to it in a lower layer keeps the old content), except that
//! a directory over a directory only takes the new mode. Every write, link and removal goes
//! through the fd of the parent directory, reached from the root without following a
//! symlink, so no member can reach outside the tree (umoci's CVE-2021-29136 followed a
//! symlink named `.`).
//!
//! Refused, with the layer's digest, the member's path and the [`Rule`]: absolute paths,
//! `..`, names that need normalising, writes through symlinks, device nodes, fifos,
//! setuid/setgid files and file capabilities, hard links out of the tree or to nothing,
//! AUFS metadata, and anything over the [`ImageLimits`]. Ownership and times are never
//! applied; modes are kept, and set only once every layer is in (so an unprivileged
//! owner can still write into a directory a layer made 0555).
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::error::{Refusal, Rule};
use super::fs::remove_tree;
use super::limits::ImageLimits;
use super::member::{next_member, Member, MemberError};
use super::reference::ImageDigest;
use super::spec::Compression;
use super::tree::{ScanError, TreeManifest};
use crate::sys::archive::{self as sys, DirFd, NodeKind};

const TAR_BLOCK: u64 = 512;
/// Two zero blocks end a tar stream.
const TAR_END_MARKER: u64 = 2 * TAR_BLOCK;
/// Largest zstd window accepted (128 MiB), what level 22 uses; bounds the decoder's memory.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Modes while the tree is assembled: ours to write into, nobody else's to look at.
const ASSEMBLY_DIR_MODE: u32 = 0o700;
/// Parents a layer implies without listing them get the mode most tools give them.
const IMPLIED_DIR_MODE: u32 = 0o755;
const IO_CHUNK: usize = 1 << 20;

/// One layer, as the manifest and the config describe it.
pub(super) struct Layer<'a> {
    pub(super) digest: &'a ImageDigest,
    pub(super) size: u64,
    pub(super) compression: Compression,
    pub(super) diff_id: &'a ImageDigest,
}

/// Why a layer was not applied.
#[derive(Debug)]
pub(super) enum LayerFailure {
    Refused(Refusal),
    /// The blob could not be read (a local I/O error, not the image's fault).
    Read(io::Error),
    /// The tree being assembled could not be written.
    Write {
        path: String,
        source: io::Error,
    },
}

impl From<Refusal> for LayerFailure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// The tree being assembled from an image's layers.
pub(super) struct Assembly {
    root: OwnedFd,
    /// The mode every file and directory will get once all layers are in.
    modes: BTreeMap<String, u32>,
    entries: u64,
    bytes: u64,
    limits: ImageLimits,
    buffer: Vec<u8>,
}

/// What a member is, from its typeflag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

/// A member's name, checked: the root itself, or a canonical relative path.
enum Name {
    Root,
    Path(String),
}

/// What the readers under the tar parser saw, to tell why a read failed.
#[derive(Default)]
struct StreamState {
    blob_failed: Cell<bool>,
    blob_too_long: Cell<bool>,
    decoding_failed: Cell<bool>,
    decoded_to_end: Cell<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The blob as stored, compressed.
    Blob,
    /// The tar stream, decompressed.
    Tar,
}

/// Hashes and counts the bytes that pass; on the blob side, refuses to pass more than
/// `max`, so a blob longer than its descriptor is never read past it.
struct Metered<'s, R> {
    inner: R,
    /// None where another `Metered` hashes the same bytes (an uncompressed layer's tar
    /// stream is its blob).
    hasher: Option<Sha256>,
    count: u64,
    max: u64,
    side: Side,
    state: &'s StreamState,
}

impl<'s, R: Read> Metered<'s, R> {
    fn new(inner: R, max: u64, side: Side, state: &'s StreamState, hash: bool) -> Self {
        Self {
            inner,
            hasher: hash.then(Sha256::new),
            count: 0,
            max,
            side,
            state,
        }
    }
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Err(err),
            Err(err) => {
                match self.side {
                    Side::Blob => self.state.blob_failed.set(true),
                    Side::Tar => self.state.decoding_failed.set(true),
                }
                return Err(err);
            }
        };
        if n == 0 && self.side == Side::Tar {
            self.state.decoded_to_end.set(true);
        }
        if self.count + n as u64 > self.max {
            self.state.blob_too_long.set(true);
            return Err(io::Error::other(
                "the blob is longer than its descriptor says",
            ));
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// A single gzip member, with nothing after it: a second member or trailing bytes would be
/// read by some unpackers and not others.
struct Gunzip<R: BufRead> {
    decoder: flate2::bufread::GzDecoder<R>,
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.decoder.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.decoder.get_mut().fill_buf()?.is_empty() {
            return Err(io::Error::other("bytes follow the gzip stream"));
        }
        Ok(n)
    }
}

impl Assembly {
    /// Starts assembling into `root`, an empty directory of ours.
    pub(super) fn new(root: OwnedFd, limits: ImageLimits) -> Self {
        Self {
            root,
            modes: BTreeMap::new(),
            entries: 0,
            bytes: 0,
            limits,
            buffer: vec![0; IO_CHUNK],
        }
    }

    /// Applies one layer read from `blob`. The blob's digest and size and the diff_id are
    /// checked once it has been read to its end; when the layer broke a rule and its bytes
    /// are not what the descriptor names either, the digest is what is reported.
    pub(super) fn apply_layer(
        &mut self,
        layer: &Layer<'_>,
        blob: &mut dyn Read,
    ) -> Result<(), LayerFailure> {
        let state = StreamState::default();
        let mut compressed = Metered::new(blob, layer.size, Side::Blob, &state, true);
        let walked = self.walk(layer, &mut compressed, &state);
        let drained = io::copy(&mut compressed, &mut io::sink());
        let blob_check = match drained {
            Err(error) if state.blob_failed.get() => Err(LayerFailure::Read(error)),
            Err(_) => Err(Refusal::new(
                Rule::BlobSize,
                None,
                format!(
                    "the blob is longer than its descriptor's {} bytes",
                    layer.size
                ),
            )
            .into()),
            Ok(_) if compressed.count != layer.size => Err(Refusal::new(
                Rule::BlobSize,
                None,
                format!(
                    "the blob has {} bytes, its descriptor says {}",
                    compressed.count, layer.size
                ),
            )
            .into()),
            Ok(_) => {
                let found = ImageDigest::from_hasher(
                    compressed.hasher.expect("the blob side always hashes"),
                );
                if found == *layer.digest {
                    Ok(found)
                } else {
                    Err(Refusal::new(
                        Rule::BlobDigest,
                        None,
                        format!("the blob's bytes hash to {found}"),
                    )
                    .into())
                }
            }
        };
        let outcome = match (walked, blob_check) {
            (_, Err(LayerFailure::Refused(refusal)))
                if matches!(refusal.rule, Rule::BlobDigest | Rule::BlobSize) =>
            {
                Err(LayerFailure::Refused(refusal))
            }
            (Err(failure), _) | (Ok(_), Err(failure)) => Err(failure),
            (Ok(diff_id), Ok(blob_digest)) => {
                // An uncompressed layer's tar stream is its blob, read to its end: one hash.
                let diff_id = diff_id.unwrap_or(blob_digest);
                if diff_id == *layer.diff_id {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        Rule::DiffId,
                        None,
                        format!(
                            "the uncompressed layer hashes to {diff_id}, the config's diff_id is {}",
                            layer.diff_id
                        ),
                    )
                    .into())
                }
            }
        };
        outcome.map_err(|failure| match failure {
            LayerFailure::Refused(refusal) => LayerFailure::Refused(refusal.in_layer(layer.digest)),
            other => other,
        })
    }

    /// Decompresses and applies the layer's members; returns the digest of the tar stream,
    /// or None for an uncompressed layer, whose tar stream is the blob the caller hashes.
    fn walk(
        &mut self,
        layer: &Layer<'_>,
        compressed: &mut Metered<'_, &mut dyn Read>,
        state: &StreamState,
    ) -> Result<Option<ImageDigest>, LayerFailure> {
        let decoder: Box<dyn Read + '_> = match layer.compression {
            Compression::None => Box::new(compressed),
            Compression::Gzip => Box::new(Gunzip {
                decoder: flate2::bufread::GzDecoder::new(BufReader::new(compressed)),
            }),
            Compression::Zstd => {
                let mut decoder =
                    zstd::stream::read::Decoder::new(compressed).map_err(LayerFailure::Read)?;
                decoder
                    .window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(LayerFailure::Read)?;
                Box::new(decoder)
            }
        };
        let hash_tar = layer.compression != Compression::None;
        let mut tar_stream = Metered::new(decoder, u64::MAX, Side::Tar, state, hash_tar);
        let mut written = BTreeSet::new();
        let entries_end = {
            let mut archive = tar::Archive::new(&mut tar_stream);
            let mut members = archive
                .entries()
                .map_err(|error| classify(state, error, None))?
                .raw(true);
            let mut entries_end = 0;
            loop {
                let member = match next_member(&mut members, &self.limits) {
                    Ok(Some(member)) => member,
                    Ok(None) => break,
                    Err(MemberError::Refused(refusal)) => return Err(refusal.into()),
                    Err(MemberError::Stream(error)) => return Err(classify(state, error, None)),
                };
                entries_end =
                    member.entry.raw_file_position() + member.size.div_ceil(TAR_BLOCK) * TAR_BLOCK;
                let name = String::from_utf8_lossy(&member.path).into_owned();
                self.apply_member(member, &mut written, state).map_err(
                    |failure| match failure {
                        LayerFailure::Refused(mut refusal) if refusal.member.is_none() => {
                            refusal.member = Some(name);
                            LayerFailure::Refused(refusal)
                        }
                        other => other,
                    },
                )?;
            }
            entries_end
        };
        self.read_end(&mut tar_stream, entries_end, state)?;
        Ok(tar_stream.hasher.map(ImageDigest::from_hasher))
    }

    /// After the last member: the end marker and zero padding only, within the limit, and
    /// the compressed stream's own end.
    fn read_end<R: Read>(
        &mut self,
        tar_stream: &mut Metered<'_, R>,
        entries_end: u64,
        state: &StreamState,
    ) -> Result<(), LayerFailure> {
        loop {
            let n = match tar_stream.read(&mut self.buffer[..TAR_BLOCK as usize]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(classify(state, error, None)),
            };
            if self.buffer[..n].iter().any(|&b| b != 0) {
                return Err(Refusal::new(
                    Rule::TrailingData,
                    None,
                    "non-zero bytes after the tar end marker",
                )
                .into());
            }
            if tar_stream.count - entries_end > self.limits.max_end_padding {
                return Err(Refusal::new(
                    Rule::TrailingData,
                    None,
                    format!(
                        "more than {} bytes of padding after the last member",
                        self.limits.max_end_padding
                    ),
                )
                .into());
            }
        }
        if tar_stream.count - entries_end < TAR_END_MARKER {
            return Err(Refusal::new(
                Rule::Truncated,
                None,
                "the tar end marker (two zero blocks) is missing",
            )
            .into());
        }
        Ok(())
    }

    fn apply_member<R: Read>(
        &mut self,
        mut member: Member<'_, R>,
        written: &mut BTreeSet<String>,
        state: &StreamState,
    ) -> Result<(), LayerFailure> {
        let raw_name = String::from_utf8_lossy(&member.path).into_owned();
        let refuse = |rule, detail: String| Refusal::new(rule, Some(raw_name.clone()), detail);
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(refuse(
                Rule::Limit,
                format!(
                    "more than {} members in the image's layers",
                    self.limits.max_entries
                ),
            )
            .into());
        }
        let kind = member_kind(member.typeflag).map_err(|(rule, what)| refuse(rule, what))?;
        let name = self
            .check_name(&member.path, kind == MemberKind::Dir)
            .map_err(|(rule, detail)| refuse(rule, detail))?;
        let path = match name {
            Name::Root if kind == MemberKind::Dir => return Ok(()),
            Name::Root => {
                return Err(refuse(
                    Rule::RootNotDirectory,
                    "the root of the tree given as something other than a directory".into(),
                )
                .into())
            }
            Name::Path(path) => path,
        };
        let (dir, base) = split(&path);
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            self.count_bytes(member.size, &raw_name)?;
            if base == OPAQUE_WHITEOUT {
                return self.hide_lower_children(dir, written);
            }
            if hidden.starts_with(WHITEOUT_PREFIX) {
                return Err(refuse(
                    Rule::AufsMetadata,
                    "AUFS metadata is not part of an image's tree".into(),
                )
                .into());
            }
            if matches!(hidden, "" | "." | "..") {
                return Err(refuse(
                    Rule::NonCanonicalName,
                    "a whiteout must name an entry of its directory".into(),
                )
                .into());
            }
            return self.hide_lower(&join(dir, hidden), written);
        }
        if kind != MemberKind::File && member.size != 0 {
            return Err(refuse(
                Rule::Header,
                format!("a non-file member with {} bytes of data", member.size),
            )
            .into());
        }
        let mut mode = member.mode & 0o7777;
        if kind == MemberKind::File && mode & 0o6000 != 0 {
            if !self.limits.allow_setuid {
                return Err(refuse(
                    Rule::Setuid,
                    format!("a setuid or setgid file (mode {mode:o}); --allow-setuid stores it without those bits"),
                )
                .into());
            }
            // Stored without the bits: a setuid file in the store would be a privilege on
            // the host, and the sandbox mounts the tree nosuid, where they mean nothing.
            mode &= !0o6000;
        }
        let parent = self
            .reach_dir(dir, Some(written))?
            .expect("missing parents are created");
        let existing = stat_child(parent.as_fd(), base).map_err(|source| write(&path, source))?;
        if written.contains(&path) && !(kind == MemberKind::Dir && existing == Some(NodeKind::Dir))
        {
            return Err(refuse(Rule::Duplicate, "the same path twice in one layer".into()).into());
        }
        match kind {
            MemberKind::Dir => {
                if existing != Some(NodeKind::Dir) {
                    self.clear(parent.as_fd(), &path, existing)?;
                    sys::create_dir_at(parent.as_fd(), base, ASSEMBLY_DIR_MODE)
                        .map_err(|source| write(&path, source))?;
                }
                self.modes.insert(path.clone(), mode);
            }
            MemberKind::File => {
                self.count_bytes(member.size, &raw_name)?;
                if member.size > self.limits.max_file_bytes {
                    return Err(refuse(
                        Rule::Limit,
                        format!(
                            "a file of {} bytes (at most {})",
                            member.size, self.limits.max_file_bytes
                        ),
                    )
                    .into());
                }
                self.clear(parent.as_fd(), &path, existing)?;
                self.write_file(parent.as_fd(), base, &path, &mut member, state)?;
                self.modes.insert(path.clone(), mode);
            }
            MemberKind::Symlink => {
                let target = self
                    .check_link_target(member.link.as_deref())
                    .map_err(|detail| refuse(Rule::NonCanonicalName, detail))?;
                self.clear(parent.as_fd(), &path, existing)?;
                sys::create_symlink_at(parent.as_fd(), base, &target)
                    .map_err(|source| write(&path, source))?;
            }
            MemberKind::Hardlink => {
                let target = self.hardlink_target(member.link.as_deref(), &path, &raw_name)?;
                let (target_dir, target_base) = split(&target);
                let target_parent = self.reach_dir(target_dir, None)?.ok_or_else(|| {
                    refuse(
                        Rule::HardlinkTargetMissing,
                        format!("`{target}` is not in the tree"),
                    )
                })?;
                match stat_child(target_parent.as_fd(), target_base)
                    .map_err(|source| write(&target, source))?
                {
                    None => {
                        return Err(refuse(
                            Rule::HardlinkTargetMissing,
                            format!("`{target}` is not in the tree"),
                        )
                        .into())
                    }
                    Some(NodeKind::Dir) => {
                        return Err(refuse(
                            Rule::HardlinkToDirectory,
                            format!("`{target}` is a directory"),
                        )
                        .into())
                    }
                    Some(_) => {}
                }
                self.clear(parent.as_fd(), &path, existing)?;
                sys::create_hardlink_at(target_parent.as_fd(), target_base, parent.as_fd(), base)
                    .map_err(|source| match source.kind() {
                    // The replaced path held the target.
                    io::ErrorKind::NotFound => LayerFailure::Refused(refuse(
                        Rule::HardlinkTargetMissing,
                        format!("`{target}` was replaced by this member"),
                    )),
                    _ => write(&path, source),
                })?;
                if let Some(&target_mode) = self.modes.get(&target) {
                    self.modes.insert(path.clone(), target_mode);
                }
            }
        }
        written.insert(path);
        Ok(())
    }

    fn count_bytes(&mut self, size: u64, member: &str) -> Result<(), Refusal> {
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.limits.max_total_bytes {
            return Err(Refusal::new(
                Rule::Limit,
                Some(member.to_owned()),
                format!(
                    "more than {} bytes of file content in the image's layers",
                    self.limits.max_total_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Requires a canonical relative name within the limits; the leading `./` and the
    /// trailing `/` of a directory that tar writers add are the only forms normalised.
    fn check_name(&self, bytes: &[u8], is_dir: bool) -> Result<Name, (Rule, String)> {
        if bytes.len() > self.limits.max_path_bytes {
            return Err((
                Rule::Limit,
                format!(
                    "a name of {} bytes (at most {})",
                    bytes.len(),
                    self.limits.max_path_bytes
                ),
            ));
        }
        let name = std::str::from_utf8(bytes)
            .map_err(|_| (Rule::NonCanonicalName, "the name is not UTF-8".to_owned()))?;
        if name.contains('\0') {
            return Err((Rule::NonCanonicalName, "the name holds a NUL".to_owned()));
        }
        if name.starts_with('/') {
            return Err((Rule::AbsolutePath, "an absolute path".to_owned()));
        }
        let relative = name.strip_prefix("./").unwrap_or(name);
        if matches!(relative, "" | ".") {
            return Ok(Name::Root);
        }
        let path = match relative.strip_suffix('/') {
            Some(path) if is_dir => path,
            Some(_) => {
                return Err((
                    Rule::NonCanonicalName,
                    "a trailing `/` on something other than a directory".to_owned(),
                ))
            }
            None => relative,
        };
        for component in path.split('/') {
            match component {
                ".." => return Err((Rule::DotDot, "a `..` component".to_owned())),
                "" => {
                    return Err((
                        Rule::NonCanonicalName,
                        "an empty component (`//`)".to_owned(),
                    ))
                }
                "." => return Err((Rule::NonCanonicalName, "a `.` component".to_owned())),
                _ if component.len() > self.limits.max_component_bytes => {
                    return Err((
                        Rule::Limit,
                        format!(
                            "a component of {} bytes (at most {})",
                            component.len(),
                            self.limits.max_component_bytes
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(Name::Path(path.to_owned()))
    }

    /// A symlink's target is stored verbatim (it is resolved inside the sandbox, where the
    /// tree is `/`); it only has to be a name.
    fn check_link_target(&self, link: Option<&[u8]>) -> Result<String, String> {
        let link = link.ok_or("a symlink without a target")?;
        if link.is_empty() || link.len() > self.limits.max_path_bytes {
            return Err(format!("a symlink target of {} bytes", link.len()));
        }
        let target = std::str::from_utf8(link).map_err(|_| "a symlink target that is not UTF-8")?;
        if target.contains('\0') {
            return Err("a symlink target holding a NUL".to_owned());
        }
        Ok(target.to_owned())
    }

    /// The path a hard link names, which must be inside the tree and not the link itself.
    fn hardlink_target(
        &self,
        link: Option<&[u8]>,
        path: &str,
        raw_name: &str,
    ) -> Result<String, Refusal> {
        let refuse = |rule, detail: String| Refusal::new(rule, Some(raw_name.to_owned()), detail);
        let link = link.ok_or_else(|| refuse(Rule::HardlinkTargetMissing, "no target".into()))?;
        let shown = String::from_utf8_lossy(link).into_owned();
        match self.check_name(link, false) {
            Ok(Name::Path(target)) if target == path => Err(refuse(
                Rule::HardlinkTargetMissing,
                "a hard link to itself".into(),
            )),
            Ok(Name::Path(target)) => Ok(target),
            Ok(Name::Root) => Err(refuse(
                Rule::HardlinkToDirectory,
                format!("`{shown}` is the root"),
            )),
            Err((Rule::AbsolutePath | Rule::DotDot, detail)) => Err(refuse(
                Rule::HardlinkOutside,
                format!("target `{shown}`: {detail} leaves the layer's tree"),
            )),
            Err((rule, detail)) => Err(refuse(rule, format!("target `{shown}`: {detail}"))),
        }
    }

    /// The directory `dir` (a checked relative path, `""` for the root), reached from the
    /// root one component at a time without following a symlink. Missing directories are
    /// created (and recorded as written by this layer) when `created` is given, else the
    /// answer is None.
    fn reach_dir(
        &mut self,
        dir: &str,
        mut created: Option<&mut BTreeSet<String>>,
    ) -> Result<Option<OwnedFd>, LayerFailure> {
        let mut current = self.root.try_clone().map_err(|source| write(".", source))?;
        if dir.is_empty() {
            return Ok(Some(current));
        }
        let mut prefix = String::new();
        for component in dir.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            current = match sys::open_dir_beneath(current.as_fd(), component) {
                Ok(next) => next,
                Err(error) if error.kind() == io::ErrorKind::NotFound => match created.as_mut() {
                    None => return Ok(None),
                    Some(created) => {
                        let next =
                            sys::create_dir_at(current.as_fd(), component, ASSEMBLY_DIR_MODE)
                                .map_err(|source| write(&prefix, source))?;
                        self.modes.insert(prefix.clone(), IMPLIED_DIR_MODE);
                        created.insert(prefix.clone());
                        next
                    }
                },
                Err(error) if sys::is_resolution_refused(&error) => {
                    let kind = stat_child(current.as_fd(), component)
                        .map_err(|source| write(&prefix, source))?;
                    let (rule, what) = if kind == Some(NodeKind::Symlink) {
                        (Rule::SymlinkInPath, "a symlink")
                    } else {
                        (Rule::ParentNotDirectory, "not a directory")
                    };
                    return Err(Refusal::new(
                        rule,
                        None,
                        format!("`{prefix}` is {what}: nothing is written, linked or removed through it"),
                    )
                    .into());
                }
                Err(source) => return Err(write(&prefix, source)),
            };
        }
        Ok(Some(current))
    }

    /// Makes room for a new entry at `path`: whatever is there goes, with its subtree.
    fn clear(
        &mut self,
        parent: BorrowedFd<'_>,
        path: &str,
        existing: Option<NodeKind>,
    ) -> Result<(), LayerFailure> {
        if existing.is_some() {
            let (_, base) = split(path);
            remove_tree(parent, OsStr::new(base)).map_err(|source| write(path, source))?;
            self.forget(path);
        }
        Ok(())
    }

    /// Drops the recorded modes of `path` and everything under it.
    fn forget(&mut self, path: &str) {
        self.modes.remove(path);
        let below = format!("{path}/");
        let doomed: Vec<String> = self
            .modes
            .range(below.clone()..)
            .take_while(|(key, _)| key.starts_with(&below))
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.modes.remove(&key);
        }
    }

    /// A whiteout: removes what lower layers left at and under `path`, keeping what this
    /// layer wrote (and the directories that hold it).
    fn hide_lower(&mut self, path: &str, written: &BTreeSet<String>) -> Result<(), LayerFailure> {
        let (dir, base) = split(path);
        let Some(parent) = self.reach_dir(dir, None)? else {
            return Ok(());
        };
        let Some(kind) = stat_child(parent.as_fd(), base).map_err(|source| write(path, source))?
        else {
            return Ok(());
        };
        let below = format!("{path}/");
        let written_below = written
            .range(below.clone()..)
            .next()
            .is_some_and(|first| first.starts_with(&below));
        if !written.contains(path) && !written_below {
            remove_tree(parent.as_fd(), OsStr::new(base)).map_err(|source| write(path, source))?;
            self.forget(path);
        } else if kind == NodeKind::Dir {
            self.hide_lower_children(path, written)?;
        }
        Ok(())
    }

    /// An opaque whiteout: what lower layers left in directory `dir` is hidden.
    fn hide_lower_children(
        &mut self,
        dir: &str,
        written: &BTreeSet<String>,
    ) -> Result<(), LayerFailure> {
        let Some(fd) = self.reach_dir(dir, None)? else {
            return Ok(());
        };
        let names = DirFd::open_beneath(fd.as_fd(), ".")
            .and_then(|mut listing| listing.names())
            .map_err(|source| write(dir, source))?;
        for name in names {
            let name = name
                .to_str()
                .expect("the tree holds only the UTF-8 names it was given");
            self.hide_lower(&join(dir, name), written)?;
        }
        Ok(())
    }

    /// Copies the member's content into a new file (mode 0600 until the end).
    fn write_file<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        base: &str,
        path: &str,
        member: &mut Member<'_, R>,
        state: &StreamState,
    ) -> Result<(), LayerFailure> {
        let mut file = sys::create_file_at(parent, base).map_err(|source| write(path, source))?;
        let mut remaining = member.size;
        while remaining > 0 {
            let want =
                usize::try_from(remaining).map_or(self.buffer.len(), |r| r.min(self.buffer.len()));
            let n = match member.entry.read(&mut self.buffer[..want]) {
                Ok(0) => {
                    return Err(Refusal::new(
                        Rule::Truncated,
                        Some(path.to_owned()),
                        "the stream ends inside the file's content",
                    )
                    .into())
                }
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(classify(state, error, Some(path.to_owned()))),
            };
            file.write_all(&self.buffer[..n])
                .map_err(|source| write(path, source))?;
            remaining -= n as u64;
        }
        Ok(())
    }

    /// Once every layer is in: describes the tree with the modes it is about to get, then
    /// gives them (files first, then directories deepest first, so that each directory
    /// stays open to us until everything in it is done).
    pub(super) fn finish(self) -> Result<TreeManifest, FinishError> {
        let modes = &self.modes;
        let tree = TreeManifest::scan(self.root.as_fd(), &|path, stat| {
            modes.get(path).copied().unwrap_or(stat.mode)
        })?;
        let set_mode = |path: &str, mode: u32| {
            sys::open_file_beneath(self.root.as_fd(), Path::new(path))
                .and_then(|file| sys::set_mode(file.as_fd(), mode))
                .map_err(|source| FinishError::SetMode {
                    path: path.to_owned(),
                    source,
                })
        };
        for entry in &tree.entries {
            if entry.kind == super::tree::TreeKind::File {
                set_mode(&entry.path, entry.mode)?;
            }
        }
        for entry in tree.entries.iter().rev() {
            if entry.kind == super::tree::TreeKind::Dir {
                set_mode(&entry.path, entry.mode)?;
            }
        }
        Ok(tree)
    }
}

/// Why the assembled tree could not be described or given its modes.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("failed to describe the assembled tree")]
    Scan(#[from] ScanError),
    #[error("failed to set the mode of `{path}`")]
    SetMode {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn member_kind(typeflag: u8) -> Result<MemberKind, (Rule, String)> {
    match typeflag {
        b'0' => Ok(MemberKind::File),
        b'5' => Ok(MemberKind::Dir),
        b'2' => Ok(MemberKind::Symlink),
        b'1' => Ok(MemberKind::Hardlink),
        b'3' => Err((Rule::DeviceNode, "a character device".into())),
        b'4' => Err((Rule::DeviceNode, "a block device".into())),
        b'6' => Err((Rule::Fifo, "a fifo".into())),
        b'7' => Err((Rule::EntryType, "a contiguous file".into())),
        b'S' => Err((Rule::EntryType, "a GNU sparse file".into())),
        b'g' => Err((Rule::EntryType, "a PAX global header".into())),
        b'\0' => Err((Rule::EntryType, "a pre-POSIX regular file".into())),
        other => Err((Rule::EntryType, format!("typeflag {:?}", char::from(other)))),
    }
}

/// The type of child `name` of `parent`, None when there is none (lstat: a symlink is
/// described, not followed).
fn stat_child(parent: BorrowedFd<'_>, name: &str) -> io::Result<Option<NodeKind>> {
    match sys::stat_beneath(parent, name) {
        Ok(stat) => Ok(Some(stat.kind)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Why a read under the tar parser failed: the blob (ours to retry), the blob's length,
/// the decompressor, or the tar stream itself (cut short, or not tar).
fn classify(state: &StreamState, error: io::Error, member: Option<String>) -> LayerFailure {
    if state.blob_failed.get() {
        return LayerFailure::Read(error);
    }
    let rule = if state.blob_too_long.get() {
        Rule::BlobSize
    } else if state.decoding_failed.get() {
        Rule::Decompress
    } else if state.decoded_to_end.get() {
        Rule::Truncated
    } else {
        Rule::Header
    };
    Refusal::new(rule, member, error.to_string()).into()
}

fn write(path: &str, source: io::Error) -> LayerFailure {
    LayerFailure::Write {
        path: path.to_owned(),
        source,
    }
}

/// `(directory, last component)` of a checked relative path; the root is `""`.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::image::tree::TreeKind;

    /// One tar member, its name and link written as given (no normalising).
    fn member(typeflag: u8, name: &str, mode: u32, data: &[u8], link: &str) -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.as_old_mut().linkflag = [typeflag];
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        bytes
    }

    fn dir(name: &str, mode: u32) -> Vec<u8> {
        member(b'5', name, mode, b"", "")
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        member(b'0', name, 0o644, data, "")
    }

    fn layer(members: &[Vec<u8>]) -> Vec<u8> {
        let mut tar = members.concat();
        tar.resize(tar.len() + 1024, 0);
        tar
    }

    struct Applied {
        _tmp: tempfile::TempDir,
        root: std::path::PathBuf,
        tree: TreeManifest,
    }

    fn apply_all(layers: &[Vec<u8>], limits: ImageLimits) -> Result<Applied, LayerFailure> {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        let mut assembly = Assembly::new(sys::open_dir(&root).unwrap(), limits);
        for tar in layers {
            let digest = ImageDigest::of(tar);
            let layer = Layer {
                digest: &digest,
                size: tar.len() as u64,
                compression: Compression::None,
                diff_id: &digest,
            };
            assembly.apply_layer(&layer, &mut &tar[..])?;
        }
        let tree = assembly.finish().unwrap();
        Ok(Applied {
            _tmp: tmp,
            root,
            tree,
        })
    }

    fn paths(applied: &Applied) -> Vec<&str> {
        applied
            .tree
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect()
    }

    fn refused(layers: &[Vec<u8>]) -> Refusal {
        match apply_all(layers, ImageLimits::default()) {
            Err(LayerFailure::Refused(refusal)) => refusal,
            Err(other) => panic!("not a refusal: {other:?}"),
            Ok(applied) => panic!("applied: {:?}", paths(&applied)),
        }
    }

    #[test]
    fn whiteouts_hide_lower_layers_only_wherever_they_stand() {
        let lower = layer(&[
            dir("a/", 0o755),
            file("a/old", b"1"),
            dir("d/", 0o755),
            file("d/x", b"x"),
            file("d/y", b"y"),
            file("gone", b"g"),
        ]);
        let upper = layer(&[
            file(".wh.gone", b""),
            file("d/z", b"z"),
            file("d/.wh..wh..opq", b""),
            file("a/new", b"2"),
            file("a/.wh.new", b""),
            file("a/.wh.old", b""),
        ]);
        let applied = apply_all(&[lower, upper], ImageLimits::default()).unwrap();
        assert_eq!(paths(&applied), ["a", "a/new", "d", "d/z"]);
    }

    #[test]
    fn replacing_keeps_directories_and_unlinks_the_rest() {
        let lower = layer(&[
            dir("d/", 0o755),
            file("d/kept", b"k"),
            file("f", b"old"),
            member(b'1', "g", 0o644, b"", "f"),
            dir("x/", 0o755),
            file("x/inner", b"i"),
        ]);
        let upper = layer(&[
            dir("d/", 0o750),
            file("f", b"new"),
            file("x", b"now a file"),
        ]);
        let applied = apply_all(&[lower, upper], ImageLimits::default()).unwrap();
        assert_eq!(paths(&applied), ["d", "d/kept", "f", "g", "x"]);
        assert_eq!(applied.tree.entries[0].mode, 0o750);
        assert_eq!(std::fs::read(applied.root.join("f")).unwrap(), b"new");
        // The hard link still names the lower layer's file.
        assert_eq!(std::fs::read(applied.root.join("g")).unwrap(), b"old");
        let mode = std::fs::metadata(applied.root.join("d")).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o750);
    }

    #[test]
    fn allowed_setuid_files_are_stored_without_the_bits() {
        let only = layer(&[
            member(b'0', "su", 0o4755, b"s", ""),
            member(b'0', "sg", 0o2711, b"g", ""),
            dir("mail/", 0o2775),
        ]);
        let limits = ImageLimits {
            allow_setuid: true,
            ..ImageLimits::default()
        };
        let applied = apply_all(&[only], limits).unwrap();
        let mode = |path: &str| std::fs::metadata(applied.root.join(path)).unwrap().mode() & 0o7777;
        assert_eq!(
            (mode("su"), mode("sg"), mode("mail")),
            (0o755, 0o711, 0o2775)
        );
        let recorded: Vec<u32> = applied.tree.entries.iter().map(|e| e.mode).collect();
        assert_eq!(recorded, [0o2775, 0o711, 0o755]);
    }

    #[test]
    fn implied_parents_and_modes_are_applied_last() {
        let only = layer(&[
            file("usr/bin/tool", b"t"),
            member(b'0', "usr/bin/ro", 0o400, b"r", ""),
            dir("usr/share/", 0o555),
            member(b'0', "usr/share/doc", 0o644, b"d", ""),
            dir("tmp/", 0o1777),
            member(b'2', "bin", 0o777, b"", "usr/bin"),
        ]);
        let applied = apply_all(&[only], ImageLimits::default()).unwrap();
        let mode = |path: &str| {
            applied
                .tree
                .entries
                .iter()
                .find(|entry| entry.path == path)
                .map(|entry| (entry.kind, entry.mode))
                .unwrap()
        };
        assert_eq!(mode("usr"), (TreeKind::Dir, 0o755));
        assert_eq!(mode("usr/share"), (TreeKind::Dir, 0o555));
        assert_eq!(mode("usr/bin/ro"), (TreeKind::File, 0o400));
        assert_eq!(mode("tmp"), (TreeKind::Dir, 0o1777));
        assert_eq!(mode("bin"), (TreeKind::Symlink, 0o777));
        let actual = std::fs::metadata(applied.root.join("usr/share"))
            .unwrap()
            .mode();
        assert_eq!(actual & 0o7777, 0o555);
    }

    #[test]
    fn each_rule_refuses_its_member() {
        let cases: Vec<(Vec<Vec<u8>>, Rule, &str)> = vec![
            (
                vec![layer(&[file("/etc/x", b"")])],
                Rule::AbsolutePath,
                "/etc/x",
            ),
            (
                vec![layer(&[file("a/../../x", b"")])],
                Rule::DotDot,
                "a/../../x",
            ),
            (
                vec![layer(&[file("a//b", b"")])],
                Rule::NonCanonicalName,
                "a//b",
            ),
            (
                vec![layer(&[
                    member(b'2', "l", 0o777, b"", "/"),
                    file("l/x", b""),
                ])],
                Rule::SymlinkInPath,
                "l/x",
            ),
            (
                vec![layer(&[member(b'2', ".", 0o777, b"", "/")])],
                Rule::RootNotDirectory,
                ".",
            ),
            (
                vec![
                    layer(&[member(b'2', "l", 0o777, b"", "/tmp")]),
                    layer(&[file("l/.wh.x", b"")]),
                ],
                Rule::SymlinkInPath,
                "l/.wh.x",
            ),
            (
                vec![layer(&[member(b'3', "null", 0o666, b"", "")])],
                Rule::DeviceNode,
                "null",
            ),
            (
                vec![layer(&[member(b'6', "p", 0o644, b"", "")])],
                Rule::Fifo,
                "p",
            ),
            (
                vec![layer(&[member(b'0', "su", 0o4755, b"", "")])],
                Rule::Setuid,
                "su",
            ),
            (
                vec![layer(&[member(b'0', "sg", 0o2755, b"", "")])],
                Rule::Setuid,
                "sg",
            ),
            (
                vec![layer(&[member(b'1', "h", 0o644, b"", "../outside")])],
                Rule::HardlinkOutside,
                "h",
            ),
            (
                vec![layer(&[member(b'1', "h", 0o644, b"", "/etc/passwd")])],
                Rule::HardlinkOutside,
                "h",
            ),
            (
                vec![layer(&[member(b'1', "h", 0o644, b"", "nothing")])],
                Rule::HardlinkTargetMissing,
                "h",
            ),
            (
                vec![layer(&[file("x/.wh..wh.plnk", b"")])],
                Rule::AufsMetadata,
                "x/.wh..wh.plnk",
            ),
            (
                vec![layer(&[file("f", b"1"), file("f", b"2")])],
                Rule::Duplicate,
                "f",
            ),
        ];
        for (layers, rule, member) in cases {
            let refusal = refused(&layers);
            assert_eq!(refusal.rule, rule, "{refusal}");
            assert_eq!(refusal.member.as_deref(), Some(member), "{refusal}");
            assert!(refusal.layer.is_some(), "{refusal}");
        }
    }

    #[test]
    fn limits_refuse_before_the_data_is_read_and_streams_must_end_cleanly() {
        let big = layer(&[file("big", &vec![0; 4096])]);
        let limits = ImageLimits {
            max_file_bytes: 1024,
            ..ImageLimits::default()
        };
        let Err(LayerFailure::Refused(refusal)) = apply_all(std::slice::from_ref(&big), limits)
        else {
            panic!("a file over the limit was applied");
        };
        assert_eq!(
            (refusal.rule, refusal.member.as_deref()),
            (Rule::Limit, Some("big"))
        );
        let limits = ImageLimits {
            max_entries: 1,
            ..ImageLimits::default()
        };
        let two = layer(&[file("a", b""), file("b", b"")]);
        assert!(matches!(
            apply_all(&[two], limits),
            Err(LayerFailure::Refused(Refusal {
                rule: Rule::Limit,
                ..
            }))
        ));

        let mut garbage = big.clone();
        garbage.extend_from_slice(b"more");
        assert_eq!(refused(&[garbage]).rule, Rule::TrailingData);
        let cut = big[..big.len() - 1024].to_vec();
        assert_eq!(refused(&[cut]).rule, Rule::Truncated);
    }

    #[test]
    fn digests_are_checked_and_name_tampering_first() {
        let tar = layer(&[file("a", b"hello")]);
        let digest = ImageDigest::of(&tar);
        let other = ImageDigest::of(b"other");
        let tmp = tempfile::tempdir().unwrap();
        let mut assembly =
            Assembly::new(sys::open_dir(tmp.path()).unwrap(), ImageLimits::default());
        let apply = |assembly: &mut Assembly,
                     digest: &ImageDigest,
                     diff_id: &ImageDigest,
                     bytes: &[u8],
                     compression| {
            let layer = Layer {
                digest,
                size: bytes.len() as u64,
                compression,
                diff_id,
            };
            match assembly.apply_layer(&layer, &mut &bytes[..]) {
                Err(LayerFailure::Refused(refusal)) => refusal.rule,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            apply(&mut assembly, &other, &digest, &tar, Compression::None),
            Rule::BlobDigest
        );
        assert_eq!(
            apply(&mut assembly, &digest, &other, &tar, Compression::None),
            Rule::DiffId
        );
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar).unwrap();
        let mut gzip = gzip.finish().unwrap();
        gzip.extend_from_slice(b"x");
        let gzip_digest = ImageDigest::of(&gzip);
        assert_eq!(
            apply(
                &mut assembly,
                &gzip_digest,
                &digest,
                &gzip,
                Compression::Gzip
            ),
            Rule::Decompress
        );
        let mut tampered = tar.clone();
        tampered[0] = b'/';
        assert_eq!(
            apply(
                &mut assembly,
                &digest,
                &digest,
                &tampered,
                Compression::None
            ),
            Rule::BlobDigest
        );
    }
}
