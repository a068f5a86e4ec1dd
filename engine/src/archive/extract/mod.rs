//! Strict extraction of an output archive, verified entry by entry against its manifest.
//!
//! `tar::Archive::unpack` is not safe enough for archives from a cache (see
//! `docs/restore-threats.md`): it silently skips `..` entries and strips a leading `/`
//! instead of refusing the archive; it writes through path-based syscalls, so a symlink or a
//! concurrent change can redirect writes; it has no limit on entry count, sizes or name
//! lengths and reads GNU long names and PAX headers into memory whatever their size; it
//! accepts hardlinks, GNU sparse files, unknown entry types (as regular files) and duplicate
//! paths (the last one wins); it ignores data after the end of the archive; and it leaves a
//! partial tree behind on failure.
//!
//! Here, members are read one by one in raw mode (extension headers are handled here, with
//! limits, and must be unambiguous), every entry must be byte-for-byte the next manifest
//! entry, only files, directories and symlinks are written, each through an fd of its parent
//! in a private staging directory without following symlinks, and the tree is renamed into
//! place only after the whole stream, zstd frame included, checked out.
//!
//! Each concern has its file: `error` (why an archive is refused), `member` (the tar member
//! reader and its extension headers), `walk` (members against the manifest, into the staging
//! directory), `decompress` (the zstd frame's checks, the read-ahead thread, the tar end).
mod decompress;
mod error;
mod member;
#[cfg(test)]
mod test_archives;
mod walk;

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

pub use error::{ExtractError, ExtractFailure};

use super::manifest::Manifest;
use super::staging::Staging;
use crate::sys::archive as sys;

const IO_CHUNK: usize = 1 << 20;
const TAR_BLOCK: u64 = 512;

/// Bounds on what an archive may make us write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Entries (files, directories and symlinks).
    pub max_entries: u64,
    /// Sum of file sizes.
    pub max_total_bytes: u64,
    /// Size of one file.
    pub max_file_bytes: u64,
    /// Length of a path or symlink target.
    pub max_path_bytes: usize,
    /// Length of one path component.
    pub max_component_bytes: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            max_total_bytes: 64 << 30,
            max_file_bytes: 16 << 30,
            max_path_bytes: 4096,
            max_component_bytes: 255,
        }
    }
}

/// What [`extract_verified`] restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries created: files, directories and symlinks, as in [`Manifest::files`].
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Restores a tar+zstd `archive` made by [`super::pack::pack_outputs`] into `dest`, which
/// must not exist yet (its parent must), after checking it against `manifest` entry by
/// entry within `limits`.
///
/// Either the whole verified tree appears at `dest`, atomically, or nothing does: on any
/// error the staging directory is removed and `dest` is left absent. The parent of `dest`
/// should not be writable by other users.
pub fn extract_verified<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractReport, ExtractError> {
    extract_verified_checked(archive, manifest, dest, limits, |_| Ok(()))
}

/// [`extract_verified`], with one more gate before the tree is published: `check` gets the
/// archive reader back once the whole stream (zstd frame and end of input included) checked
/// out, so a caller that hashes the compressed bytes as they are read (the cache) can
/// compare them with what was signed in the same single pass. An error from `check`
/// refuses the archive like any other.
pub fn extract_verified_checked<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    dest: &Path,
    limits: &ExtractLimits,
    check: impl FnOnce(R) -> Result<(), ExtractError>,
) -> Result<ExtractReport, ExtractError> {
    check_manifest(manifest, limits)?;
    let (Some(parent), Some(dest_name)) = (dest.parent(), dest.file_name()) else {
        return Err(ExtractError::InvalidDestination {
            dest: dest.to_owned(),
        });
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent_fd =
        sys::open_dir(parent).map_err(|source| ExtractError::OpenDestinationParent {
            parent: parent.to_owned(),
            source,
        })?;
    let exists = sys::exists_at(parent_fd.as_fd(), dest_name).map_err(|source| {
        ExtractError::CheckDestination {
            dest: dest.to_owned(),
            source,
        }
    })?;
    if exists {
        return Err(ExtractError::DestinationExists {
            dest: dest.to_owned(),
        });
    }
    let mut staging =
        Staging::create(parent_fd.as_fd()).map_err(|source| ExtractError::CreateStaging {
            parent: parent.to_owned(),
            source,
        })?;
    let restored = walk::restore(archive, manifest, limits, Some(&mut staging)).and_then(
        |(report, archive)| {
            check(archive)?;
            crate::test_hooks::crash_point("restore.publishing");
            staging.publish(dest_name).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    ExtractError::DestinationExists {
                        dest: dest.to_owned(),
                    }
                } else {
                    ExtractError::Publish {
                        dest: dest.to_owned(),
                        source,
                    }
                }
            })?;
            Ok(report)
        },
    );
    if restored.is_err() {
        if let Err(err) = staging.remove() {
            tracing::error!(
                parent = %parent.display(),
                error = %err,
                "failed to remove the staging directory of a refused archive"
            );
        }
    }
    restored
}

/// Reads and checks `archive` against `manifest` exactly as [`extract_verified`] does, but
/// writes nothing: for a caller that needs the verdict and not the tree. Returns the
/// archive reader, which has been read to its end.
pub fn verify_stream<R: Read + Send>(
    archive: R,
    manifest: &Manifest,
    limits: &ExtractLimits,
) -> Result<(ExtractReport, R), ExtractError> {
    check_manifest(manifest, limits)?;
    walk::restore(archive, manifest, limits, None)
}

