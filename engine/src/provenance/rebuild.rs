//! Rebuilding from provenance (`hermetic drill rebuild`, as rebuilderd does for
//! distribution packages): a signed statement read back into what to build, refused
//! unless a trusted key signed it and the source tree and profile at hand are the ones it
//! records; and the manifest of an archive, to name the files a rebuild differs in.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::archive::manifest::Manifest;
use crate::provenance::verify::{read_signed_statement, SignedStatementError};
use crate::sandbox::profile::{self, ProfileError};
use crate::signing::{VerifyError, VerifyingKey};
use hermetic_contract::manifest::{FileEntry, FileKind, MODE_EXECUTABLE, MODE_REGULAR};

/// Why a bundle cannot be rebuilt here. Each is a refusal, not a `bad` rebuild: nothing
/// was built.
#[derive(Debug, thiserror::Error)]
pub enum RebuildRefusal {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the bundle's signature is not accepted")]
    Signature(#[from] VerifyError),
    #[error("the signed statement is not hermetic's provenance: {0}")]
    Statement(String),
    #[error("the statement's build type is {found:?}; this hermetic rebuilds {expected:?}", expected = super::BUILD_TYPE)]
    BuildType { found: String },
    #[error("the source tree {path} has digest blake3 {found}, the statement records {expected}")]
    Source {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("the source tree {path}: {message}")]
    SourceDigest { path: PathBuf, message: String },
    #[error("profile {origin} has sha256 {found}, the statement records {expected}")]
    Profile {
        origin: String,
        expected: String,
        found: String,
    },
    #[error("the statement's profile {origin}")]
    ProfileLoad {
        origin: String,
        #[source]
        source: ProfileError,
    },
}

impl RebuildRefusal {
    /// A stable, machine-readable name for the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            RebuildRefusal::Read { .. } => "read",
            RebuildRefusal::Signature(err) => err.reason(),
            RebuildRefusal::Statement(_) => "statement_malformed",
            RebuildRefusal::BuildType { .. } => "build_type",
            RebuildRefusal::Source { .. } | RebuildRefusal::SourceDigest { .. } => {
                "source_mismatch"
            }
            RebuildRefusal::Profile { .. } | RebuildRefusal::ProfileLoad { .. } => {
                "profile_mismatch"
            }
        }
    }
}

