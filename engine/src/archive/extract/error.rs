//! Why an archive was not restored: [`ExtractError`], its stable reasons and its record for
//! quarantine, and how the reading of members stopped ([`Stop`]) before that is decided.
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use crate::archive::manifest::ManifestError;

/// Why an archive was not restored. [`ExtractError::reason`] and [`ExtractError::record`]
/// give the machine-readable form.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("invalid destination `{dest}`: it needs a parent directory and a final name")]
    InvalidDestination { dest: PathBuf },
    #[error("destination `{dest}` already exists")]
    DestinationExists { dest: PathBuf },
    #[error("failed to open the destination's parent directory `{parent}`")]
    OpenDestinationParent {
        parent: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to check whether destination `{dest}` exists")]
    CheckDestination {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to create a staging directory in `{parent}`")]
    CreateStaging {
        parent: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to move the verified tree into place at `{dest}`")]
    Publish {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write `{path}` into the staging directory")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to read the archive")]
    ReadArchive {
        #[source]
        source: io::Error,
    },
    #[error("manifest is not valid")]
    ManifestInvalid(#[source] ManifestError),
    #[error("failed to decompress the archive: {detail}")]
    Decompress { detail: String },
    #[error("archive is truncated{}: {detail}", at(.path))]
    Truncated {
        path: Option<String>,
        detail: String,
    },
    #[error("archive has data after its end: {detail}")]
    TrailingData { detail: String },
    #[error("invalid tar header{}: {detail}", at(.path))]
    HeaderInvalid {
        path: Option<String>,
        detail: String,
    },
    #[error("refused tar extension header{}: {detail}", at(.path))]
    ExtensionRefused {
        path: Option<String>,
        detail: String,
    },
    #[error("entry `{path}` escapes the destination: {detail}")]
    PathEscape { path: String, detail: String },
    #[error("entry name `{path}` is not canonical: {detail}")]
    NonCanonicalPath { path: String, detail: &'static str },
    #[error("entry `{path}` has a refused type: {found}")]
    EntryTypeRefused { path: String, found: String },
    #[error("entry `{path}` has setuid, setgid or sticky bits (mode {mode:o})")]
    SetuidBit { path: String, mode: u32 },
    #[error("entry `{path}` appears more than once")]
    DuplicateEntry { path: String },
    #[error("{limit} exceeded{}: limit {max}, found {found}", at(.path))]
    LimitExceeded {
        path: Option<String>,
        limit: &'static str,
        max: u64,
        found: u64,
    },
    #[error("archive entry `{path}` is not in the manifest (expected `{expected}` next)")]
    UnexpectedEntry { path: String, expected: String },
    #[error("manifest entry `{path}` is missing from the archive{}", found_instead(.found))]
    MissingEntry { path: String, found: Option<String> },
    #[error("archive has entry `{path}` after the last manifest entry")]
    ExtraEntry { path: String },
    #[error("entry `{path}` differs from the manifest in its {field}: expected {expected}, found {found}")]
    EntryMismatch {
        path: String,
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error("content of `{path}` does not match the manifest: expected blake3 {expected}, found {found}")]
    ContentDigestMismatch {
        path: String,
        expected: String,
        found: String,
    },
    /// The caller's check of the archive bytes themselves (see
    /// [`super::extract_verified_checked`]).
    #[error("archive {what} does not match: expected {expected}, found {found}")]
    ArchiveDigestMismatch {
        what: &'static str,
        expected: String,
        found: String,
    },
}

fn at(path: &Option<String>) -> String {
    path.as_ref()
        .map(|path| format!(" at `{path}`"))
        .unwrap_or_default()
}

fn found_instead(found: &Option<String>) -> String {
    found
        .as_ref()
        .map(|found| format!(" (found `{found}` instead)"))
        .unwrap_or_default()
}

/// An [`ExtractError`] flattened for a quarantine record (`reason.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtractFailure {
    /// [`ExtractError::reason`].
    pub reason: &'static str,
    /// [`ExtractError::is_archive_fault`].
    pub archive_fault: bool,
    pub entry: Option<String>,
    pub expected: Option<String>,
    pub found: Option<String>,
    /// The error and its sources, joined with `: `.
    pub message: String,
}

impl ExtractError {
    /// Short stable identifier of the failure, e.g. `content_digest_mismatch`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidDestination { .. } => "invalid_destination",
            Self::DestinationExists { .. } => "destination_exists",
            Self::OpenDestinationParent { .. }
            | Self::CheckDestination { .. }
            | Self::CreateStaging { .. }
            | Self::Publish { .. }
            | Self::Write { .. } => "io",
            Self::ReadArchive { .. } => "read_archive",
            Self::ManifestInvalid(_) => "manifest_invalid",
            Self::Decompress { .. } => "decompress",
            Self::Truncated { .. } => "truncated",
            Self::TrailingData { .. } => "trailing_data",
            Self::HeaderInvalid { .. } => "header_invalid",
            Self::ExtensionRefused { .. } => "extension_refused",
            Self::PathEscape { .. } => "path_escape",
            Self::NonCanonicalPath { .. } => "non_canonical_path",
            Self::EntryTypeRefused { .. } => "entry_type_refused",
            Self::SetuidBit { .. } => "setuid_bit",
            Self::DuplicateEntry { .. } => "duplicate_entry",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::UnexpectedEntry { .. } => "unexpected_entry",
            Self::MissingEntry { .. } => "missing_entry",
            Self::ExtraEntry { .. } => "extra_entry",
            Self::EntryMismatch { .. } => "entry_mismatch",
            Self::ContentDigestMismatch { .. } => "content_digest_mismatch",
            Self::ArchiveDigestMismatch { .. } => "archive_digest_mismatch",
        }
    }

    /// Whether the archive or manifest is to blame (quarantine it) rather than the local
    /// destination, filesystem or archive reader (retrying may work).
    pub fn is_archive_fault(&self) -> bool {
        !matches!(
            self,
            Self::InvalidDestination { .. }
                | Self::DestinationExists { .. }
                | Self::OpenDestinationParent { .. }
                | Self::CheckDestination { .. }
                | Self::CreateStaging { .. }
                | Self::Publish { .. }
                | Self::Write { .. }
                | Self::ReadArchive { .. }
        )
    }

    /// The archive or manifest entry the failure is about, if any.
    pub fn entry_path(&self) -> Option<&str> {
        match self {
            Self::Write { path, .. }
            | Self::PathEscape { path, .. }
            | Self::NonCanonicalPath { path, .. }
            | Self::EntryTypeRefused { path, .. }
            | Self::SetuidBit { path, .. }
            | Self::DuplicateEntry { path }
            | Self::UnexpectedEntry { path, .. }
            | Self::MissingEntry { path, .. }
            | Self::ExtraEntry { path }
            | Self::EntryMismatch { path, .. }
            | Self::ContentDigestMismatch { path, .. } => Some(path),
            Self::Truncated { path, .. }
            | Self::HeaderInvalid { path, .. }
            | Self::ExtensionRefused { path, .. }
            | Self::LimitExceeded { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    /// What the manifest or the rules required, when the failure is a comparison.
    pub fn expected(&self) -> Option<String> {
        match self {
            Self::UnexpectedEntry { expected, .. }
            | Self::EntryMismatch { expected, .. }
            | Self::ContentDigestMismatch { expected, .. }
            | Self::ArchiveDigestMismatch { expected, .. } => Some(expected.clone()),
            Self::MissingEntry { path, .. } => Some(path.clone()),
            Self::LimitExceeded { max, .. } => Some(max.to_string()),
            Self::EntryTypeRefused { .. } => Some("file, dir or symlink".to_owned()),
            Self::SetuidBit { .. } => Some("no bits above 0777".to_owned()),
            _ => None,
        }
    }

    /// What the archive held instead, when the failure is a comparison.
    pub fn found(&self) -> Option<String> {
        match self {
            Self::UnexpectedEntry { path, .. } => Some(path.clone()),
            Self::MissingEntry { found, .. } => found.clone(),
            Self::EntryMismatch { found, .. }
            | Self::ContentDigestMismatch { found, .. }
            | Self::ArchiveDigestMismatch { found, .. }
            | Self::EntryTypeRefused { found, .. } => Some(found.clone()),
            Self::LimitExceeded { found, .. } => Some(found.to_string()),
            Self::SetuidBit { mode, .. } => Some(format!("{mode:o}")),
            _ => None,
        }
    }

    /// The failure as a serialisable record.
    pub fn record(&self) -> ExtractFailure {
        let message = crate::errors::error_chain(self);
        ExtractFailure {
            reason: self.reason(),
            archive_fault: self.is_archive_fault(),
            entry: self.entry_path().map(str::to_owned),
            expected: self.expected(),
            found: self.found(),
            message,
        }
    }
}

/// How reading the members stopped, when it did not refuse the archive outright.
pub(super) enum Stop {
    Refused(ExtractError),
    /// A read from the tar stream failed; what it means depends on the stream's state.
    Stream {
        error: io::Error,
        path: Option<String>,
    },
    /// The tar stream ended (cleanly or not) before manifest entry `missing`.
    EndedEarly {
        missing: String,
        entries_end: u64,
    },
}

impl From<ExtractError> for Stop {
    fn from(err: ExtractError) -> Self {
        Self::Refused(err)
    }
}
