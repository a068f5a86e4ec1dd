//! Writing a new key pair to disk, as `cosign generate-key-pair` does, except that an
//! existing file is never replaced.
//!
//! Each file is written to a fresh temporary file (`O_EXCL`, mode 0600 from the start, so
//! the encrypted private key is never readable by others) in the target's directory, then
//! renamed into place with `RENAME_NOREPLACE`: readers see a complete file or none, and a
//! file that appeared meanwhile is not overwritten.
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::keys::{KeyError, Password, SigningKey, VerifyingKey};
use crate::sys::archive as sys;

const PRIVATE_KEY_MODE: u32 = 0o600;
const PUBLIC_KEY_MODE: u32 = 0o644;

/// The files [`write_key_pair`] wrote.
#[derive(Debug)]
pub struct KeyPairFiles {
    /// `PREFIX.key`: the encrypted private key.
    pub private_key: PathBuf,
    /// `PREFIX.pub`: the public key.
    pub public_key: PathBuf,
    /// The public key, for its key id.
    pub verifying_key: VerifyingKey,
}

/// The two files of a key pair with prefix `PREFIX`.
struct Targets {
    dir: PathBuf,
    private_name: OsString,
    public_name: OsString,
    private_path: PathBuf,
    public_path: PathBuf,
}

impl Targets {
    fn of(prefix: &Path) -> Result<Self, KeyError> {
        let bytes = prefix.as_os_str().as_bytes();
        // Split on the last slash by hand: `Path` would normalize `dir/.` to `dir` and
        // turn a prefix meant to be inside `dir` into one next to it.
        let (dir, name) = match bytes.iter().rposition(|&byte| byte == b'/') {
            Some(0) => (&b"/"[..], &bytes[1..]),
            Some(slash) => (&bytes[..slash], &bytes[slash + 1..]),
            None => (&b"."[..], bytes),
        };
        if matches!(name, b"" | b"." | b"..") {
            return Err(KeyError::BadPrefix {
                prefix: prefix.to_owned(),
            });
        }
        let with_suffix =
            |base: &[u8], suffix: &str| OsString::from_vec([base, suffix.as_bytes()].concat());
        Ok(Self {
            dir: PathBuf::from(OsStr::from_bytes(dir)),
            private_name: with_suffix(name, ".key"),
            public_name: with_suffix(name, ".pub"),
            private_path: with_suffix(bytes, ".key").into(),
            public_path: with_suffix(bytes, ".pub").into(),
        })
    }
}

