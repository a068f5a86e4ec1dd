//! The per-file manifest of an output archive: what the archive holds, entry by entry.
//!
//! The packer writes it, signing covers its canonical bytes, and the extractor requires the
//! archive to match it exactly.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::outpath::{OutputPath, OutputPathError, MAX_PATH_BYTES};

/// Schema identifier of the manifest format, stored in [`Manifest::schema`].
///
/// Changelog (bump the version when any field, encoding or invariant changes):
/// - `hermetic.manifest/v1`: first version. `files` lists every entry sorted by path bytes
///   (so directories precede their contents); each has `path`, `type` (`file`, `dir`,
///   `symlink`), normalised `mode` (0755 dirs and executable files, 0644 other files, 0777
///   symlinks), `size` (0 unless a file), `blake3` (lowercase hex, files only) and `target`
///   (symlinks only, verbatim). Canonical bytes are compact JSON in field declaration order
///   with absent optional fields omitted.
pub const MANIFEST_SCHEMA: &str = "hermetic.manifest/v1";

/// The list of entries of an output archive, in archive order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_SCHEMA`] for manifests this version understands.
    pub schema: String,
    /// Entries sorted by path bytes.
    pub files: Vec<FileEntry>,
}

pub use hermetic_contract::manifest::{
    FileEntry, FileKind, MODE_EXECUTABLE, MODE_REGULAR, MODE_SYMLINK,
};

/// Why manifest bytes or a manifest value are not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("failed to parse manifest JSON")]
    Json(#[source] serde_json::Error),
    #[error("unknown manifest schema `{found}` (expected `{MANIFEST_SCHEMA}`)")]
    UnknownSchema { found: String },
    #[error("manifest entry `{path}` has an invalid path")]
    InvalidPath {
        path: String,
        #[source]
        source: OutputPathError,
    },
    #[error("manifest entry `{path}` is invalid: {problem}")]
    InvalidEntry { path: String, problem: &'static str },
}

impl Manifest {
    /// A manifest of the current schema holding `files`.
    pub fn new(files: Vec<FileEntry>) -> Self {
        Self {
            schema: MANIFEST_SCHEMA.to_owned(),
            files,
        }
    }

    /// Parses and validates manifest bytes: unknown fields, duplicate keys, an unknown schema
    /// or an entry breaking the invariants of [`Manifest::validate`] are errors.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the invariants the packer guarantees and the extractor relies on: known schema,
    /// canonical paths sorted strictly by bytes, every parent listed earlier as a directory,
    /// normalised modes, and exactly the optional fields each type needs.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.schema != MANIFEST_SCHEMA {
            return Err(ManifestError::UnknownSchema {
                found: self.schema.clone(),
            });
        }
        let mut dirs: HashSet<&str> = HashSet::new();
        let mut previous: Option<&str> = None;
        for entry in &self.files {
            let invalid = |problem| ManifestError::InvalidEntry {
                path: entry.path.clone(),
                problem,
            };
            OutputPath::parse(&entry.path).map_err(|source| ManifestError::InvalidPath {
                path: entry.path.clone(),
                source,
            })?;
            if previous.is_some_and(|previous| previous >= entry.path.as_str()) {
                return Err(invalid("entries are not sorted by path or are duplicated"));
            }
            previous = Some(&entry.path);
            if let Some((parent, _)) = entry.path.rsplit_once('/') {
                if !dirs.contains(parent) {
                    return Err(invalid("its parent is not listed before it as a directory"));
                }
            }
            validate_fields(entry).map_err(invalid)?;
            if entry.kind == FileKind::Dir {
                dirs.insert(&entry.path);
            }
        }
        Ok(())
    }

    /// Canonical encoding: compact JSON, fields in declaration order, absent optional fields
    /// omitted. Digests and signatures are computed over these bytes.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest only holds strings and integers")
    }

    /// BLAKE3 of [`Manifest::to_canonical_json`], lowercase hex.
    pub fn blake3_hex(&self) -> String {
        blake3::hash(&self.to_canonical_json()).to_hex().to_string()
    }

    /// SHA-256 of [`Manifest::to_canonical_json`], lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.to_canonical_json()))
    }
}

