//! What the extractor's tests share: hand-built archives, manifests that match them, and a
//! destination checked for leftovers after every refusal.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{extract_verified, ExtractError, ExtractLimits, ExtractReport};
use crate::archive::manifest::{FileEntry, FileKind, Manifest};

/// Builds tar streams member by member, including ones the `tar` crate refuses to write.
pub(super) struct RawTar(pub(super) Vec<u8>);

pub(super) fn header(typeflag: u8, name: &str, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkflag[0] = typeflag;
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header
}

pub(super) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3;
    let mut len = body_len + 1;
    while body_len + len.to_string().len() != len {
        len = body_len + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

impl RawTar {
    pub(super) fn new() -> Self {
        Self(Vec::new())
    }

    pub(super) fn member(mut self, mut header: tar::Header, data: &[u8]) -> Self {
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
        self.0.extend_from_slice(data);
        let padding = data.len().next_multiple_of(512) - data.len();
        self.0.resize(self.0.len() + padding, 0);
        self
    }

    pub(super) fn dir(self, name: &str) -> Self {
        self.member(header(b'5', name, 0o755, 0), &[])
    }

    pub(super) fn file(self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.member(header(b'0', name, mode, data.len() as u64), data)
    }

    pub(super) fn symlink(self, name: &str, target: &str) -> Self {
        let mut header = header(b'2', name, 0o777, 0);
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.member(header, &[])
    }

    pub(super) fn long(self, typeflag: u8, value: &[u8]) -> Self {
        let mut data = value.to_vec();
        data.push(0);
        self.member(
            header(typeflag, "././@LongLink", 0o644, data.len() as u64),
            &data,
        )
    }

    pub(super) fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let data: Vec<u8> = records
            .iter()
            .flat_map(|(key, value)| pax_record(key, value))
            .collect();
        self.member(
            header(b'x', "PaxHeaders/entry", 0o644, data.len() as u64),
            &data,
        )
    }

    /// The tar bytes with the end-of-archive marker.
    pub(super) fn end(mut self) -> Vec<u8> {
        self.0.resize(self.0.len() + 1024, 0);
        self.0
    }

    pub(super) fn archive(self) -> Vec<u8> {
        compress(&self.end())
    }
}

pub(super) fn compress(tar: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(tar).unwrap();
    encoder.finish().unwrap()
}

pub(super) fn file_entry(path: &str, mode: u32, content: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: FileKind::File,
        mode,
        size: content.len() as u64,
        blake3: Some(blake3::hash(content).to_hex().to_string()),
        target: None,
    }
}

pub(super) fn base_manifest() -> Manifest {
    Manifest::new(vec![
        FileEntry::dir("out"),
        file_entry("out/a", 0o644, b"hello"),
        file_entry("out/b", 0o755, b"world"),
    ])
}

pub(super) fn base_tar() -> RawTar {
    RawTar::new()
        .dir("out")
        .file("out/a", 0o644, b"hello")
        .file("out/b", 0o755, b"world")
}

/// `tmp/cache` is the destination's parent, `tmp/outside` a directory escapes would hit.
pub(super) struct Sandbox {
    tmp: tempfile::TempDir,
}

pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

impl Sandbox {
    pub(super) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("cache")).unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        Self { tmp }
    }

    pub(super) fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    pub(super) fn dest(&self) -> PathBuf {
        self.cache().join("dest")
    }

    pub(super) fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    pub(super) fn extract(
        &self,
        archive: &[u8],
        manifest: &Manifest,
        limits: &ExtractLimits,
    ) -> Result<ExtractReport, ExtractError> {
        extract_verified(archive, manifest, &self.dest(), limits)
    }

    /// Extracts expecting a refusal, and checks that nothing is left anywhere: no
    /// destination, no staging directory, nothing next to them or in `outside`.
    pub(super) fn refused(
        &self,
        archive: &[u8],
        manifest: &Manifest,
        limits: &ExtractLimits,
    ) -> ExtractError {
        let err = self.extract(archive, manifest, limits).unwrap_err();
        assert!(
            fs::symlink_metadata(self.dest()).is_err(),
            "dest exists after: {err}"
        );
        assert_eq!(
            names(&self.cache()),
            Vec::<String>::new(),
            "left behind after: {err}"
        );
        assert_eq!(
            names(self.tmp.path()),
            ["cache", "outside"],
            "written outside: {err}"
        );
        assert_eq!(
            names(&self.outside()),
            Vec::<String>::new(),
            "written outside: {err}"
        );
        err
    }
}

pub(super) fn assert_refused(archive: &[u8], manifest: &Manifest, reason: &str) -> ExtractError {
    assert_refused_with(archive, manifest, &ExtractLimits::default(), reason)
}

pub(super) fn assert_refused_with(
    archive: &[u8],
    manifest: &Manifest,
    limits: &ExtractLimits,
    reason: &str,
) -> ExtractError {
    let err = Sandbox::new().refused(archive, manifest, limits);
    assert_eq!(err.reason(), reason, "{err}");
    assert!(err.is_archive_fault(), "{err}");
    err
}
