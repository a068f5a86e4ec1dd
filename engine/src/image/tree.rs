//! The manifest of a stored tree (`hermetic.image-tree/v1`): every path under `rootfs/`
//! with its type, exact mode, size and BLAKE3 (files) or target (symlinks), sorted by path.
//! It is written once when an image is assembled and compared with a fresh scan by
//! `hermetic image verify`. Trees are read through directory fds without following a
//! symlink, as output trees are.
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sys::archive::{self as sys, DirFd, NodeKind, NodeStat};

pub const TREE_SCHEMA: &str = "hermetic.image-tree/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeManifest {
    pub schema: String,
    pub entries: Vec<TreeEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeKind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: TreeKind,
    /// Permission bits, setgid and sticky included (0o777 for symlinks).
    pub mode: u32,
    /// Content bytes of a file; 0 otherwise.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Why a tree could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("failed to read `{path}`")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Something no stored tree holds: a name that is not UTF-8, a device, a fifo, a socket.
    #[error("`{path}` is {what}, which no stored image holds")]
    Unexpected { path: String, what: String },
}

/// The first way a tree differs from its recorded manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    /// `missing`, `extra`, `type`, `mode`, `size`, `content` or `target`.
    pub field: &'static str,
    pub expected: String,
    pub found: String,
}

impl TreeManifest {
    /// Describes the tree under `root`, hashing every file; `mode_of` gives each file's and
    /// directory's recorded mode from its path and what stat says (assembly records the
    /// modes it will set, verify what is there).
    pub(crate) fn scan(
        root: BorrowedFd<'_>,
        mode_of: &dyn Fn(&str, &NodeStat) -> u32,
    ) -> Result<Self, ScanError> {
        let mut entries = Vec::new();
        let mut buffer = vec![0; 1 << 20];
        scan_dir(root, "", mode_of, &mut entries, &mut buffer)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self {
            schema: TREE_SCHEMA.to_owned(),
            entries,
        })
    }

    /// `blake3:<hex>` of the canonical JSON: the tree's identity in the image record.
    pub fn digest(&self) -> String {
        format!("blake3:{}", blake3::hash(&self.to_json()).to_hex())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a tree manifest serializes")
    }

    /// Files and their content bytes.
    pub fn totals(&self) -> (u64, u64) {
        self.entries
            .iter()
            .filter(|entry| entry.kind == TreeKind::File)
            .fold((0, 0), |(files, bytes), entry| {
                (files + 1, bytes + entry.size)
            })
    }

    /// The first difference of `found` from `self`, in path order.
    pub fn first_difference(&self, found: &TreeManifest) -> Option<Difference> {
        let mut expected = self.entries.iter().peekable();
        let mut actual = found.entries.iter().peekable();
        loop {
            let difference = match (expected.peek(), actual.peek()) {
                (None, None) => return None,
                (Some(want), None) => missing(want),
                (None, Some(got)) => extra(got),
                (Some(want), Some(got)) if want.path < got.path => missing(want),
                (Some(want), Some(got)) if want.path > got.path => extra(got),
                (Some(want), Some(got)) => match compare(want, got) {
                    Some(difference) => difference,
                    None => {
                        expected.next();
                        actual.next();
                        continue;
                    }
                },
            };
            return Some(difference);
        }
    }
}

fn missing(entry: &TreeEntry) -> Difference {
    Difference {
        path: entry.path.clone(),
        field: "missing",
        expected: kind_name(entry.kind).to_owned(),
        found: "nothing".to_owned(),
    }
}

fn extra(entry: &TreeEntry) -> Difference {
    Difference {
        path: entry.path.clone(),
        field: "extra",
        expected: "nothing".to_owned(),
        found: kind_name(entry.kind).to_owned(),
    }
}

fn compare(want: &TreeEntry, got: &TreeEntry) -> Option<Difference> {
    let differ = |field, expected: String, found: String| {
        Some(Difference {
            path: want.path.clone(),
            field,
            expected,
            found,
        })
    };
    if want.kind != got.kind {
        return differ(
            "type",
            kind_name(want.kind).into(),
            kind_name(got.kind).into(),
        );
    }
    if want.mode != got.mode {
        return differ(
            "mode",
            format!("{:o}", want.mode),
            format!("{:o}", got.mode),
        );
    }
    if want.size != got.size {
        return differ("size", want.size.to_string(), got.size.to_string());
    }
    if want.blake3 != got.blake3 {
        let show = |digest: &Option<String>| digest.clone().unwrap_or_default();
        return differ("content", show(&want.blake3), show(&got.blake3));
    }
    if want.target != got.target {
        let show = |target: &Option<String>| target.clone().unwrap_or_default();
        return differ("target", show(&want.target), show(&got.target));
    }
    None
}