/// What a verified statement says to build, and what the build must give.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The key that signed it.
    pub key_id: String,
    pub command: Vec<String>,
    pub outputs: Vec<String>,
    /// The profile to load: the given one, or the statement's (`builtin:NAME` as NAME).
    pub profile: String,
    pub source_date_epoch: u64,
    /// `REF@sha256:...` when the build ran in an image.
    pub image: Option<String>,
    /// The subject: the archive's name and digests (lowercase hex).
    pub subject: String,
    pub sha256: String,
    pub blake3: String,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct Subject {
    name: String,
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Predicate {
    build_definition: BuildDefinition,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition {
    build_type: String,
    external_parameters: External,
    internal_parameters: Internal,
    resolved_dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct External {
    command: Vec<String>,
    outputs: Vec<String>,
    source: Resource,
    #[serde(default)]
    image: Option<String>,
}

#[derive(Deserialize)]
struct Resource {
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Internal {
    pins: Pins,
}

#[derive(Deserialize)]
struct Pins {
    source_date_epoch: u64,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    #[serde(default)]
    uri: Option<String>,
    digest: BTreeMap<String, String>,
}

/// Reads `bundle_path`, checks its signature with `trusted` only, then that `src` is the
/// recorded source tree and the profile (`profile`, else the one the statement names)
/// the recorded profile file.
pub fn recipe(
    bundle_path: &Path,
    src: &Path,
    profile: Option<&str>,
    trusted: &[VerifyingKey],
) -> Result<Recipe, RebuildRefusal> {
    let (verified, statement): (_, Statement) = read_signed_statement(bundle_path, trusted)
        .map_err(|err| match err {
            SignedStatementError::Read(source) => RebuildRefusal::Read {
                path: bundle_path.to_owned(),
                source,
            },
            SignedStatementError::Signature(err) => err.into(),
            SignedStatementError::Malformed(why) => RebuildRefusal::Statement(why),
        })?;
    if statement.statement_type != super::STATEMENT_TYPE
        || statement.predicate_type != super::SLSA_PROVENANCE_V1
    {
        return Err(RebuildRefusal::Statement(format!(
            "type {:?} with predicate {:?}",
            statement.statement_type, statement.predicate_type
        )));
    }
    let definition = statement.predicate.build_definition;
    if definition.build_type != super::BUILD_TYPE {
        return Err(RebuildRefusal::BuildType {
            found: definition.build_type,
        });
    }
    let [subject] = &statement.subject[..] else {
        return Err(RebuildRefusal::Statement(format!(
            "{} subjects, not one archive",
            statement.subject.len()
        )));
    };
    let digest =
        |name: &str| {
            subject.digest.get(name).cloned().ok_or_else(|| {
                RebuildRefusal::Statement(format!("the subject has no {name} digest"))
            })
        };
    let (sha256, blake3) = (digest("sha256")?, digest("blake3")?);

    let external = definition.external_parameters;
    let expected_source = external
        .source
        .digest
        .get("blake3")
        .ok_or_else(|| RebuildRefusal::Statement("the source has no blake3 digest".into()))?;
    let source = src.canonicalize().unwrap_or_else(|_| src.to_owned());
    let found = crate::sandbox::plan::tree_digest(&source, &[]).map_err(|message| {
        RebuildRefusal::SourceDigest {
            path: source.clone(),
            message,
        }
    })?;
    if found != *expected_source {
        return Err(RebuildRefusal::Source {
            path: source,
            expected: expected_source.clone(),
            found,
        });
    }

    let recorded = definition
        .resolved_dependencies
        .iter()
        .find(|dependency| dependency.name == "profile")
        .ok_or_else(|| RebuildRefusal::Statement("no profile among the dependencies".into()))?;
    let expected_profile = recorded
        .digest
        .get("sha256")
        .ok_or_else(|| RebuildRefusal::Statement("the profile has no sha256 digest".into()))?;
    let origin = match (profile, recorded.uri.as_deref()) {
        (Some(given), _) => given.to_owned(),
        (None, Some(uri)) => uri.strip_prefix("builtin:").unwrap_or(uri).to_owned(),
        (None, None) => {
            return Err(RebuildRefusal::Statement(
                "the profile dependency has no uri".into(),
            ))
        }
    };
    let loaded = profile::load(&origin).map_err(|source| RebuildRefusal::ProfileLoad {
        origin: origin.clone(),
        source,
    })?;
    if loaded.sha256 != *expected_profile {
        return Err(RebuildRefusal::Profile {
            origin,
            expected: expected_profile.clone(),
            found: loaded.sha256,
        });
    }
    Ok(Recipe {
        key_id: verified.key.key_id(),
        command: external.command,
        outputs: external.outputs,
        profile: origin,
        source_date_epoch: definition.internal_parameters.pins.source_date_epoch,
        image: external.image,
        subject: subject.name.clone(),
        sha256,
        blake3,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveReadError {
    #[error("failed to read the archive {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the archive {path} has a member that is not a file, directory or symlink: {member}")]
    Member { path: PathBuf, member: String },
}

/// The manifest of a hermetic archive (tar+zstd), read member by member and never
/// extracted: what `drill rebuild` compares the released archive and the rebuild by.
/// Modes are normalised as the packer writes them.
pub fn archive_manifest(path: &Path) -> Result<Manifest, ArchiveReadError> {
    let failed = |source| ArchiveReadError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let decoder = zstd::Decoder::new(file).map_err(failed)?;
    let mut archive = tar::Archive::new(decoder);
    let mut files = Vec::new();
    for member in archive.entries().map_err(failed)? {
        let mut member = member.map_err(failed)?;
        let name = member
            .path()
            .map_err(failed)?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let header = member.header();
        let kind = header.entry_type();
        let executable = header.mode().map_err(failed)? & 0o111 != 0;
        let entry = if kind.is_dir() {
            FileEntry::dir(&name)
        } else if kind.is_symlink() {
            let target = member
                .link_name()
                .map_err(failed)?
                .map(|target| target.to_string_lossy().into_owned())
                .unwrap_or_default();
            FileEntry::symlink(&name, &target)
        } else if kind.is_file() {
            let mut hasher = blake3::Hasher::new();
            let size = std::io::copy(&mut member, &mut hasher).map_err(failed)?;
            FileEntry {
                path: name,
                kind: FileKind::File,
                mode: if executable {
                    MODE_EXECUTABLE
                } else {
                    MODE_REGULAR
                },
                size,
                blake3: Some(hasher.finalize().to_hex().to_string()),
                target: None,
            }
        } else {
            return Err(ArchiveReadError::Member {
                path: path.to_owned(),
                member: name,
            });
        };
        files.push(entry);
    }
    Ok(Manifest::new(files))
}