/// Generates a key pair and writes `PREFIX.key` (encrypted under `password`, mode 0600)
/// and `PREFIX.pub` (mode 0644). Fails without writing anything if either file exists.
pub fn write_key_pair(prefix: &Path, password: &Password) -> Result<KeyPairFiles, KeyError> {
    let targets = Targets::of(prefix)?;
    let dir = sys::open_dir(&targets.dir).map_err(|source| KeyError::OpenDir {
        path: targets.dir.clone(),
        source,
    })?;
    // Checked up front so that a clash is reported before the slow key encryption; the
    // no-replace rename below is what actually guarantees nothing is overwritten.
    for (name, path) in [
        (&targets.private_name, &targets.private_path),
        (&targets.public_name, &targets.public_path),
    ] {
        match sys::exists_at(dir.as_fd(), name) {
            Ok(false) => {}
            Ok(true) => return Err(KeyError::Exists { path: path.clone() }),
            Err(source) => {
                return Err(KeyError::CheckExists {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    let key = SigningKey::generate();
    let verifying_key = key.verifying_key();
    let private_pem = key.to_encrypted_pem(password.as_bytes());
    let place = |name: &OsStr, path: &Path, contents: &str, mode: u32| {
        publish(
            dir.as_fd(),
            &targets.dir,
            name,
            path,
            contents.as_bytes(),
            mode,
        )
    };
    place(
        &targets.private_name,
        &targets.private_path,
        &private_pem,
        PRIVATE_KEY_MODE,
    )?;
    if let Err(error) = place(
        &targets.public_name,
        &targets.public_path,
        &verifying_key.to_pem(),
        PUBLIC_KEY_MODE,
    ) {
        // A private key whose public half is missing is of no use, and the caller is told
        // the pair was not written: take it back. A failure to do so changes nothing
        // about the error to report.
        let _ = sys::remove_at(dir.as_fd(), &targets.private_name, false);
        return Err(error);
    }
    File::from(dir)
        .sync_all()
        .map_err(|source| KeyError::SyncDir {
            path: targets.dir.clone(),
            source,
        })?;
    Ok(KeyPairFiles {
        private_key: targets.private_path,
        public_key: targets.public_path,
        verifying_key,
    })
}

/// Writes `contents` to a new temporary file in `dir` and renames it to `name`, failing
/// with [`KeyError::Exists`] if `name` exists by then.
fn publish(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), KeyError> {
    let temp = temp_name();
    let mut file = sys::create_file_at(dir, &temp).map_err(|source| KeyError::CreateTemp {
        dir: dir_path.to_owned(),
        source,
    })?;
    let written = file
        .write_all(contents)
        .and_then(|()| sys::set_mode(file.as_fd(), mode))
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::WriteTemp {
            dir: dir_path.to_owned(),
            source,
        });
    let published = written.and_then(|()| {
        sys::rename_noreplace(dir, OsStr::new(&temp), name).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                KeyError::Publish {
                    path: path.to_owned(),
                    source,
                }
            }
        })
    });
    if published.is_err() {
        // Best effort: the temporary file holds nothing that is not also in the error.
        let _ = sys::remove_at(dir, OsStr::new(&temp), false);
    }
    published
}

/// A name no other writer uses: hidden, with our pid and a per-process sequence number.
fn temp_name() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        ".hermetic-key-{}-{}.tmp",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_a_usable_key_pair_with_exact_modes() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("release");
        let files = write_key_pair(&prefix, &Password::new(b"pw".to_vec())).unwrap();
        assert_eq!(files.private_key, dir.path().join("release.key"));
        assert_eq!(files.public_key, dir.path().join("release.pub"));
        assert_eq!(mode(&files.private_key), 0o600);
        assert_eq!(mode(&files.public_key), 0o644);
        assert_eq!(names(dir.path()), ["release.key", "release.pub"]);
        let private_pem = fs::read_to_string(&files.private_key).unwrap();
        let key = SigningKey::from_pem(&private_pem, Some(b"pw")).unwrap();
        let public = VerifyingKey::from_pem(&fs::read_to_string(&files.public_key).unwrap());
        assert_eq!(public.unwrap(), key.verifying_key());
        assert_eq!(files.verifying_key, key.verifying_key());
    }

    #[test]
    fn refuses_to_overwrite_either_file() {
        for existing in ["cosign.key", "cosign.pub"] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(existing), "precious").unwrap();
            let error = write_key_pair(&dir.path().join("cosign"), &Password::new(Vec::new()))
                .expect_err("an existing file must not be replaced");
            assert!(
                matches!(&error, KeyError::Exists { path } if path == &dir.path().join(existing)),
                "{error}"
            );
            assert_eq!(
                fs::read_to_string(dir.path().join(existing)).unwrap(),
                "precious"
            );
            assert_eq!(names(dir.path()), [existing]);
        }
    }

    #[test]
    fn a_dangling_symlink_counts_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        symlink(&elsewhere, dir.path().join("cosign.key")).unwrap();
        let error = write_key_pair(&dir.path().join("cosign"), &Password::new(Vec::new()))
            .expect_err("a symlink must not be written through");
        assert!(matches!(error, KeyError::Exists { .. }), "{error}");
        assert!(!elsewhere.exists());
    }

    #[test]
    fn publish_never_replaces_a_file_that_appeared_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("late.key");
        fs::write(&target, "arrived first").unwrap();
        let handle = File::open(dir.path()).unwrap();
        let error = publish(
            handle.as_fd(),
            dir.path(),
            OsStr::new("late.key"),
            &target,
            b"ours",
            PRIVATE_KEY_MODE,
        )
        .expect_err("the rename must not replace the file");
        assert!(matches!(error, KeyError::Exists { .. }), "{error}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "arrived first");
        assert_eq!(
            names(dir.path()),
            ["late.key"],
            "the temporary file is removed"
        );
    }

    #[test]
    fn prefixes_name_a_file() {
        let split = |prefix: &str| {
            Targets::of(Path::new(prefix))
                .map(|targets| (targets.dir, targets.private_name, targets.public_path))
                .map_err(|error| error.to_string())
        };
        assert_eq!(
            split("cosign").unwrap(),
            (".".into(), "cosign.key".into(), "cosign.pub".into())
        );
        assert_eq!(
            split("keys/ci.v1").unwrap(),
            ("keys".into(), "ci.v1.key".into(), "keys/ci.v1.pub".into())
        );
        assert_eq!(
            split("/k").unwrap(),
            ("/".into(), "k.key".into(), "/k.pub".into())
        );
        for bad in ["", "keys/", "keys/.", "keys/..", ".", ".."] {
            let error = split(bad).expect_err(bad);
            assert!(
                error.contains("does not end in a file name"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_missing_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_key_pair(
            &dir.path().join("missing/cosign"),
            &Password::new(Vec::new()),
        )
        .expect_err("the directory does not exist");
        assert!(matches!(error, KeyError::OpenDir { .. }), "{error}");
    }
}