fn kind_name(kind: TreeKind) -> &'static str {
    match kind {
        TreeKind::File => "file",
        TreeKind::Dir => "directory",
        TreeKind::Symlink => "symlink",
    }
}

fn scan_dir(
    root: BorrowedFd<'_>,
    dir_path: &str,
    mode_of: &dyn Fn(&str, &NodeStat) -> u32,
    entries: &mut Vec<TreeEntry>,
    buffer: &mut [u8],
) -> Result<(), ScanError> {
    let io_error = |path: &str| {
        let path = if path.is_empty() { "." } else { path }.to_owned();
        move |source| ScanError::Io { path, source }
    };
    let open_path = if dir_path.is_empty() { "." } else { dir_path };
    let mut dir = DirFd::open_beneath(root, open_path).map_err(io_error(dir_path))?;
    for name in dir.names().map_err(io_error(dir_path))? {
        let Some(name_str) = name.to_str() else {
            return Err(ScanError::Unexpected {
                path: format!("{dir_path}/{}", String::from_utf8_lossy(name.as_bytes())),
                what: "a name that is not UTF-8".to_owned(),
            });
        };
        let path = if dir_path.is_empty() {
            name_str.to_owned()
        } else {
            format!("{dir_path}/{name_str}")
        };
        let stat = dir.stat_child(&name).map_err(io_error(&path))?;
        let entry = match stat.kind {
            NodeKind::Dir => TreeEntry {
                mode: mode_of(&path, &stat),
                path: path.clone(),
                kind: TreeKind::Dir,
                size: 0,
                blake3: None,
                target: None,
            },
            NodeKind::File => {
                let (size, digest) = hash_file(root, &path, buffer).map_err(io_error(&path))?;
                TreeEntry {
                    mode: mode_of(&path, &stat),
                    path: path.clone(),
                    kind: TreeKind::File,
                    size,
                    blake3: Some(digest),
                    target: None,
                }
            }
            NodeKind::Symlink => {
                let target = dir.read_link_child(&name).map_err(io_error(&path))?;
                let Some(target) = target.to_str() else {
                    return Err(ScanError::Unexpected {
                        path,
                        what: "a symlink whose target is not UTF-8".to_owned(),
                    });
                };
                TreeEntry {
                    path: path.clone(),
                    kind: TreeKind::Symlink,
                    mode: 0o777,
                    size: 0,
                    blake3: None,
                    target: Some(target.to_owned()),
                }
            }
            other => {
                return Err(ScanError::Unexpected {
                    path,
                    what: format!("a {}", other.describe()),
                })
            }
        };
        let is_dir = entry.kind == TreeKind::Dir;
        entries.push(entry);
        if is_dir {
            scan_dir(root, &path, mode_of, entries, buffer)?;
        }
    }
    Ok(())
}

/// Size and `blake3` hex of file `path` beneath `root`, read to its end.
fn hash_file(root: BorrowedFd<'_>, path: &str, buffer: &mut [u8]) -> io::Result<(u64, String)> {
    let mut file = sys::open_file_beneath(root, Path::new(OsStr::new(path)))?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    #[test]
    fn a_scan_lists_every_path_once_and_finds_each_kind_of_change() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            root.join("bin/tool"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        symlink("bin/tool", root.join("tool")).unwrap();
        let fd = sys::open_dir(root).unwrap();
        let actual_mode = |_: &str, stat: &NodeStat| stat.mode;
        let before = TreeManifest::scan(fd.as_fd(), &actual_mode).unwrap();
        let paths: Vec<_> = before.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["bin", "bin/tool", "tool"]);
        assert_eq!(before.entries[1].mode, 0o750);
        assert_eq!(before.entries[2].target.as_deref(), Some("bin/tool"));
        assert_eq!(before.first_difference(&before), None);

        std::fs::write(root.join("bin/tool"), b"#!/bin/sH\n").unwrap();
        let after = TreeManifest::scan(fd.as_fd(), &actual_mode).unwrap();
        let difference = before.first_difference(&after).unwrap();
        assert_eq!(
            (difference.path.as_str(), difference.field),
            ("bin/tool", "content")
        );

        std::fs::write(root.join("extra"), b"").unwrap();
        let after = TreeManifest::scan(fd.as_fd(), &actual_mode).unwrap();
        assert_eq!(before.first_difference(&after).unwrap().field, "content");
        std::fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        let after = TreeManifest::scan(fd.as_fd(), &actual_mode).unwrap();
        let difference = before.first_difference(&after).unwrap();
        assert_eq!(
            (difference.path.as_str(), difference.field),
            ("extra", "extra")
        );
    }
}