/// Whether one entry's fields fit its kind.
fn validate_fields(entry: &FileEntry) -> Result<(), &'static str> {
    match entry.kind {
        FileKind::File => {
            if entry.mode != MODE_REGULAR && entry.mode != MODE_EXECUTABLE {
                return Err("file mode must be 0644 or 0755");
            }
            if !entry.blake3.as_deref().is_some_and(is_blake3_hex) {
                return Err("file needs a blake3 digest of 64 lowercase hex digits");
            }
            if entry.target.is_some() {
                return Err("only symlinks have a target");
            }
        }
        FileKind::Dir => {
            if entry.mode != MODE_EXECUTABLE {
                return Err("directory mode must be 0755");
            }
            if entry.size != 0 || entry.blake3.is_some() || entry.target.is_some() {
                return Err("directory must have size 0 and no digest or target");
            }
        }
        FileKind::Symlink => {
            if entry.mode != MODE_SYMLINK {
                return Err("symlink mode must be 0777");
            }
            if entry.size != 0 || entry.blake3.is_some() {
                return Err("symlink must have size 0 and no digest");
            }
            let target = entry.target.as_deref().unwrap_or_default();
            if target.is_empty() || target.contains('\0') || target.len() > MAX_PATH_BYTES {
                return Err("symlink target must be 1 to 4096 bytes without NUL");
            }
        }
    }
    Ok(())
}

fn is_blake3_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest::new(vec![
            FileEntry {
                path: "out".into(),
                kind: FileKind::Dir,
                mode: 0o755,
                size: 0,
                blake3: None,
                target: None,
            },
            FileEntry {
                path: "out/a".into(),
                kind: FileKind::File,
                mode: 0o644,
                size: 3,
                blake3: Some(blake3::hash(b"abc").to_hex().to_string()),
                target: None,
            },
            FileEntry {
                path: "out/l".into(),
                kind: FileKind::Symlink,
                mode: 0o777,
                size: 0,
                blake3: None,
                target: Some("a".into()),
            },
        ])
    }

    #[test]
    fn canonical_json_is_compact_ordered_and_round_trips() {
        let manifest = sample();
        let json = String::from_utf8(manifest.to_canonical_json()).unwrap();
        assert!(json.starts_with(
            r#"{"schema":"hermetic.manifest/v1","files":[{"path":"out","type":"dir","mode":493,"size":0},"#
        ));
        assert!(json
            .ends_with(r#"{"path":"out/l","type":"symlink","mode":511,"size":0,"target":"a"}]}"#));
        assert_eq!(Manifest::parse(json.as_bytes()).unwrap(), manifest);
        assert_eq!(manifest.blake3_hex().len(), 64);
        assert_eq!(manifest.sha256_hex().len(), 64);
        assert_eq!(manifest.blake3_hex(), sample().blake3_hex());
    }

    #[test]
    fn parse_refuses_unknown_schema_fields_and_duplicate_keys() {
        let unknown_schema = br#"{"schema":"hermetic.manifest/v9","files":[]}"#;
        assert!(matches!(
            Manifest::parse(unknown_schema),
            Err(ManifestError::UnknownSchema { .. })
        ));
        let unknown_field = br#"{"schema":"hermetic.manifest/v1","files":[],"extra":1}"#;
        assert!(matches!(
            Manifest::parse(unknown_field),
            Err(ManifestError::Json(_))
        ));
        let unknown_entry_field = br#"{"schema":"hermetic.manifest/v1","files":[
            {"path":"out","type":"dir","mode":493,"size":0,"uid":0}]}"#;
        assert!(matches!(
            Manifest::parse(unknown_entry_field),
            Err(ManifestError::Json(_))
        ));
        let duplicate_key = br#"{"schema":"hermetic.manifest/v1","files":[
            {"path":"out","path":"../x","type":"dir","mode":493,"size":0}]}"#;
        assert!(matches!(
            Manifest::parse(duplicate_key),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn validate_refuses_broken_invariants() {
        type Breaker = fn(&mut Manifest);
        let broken: [(&str, Breaker); 7] = [
            ("unsorted", |m| m.files.swap(1, 2)),
            ("duplicate", |m| m.files[2] = m.files[1].clone()),
            ("escaping path", |m| m.files[1].path = "out/../x".into()),
            ("setuid file", |m| m.files[1].mode = 0o4755),
            ("missing digest", |m| m.files[1].blake3 = None),
            ("uppercase digest", |m| {
                m.files[1].blake3 = m.files[1].blake3.as_ref().map(|d| d.to_uppercase())
            }),
            ("parent not a dir", |m| {
                m.files[0].kind = FileKind::Symlink;
                m.files[0].mode = 0o777;
                m.files[0].target = Some("elsewhere".into());
            }),
        ];
        for (name, breaker) in broken {
            let mut manifest = sample();
            breaker(&mut manifest);
            assert!(manifest.validate().is_err(), "{name} was accepted");
        }
        sample().validate().unwrap();
    }
}
