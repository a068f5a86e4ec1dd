//! The entry every local attack starts from: a real build's entry in the scratch store,
//! signed by the drill's key (or the operator's), and the work dir a restore writes to.
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::cache::entry::{ArchiveDigests, EntryManifest};
use crate::cache::{CacheKey, RestoreTargets, Scope, Store, ARCHIVE_FILE, BUNDLE_FILE};
use crate::signing::{Bundle, Content, SigningKey, VerifyingKey};

/// What an earlier build left at the artifact path: a refused restore must leave it.
pub(super) const PREVIOUS_ARTIFACT: &[u8] = b"the artifact of an earlier build\n";

/// An honest entry in the scratch store, and how to put it back and attack it.
pub(super) struct Subject {
    pub store: Store,
    pub scope: Scope,
    pub key: CacheKey,
    /// The honest entry as signed.
    pub entry: EntryManifest,
    /// Its signed manifest, as written into the entry.
    pub bundle: Bundle,
    /// A copy of the honest archive, outside the store.
    pub honest_archive: PathBuf,
    /// Who signed it, and the keys a restore trusts.
    pub signer: SigningKey,
    pub trusted: Vec<VerifyingKey>,
    /// Where attacks put files outside the entry.
    pub spare: PathBuf,
}

impl Subject {
    pub fn entry_dir(&self) -> PathBuf {
        self.store.entry_dir(&self.scope, &self.key)
    }

    pub fn archive_path(&self) -> PathBuf {
        self.entry_dir().join(ARCHIVE_FILE)
    }

    pub fn bundle_path(&self) -> PathBuf {
        self.entry_dir().join(BUNDLE_FILE)
    }

    /// Puts the honest entry back (whatever, if anything, is at its place).
    pub fn plant(&self) -> io::Result<()> {
        let dir = self.entry_dir();
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&dir)?,
            Ok(_) => fs::remove_file(&dir)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        fs::create_dir_all(&dir)?;
        // A hard link, not a copy: the entry may be gigabytes, and nothing writes to an
        // entry's archive in place (attacks replace it: `write_archive`, `edit_archive`).
        fs::hard_link(&self.honest_archive, self.archive_path())?;
        self.write_bundle(&self.bundle)
    }

    /// Replaces the entry's archive with `bytes` (a new file: the planted one is a link
    /// to the honest copy).
    pub fn write_archive(&self, bytes: &[u8]) -> io::Result<()> {
        remove_if_there(&self.archive_path())?;
        fs::write(self.archive_path(), bytes)
    }

    /// Replaces the entry's archive with a copy of the honest one that `edit` changed.
    pub fn edit_archive(
        &self,
        edit: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> io::Result<()> {
        let path = self.archive_path();
        remove_if_there(&path)?;
        fs::copy(&self.honest_archive, &path)?;
        edit(&mut fs::OpenOptions::new().read(true).write(true).open(&path)?)
    }

    /// Whether the honest copy still has the signed digest (no attack wrote through a link).
    pub fn honest_archive_intact(&self) -> io::Result<bool> {
        Ok(crate::digest::sha256_file(&self.honest_archive)? == self.entry.archive.sha256)
    }

    pub fn write_bundle(&self, bundle: &Bundle) -> io::Result<()> {
        fs::write(self.bundle_path(), bundle.to_json())
    }

    /// Replaces the archive with `archive` and signs the honest file manifest for it with
    /// the subject's signer (only the archive digests changed): what a compromised
    /// trusted builder could publish. An attack on the signed claims alone re-signs the
    /// entry with [`Subject::write_bundle`] over the honest archive `plant` put there.
    pub fn resign_archive(&self, archive: &[u8]) -> io::Result<()> {
        let mut entry = self.entry.clone();
        entry.archive = ArchiveDigests::of(archive);
        self.write_archive(archive)?;
        self.write_bundle(&entry.sign(&self.signer))
    }

    /// The signed statement, as JSON, for attacks on its content.
    pub fn statement(&self) -> io::Result<serde_json::Value> {
        let Content::Dsse(envelope) = self.entry.sign(&self.signer).content else {
            return Err(io::Error::other("an entry's bundle holds a DSSE envelope"));
        };
        serde_json::from_slice(&envelope.payload).map_err(io::Error::other)
    }

    /// The honest archive's bytes.
    pub fn archive_bytes(&self) -> io::Result<Vec<u8>> {
        fs::read(&self.honest_archive)
    }

    /// The honest archive's tar stream, decompressed.
    pub fn honest_tar(&self) -> io::Result<Vec<u8>> {
        let mut tar = Vec::new();
        zstd::stream::read::Decoder::new(fs::File::open(&self.honest_archive)?)?
            .read_to_end(&mut tar)?;
        Ok(tar)
    }
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// A work dir as a build leaves it before a restore: an artifact from an earlier build,
/// a directory beside the destination, and no destination.
pub(super) struct WorkDir {
    pub root: PathBuf,
    artifact: PathBuf,
    dest: PathBuf,
}

impl WorkDir {
    pub fn create(root: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(root.join("beside"))?;
        fs::write(root.join("beside/keep"), "keep me\n")?;
        let artifact = root.join("artifact.tar.zst");
        fs::write(&artifact, PREVIOUS_ARTIFACT)?;
        Ok(WorkDir {
            dest: root.join("dest"),
            artifact,
            root,
        })
    }

    pub fn artifact(&self) -> &Path {
        &self.artifact
    }

    /// What a restore into this work dir writes: the artifact, and the tree at `dest`.
    pub fn targets(&self) -> RestoreTargets<'_> {
        RestoreTargets {
            artifact: Some(&self.artifact),
            extract: Some(&self.dest),
        }
    }

    /// Every path under the work dir with its content (or symlink target).
    pub fn snapshot(&self) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut seen = Vec::new();
        snapshot(&self.root, &self.root, &mut seen)?;
        seen.sort();
        Ok(seen)
    }
}

fn snapshot(root: &Path, dir: &Path, seen: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            seen.push((format!("{name}/"), Vec::new()));
            snapshot(root, &path, seen)?;
        } else if meta.is_symlink() {
            let target = fs::read_link(&path)?;
            seen.push((name, target.into_os_string().into_encoded_bytes()));
        } else {
            seen.push((name, fs::read(&path)?));
        }
    }
    Ok(())
}