/// Checks, before anything is written, that the manifest is valid and within `limits`; the
/// archive must then match it, so this bounds what the archive can make us write.
fn check_manifest(manifest: &Manifest, limits: &ExtractLimits) -> Result<(), ExtractError> {
    manifest.validate().map_err(ExtractError::ManifestInvalid)?;
    let entries = manifest.files.len() as u64;
    if entries > limits.max_entries {
        return Err(ExtractError::LimitExceeded {
            path: None,
            limit: "max_entries",
            max: limits.max_entries,
            found: entries,
        });
    }
    let mut total: u64 = 0;
    for entry in &manifest.files {
        check_name_limits(&entry.path, limits)?;
        if let Some(target) = &entry.target {
            check_length(
                &entry.path,
                target.len(),
                "max_path_bytes",
                limits.max_path_bytes,
            )?;
        }
        if entry.size > limits.max_file_bytes {
            return Err(ExtractError::LimitExceeded {
                path: Some(entry.path.clone()),
                limit: "max_file_bytes",
                max: limits.max_file_bytes,
                found: entry.size,
            });
        }
        total = total.saturating_add(entry.size);
        if total > limits.max_total_bytes {
            return Err(ExtractError::LimitExceeded {
                path: Some(entry.path.clone()),
                limit: "max_total_bytes",
                max: limits.max_total_bytes,
                found: total,
            });
        }
    }
    Ok(())
}

fn check_name_limits(path: &str, limits: &ExtractLimits) -> Result<(), ExtractError> {
    check_length(path, path.len(), "max_path_bytes", limits.max_path_bytes)?;
    for component in path.split('/') {
        check_length(
            path,
            component.len(),
            "max_component_bytes",
            limits.max_component_bytes,
        )?;
    }
    Ok(())
}

fn check_length(
    path: &str,
    len: usize,
    limit: &'static str,
    max: usize,
) -> Result<(), ExtractError> {
    if len > max {
        return Err(ExtractError::LimitExceeded {
            path: Some(path.to_owned()),
            limit,
            max: max as u64,
            found: len as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::archive::extract::test_archives::{
        assert_refused, assert_refused_with, base_manifest, base_tar, file_entry, names, RawTar,
        Sandbox,
    };
    use crate::archive::manifest::{FileEntry, Manifest, MANIFEST_SCHEMA};

    #[test]
    fn honest_archive_is_restored() {
        let sandbox = Sandbox::new();
        let report = sandbox
            .extract(
                &base_tar().archive(),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap();
        assert_eq!(
            report,
            ExtractReport {
                files: 3,
                bytes: 10
            }
        );
        assert_eq!(fs::read(sandbox.dest().join("out/a")).unwrap(), b"hello");
        assert_eq!(names(&sandbox.cache()), ["dest"]);
    }

    #[test]
    fn zstd_bombs_hit_the_limits() {
        let zeros = vec![0u8; 64 << 20];
        let limits = ExtractLimits {
            max_file_bytes: 1 << 20,
            ..ExtractLimits::default()
        };
        let bomb = RawTar::new()
            .dir("out")
            .file("out/a", 0o644, &zeros)
            .file("out/b", 0o755, b"world")
            .archive();
        assert!(bomb.len() < 64 << 10, "the bomb should compress well");
        let err = assert_refused_with(&bomb, &base_manifest(), &limits, "limit_exceeded");
        assert_eq!(err.entry_path(), Some("out/a"));

        let declared = Manifest::new(vec![
            FileEntry::dir("out"),
            file_entry("out/a", 0o644, &zeros),
        ]);
        assert_refused_with(&bomb, &declared, &limits, "limit_exceeded");

        let total = ExtractLimits {
            max_total_bytes: 8,
            ..ExtractLimits::default()
        };
        assert_refused_with(
            &base_tar().archive(),
            &base_manifest(),
            &total,
            "limit_exceeded",
        );
        let entries = ExtractLimits {
            max_entries: 2,
            ..ExtractLimits::default()
        };
        assert_refused_with(
            &base_tar().archive(),
            &base_manifest(),
            &entries,
            "limit_exceeded",
        );
    }

    #[test]
    fn existing_destination_is_left_alone() {
        let sandbox = Sandbox::new();
        fs::create_dir(sandbox.dest()).unwrap();
        fs::write(sandbox.dest().join("keep"), b"x").unwrap();
        let err = sandbox
            .extract(
                &base_tar().archive(),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap_err();
        assert_eq!(err.reason(), "destination_exists");
        assert!(!err.is_archive_fault());
        assert_eq!(names(&sandbox.dest()), ["keep"]);
        assert_eq!(names(&sandbox.cache()), ["dest"]);

        let dangling = Sandbox::new();
        std::os::unix::fs::symlink(dangling.outside().join("nothing"), dangling.dest()).unwrap();
        let err = dangling
            .extract(
                &base_tar().archive(),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap_err();
        assert_eq!(err.reason(), "destination_exists");
        assert_eq!(names(&dangling.outside()), Vec::<String>::new());
    }

    #[test]
    fn manifest_of_another_schema_is_refused() {
        let mut manifest = base_manifest();
        manifest.schema = format!("{MANIFEST_SCHEMA}-next");
        assert_refused(&base_tar().archive(), &manifest, "manifest_invalid");
    }
}
