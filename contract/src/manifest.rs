//! The entries of an output manifest (`hermetic.manifest/v1`, docs/formats.md), as a
//! build report lists them. The engine's packer writes them and its extractor checks them
//! (`hermetic::archive::manifest`).
use serde::{Deserialize, Serialize};

use crate::names::named_values;

/// One manifest entry: a file, directory or symlink.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the build dir, e.g. `out/bin/tool`; no trailing slash.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: FileKind,
    /// Normalised permission bits: 0755 directories and executable files, 0644 other
    /// files, 0777 symlinks.
    pub mode: u32,
    /// Content length in bytes; 0 for directories and symlinks.
    pub size: u64,
    /// BLAKE3 of the content as lowercase hex; files only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub blake3: Option<String>,
    /// Symlink target, verbatim; symlinks only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
}

/// Mode of a regular file without the exec bit.
pub const MODE_REGULAR: u32 = 0o644;
/// Mode of a directory, and of a file with an exec bit.
pub const MODE_EXECUTABLE: u32 = 0o755;
/// Mode of a symlink.
pub const MODE_SYMLINK: u32 = 0o777;

impl FileEntry {
    /// A directory's entry (mode 0755).
    pub fn dir(path: &str) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            kind: FileKind::Dir,
            mode: MODE_EXECUTABLE,
            size: 0,
            blake3: None,
            target: None,
        }
    }

    /// A symlink's entry (mode 0777) pointing at `target`.
    pub fn symlink(path: &str, target: &str) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            kind: FileKind::Symlink,
            mode: MODE_SYMLINK,
            size: 0,
            blake3: None,
            target: Some(target.to_owned()),
        }
    }
}

named_values! {
    /// Type of a manifest entry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum FileKind {
        File = "file",
        Dir = "dir",
        Symlink = "symlink",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::written_names;

    #[test]
    fn every_kind_is_written_as_documented_and_reads_back() {
        assert_eq!(
            written_names(FileKind::ALL, FileKind::as_str),
            ["file", "dir", "symlink"]
        );
    }
}
