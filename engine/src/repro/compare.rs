//! Per-file manifest comparison. Mtimes never count: the archive clamps them.
use std::collections::BTreeMap;

use crate::archive::manifest::{FileEntry, FileKind, Manifest};

pub use hermetic_contract::report::{Difference, DifferenceKind};

/// Every difference between two manifests, sorted by path.
pub fn compare(a: &Manifest, b: &Manifest) -> Vec<Difference> {
    let index = |m: &Manifest| -> BTreeMap<String, FileEntry> {
        m.files
            .iter()
            .map(|f| (f.path.clone(), f.clone()))
            .collect()
    };
    let (a, b) = (index(a), index(b));
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let (left, right) = (a.get(path), b.get(path));
            let kind = match (left, right) {
                (Some(_), None) => DifferenceKind::Missing,
                (None, Some(_)) => DifferenceKind::Extra,
                (Some(l), Some(r)) => entry_difference(l, r)?,
                (None, None) => return None,
            };
            Some(Difference {
                path: path.clone(),
                kind,
                digest_a: left.and_then(|e| e.blake3.clone()),
                digest_b: right.and_then(|e| e.blake3.clone()),
            })
        })
        .collect()
}

fn entry_difference(a: &FileEntry, b: &FileEntry) -> Option<DifferenceKind> {
    if a.kind != b.kind {
        return Some(DifferenceKind::Type);
    }
    match a.kind {
        FileKind::File if a.blake3 != b.blake3 || a.size != b.size => Some(DifferenceKind::Content),
        FileKind::Symlink if a.target != b.target => Some(DifferenceKind::Symlink),
        _ if a.mode != b.mode => Some(DifferenceKind::Mode),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::manifest::MANIFEST_SCHEMA;

    fn file(path: &str, content: &str, mode: u32) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: FileKind::File,
            mode,
            size: content.len() as u64,
            blake3: Some(blake3::hash(content.as_bytes()).to_hex().to_string()),
            target: None,
        }
    }

    fn link(path: &str, target: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: FileKind::Symlink,
            mode: 0o777,
            size: 0,
            blake3: None,
            target: Some(target.into()),
        }
    }

    fn manifest(files: Vec<FileEntry>) -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA.into(),
            files,
        }
    }

    #[test]
    fn identical_manifests_have_no_differences() {
        let m = manifest(vec![file("out/a", "x", 0o644), link("out/l", "a")]);
        assert!(compare(&m, &m.clone()).is_empty());
    }

    #[test]
    fn every_kind_is_reported_with_both_digests() {
        let a = manifest(vec![
            file("out/content", "1", 0o644),
            file("out/gone", "g", 0o644),
            link("out/link", "x"),
            file("out/mode", "m", 0o644),
            file("out/type", "t", 0o644),
        ]);
        let b = manifest(vec![
            file("out/content", "2", 0o644),
            file("out/extra", "e", 0o644),
            link("out/link", "y"),
            file("out/mode", "m", 0o755),
            link("out/type", "t"),
        ]);
        let differences = compare(&a, &b);
        let kinds: Vec<(&str, DifferenceKind)> = differences
            .iter()
            .map(|d| (d.path.as_str(), d.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("out/content", DifferenceKind::Content),
                ("out/extra", DifferenceKind::Extra),
                ("out/gone", DifferenceKind::Missing),
                ("out/link", DifferenceKind::Symlink),
                ("out/mode", DifferenceKind::Mode),
                ("out/type", DifferenceKind::Type),
            ]
        );
        let content = &differences[0];
        assert_eq!(
            content.digest_a.as_deref(),
            Some(blake3::hash(b"1").to_hex().as_str())
        );
        assert_eq!(
            content.digest_b.as_deref(),
            Some(blake3::hash(b"2").to_hex().as_str())
        );
    }
}
