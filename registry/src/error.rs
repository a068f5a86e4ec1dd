//! Errors. A [`RegistryError`] names the step, the URL and, through its kind, the HTTP
//! status or the check that failed; [`RegistryError::is_unavailable`] separates an outage
//! (which the cache treats as a miss) from a refusal or a bad answer.

use std::fmt;
use std::io;
use std::path::PathBuf;

use oci_spec::image::Digest;

/// The registry operation a [`RegistryError`] comes from, worded to follow "failed to".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CheckBlob,
    FetchBlob,
    StartUpload,
    MountBlob,
    UploadChunk,
    FinishUpload,
    PushManifest,
    VerifyManifest,
    FetchManifest,
    DeleteManifest,
    ListTags,
    FetchReferrers,
    UpdateReferrersTag,
    GetToken,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CheckBlob => "check for blob",
            Step::FetchBlob => "fetch blob",
            Step::StartUpload => "start blob upload",
            Step::MountBlob => "mount blob from another repository",
            Step::UploadChunk => "upload blob chunk",
            Step::FinishUpload => "finish blob upload",
            Step::PushManifest => "push manifest",
            Step::VerifyManifest => "verify pushed manifest",
            Step::FetchManifest => "fetch manifest",
            Step::DeleteManifest => "delete manifest",
            Step::ListTags => "list tags",
            Step::FetchReferrers => "fetch referrers",
            Step::UpdateReferrersTag => "update referrers tag index",
            Step::GetToken => "get registry token",
        })
    }
}

/// A failed registry operation. The URL carries no credentials and no query string
/// (upload session state and signed redirect parameters stay out of logs). Boxed: it
/// travels through every `Result` of the client.
#[derive(Debug)]
pub struct RegistryError(Box<Failure>);

#[derive(Debug)]
struct Failure {
    step: Step,
    url: String,
    kind: ErrorKind,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to {} at {}", self.0.step, self.0.url)
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.kind)
    }
}

impl RegistryError {
    pub(crate) fn new(step: Step, url: &str, kind: ErrorKind) -> Self {
        RegistryError(Box::new(Failure {
            step,
            url: redact_url(url),
            kind,
        }))
    }

    pub fn step(&self) -> Step {
        self.0.step
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The HTTP status the registry answered, when the failure is one.
    pub fn status(&self) -> Option<u16> {
        match &self.0.kind {
            ErrorKind::Status { status, .. } | ErrorKind::CredentialsRefused { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// True when the registry could not be reached or could not serve the request now
    /// (connection refused, a timeout, 5xx, 429, 408, a body cut short): an outage, not
    /// an answer about the content. Everything else is a refusal (4xx, credentials) or
    /// an answer that failed a check.
    pub fn is_unavailable(&self) -> bool {
        match &self.0.kind {
            ErrorKind::Unreachable(_)
            | ErrorKind::TimedOut(_)
            | ErrorKind::Interrupted { .. }
            | ErrorKind::Truncated { .. } => true,
            ErrorKind::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            _ => false,
        }
    }

    /// True when the registry said 404: no such blob, manifest, tag or repository.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// What went wrong, below the step.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("registry unreachable")]
    Unreachable(#[source] ureq::Error),
    #[error("registry did not answer in time")]
    TimedOut(#[source] ureq::Error),
    #[error("connection broke after {received} bytes of the body")]
    Interrupted {
        received: u64,
        #[source]
        source: io::Error,
    },
    #[error("registry answered {status}{detail}")]
    Status { status: u16, detail: String },
    #[error("registry {registry} asks for credentials and none are configured for it")]
    CredentialsRequired { registry: String },
    #[error("registry refused the credentials (status {status}) that {source_file} holds for {registry}")]
    CredentialsRefused {
        registry: String,
        status: u16,
        source_file: String,
    },
    #[error("registry asks for an unsupported authentication scheme: {challenge:?}")]
    UnsupportedChallenge { challenge: String },
    #[error("refusing to send credentials to {realm} over plain HTTP")]
    InsecureTokenRealm { realm: String },
    #[error("HTTP or TLS failure")]
    Transport(#[source] ureq::Error),
    #[error("no trusted root certificates: the system store is unreadable ({reason}); install ca-certificates or give a CA file")]
    NoTrustRoots { reason: String },
    #[error("registry sent more than the {expected} bytes the descriptor says")]
    TooLong { expected: u64 },
    #[error("body ended after {received} of {expected} bytes")]
    Truncated { expected: u64, received: u64 },
    #[error("content has digest {actual}, expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("manifest is larger than the {limit}-byte cap")]
    ManifestTooLarge { limit: u64 },
    #[error("registry answered media type {actual:?}, not one of {accepted:?}")]
    UnexpectedMediaType {
        actual: String,
        accepted: Vec<String>,
    },
    #[error("invalid answer: {0}")]
    InvalidResponse(String),
    #[error("could not write the blob")]
    Write(#[source] io::Error),
    #[error("could not read the upload source")]
    ReadSource(#[source] io::Error),
    #[error("upload source has {actual_size} bytes with digest {actual}, not {expected_size} bytes with digest {expected}")]
    SourceMismatch {
        expected: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("registry accepted the manifest but does not serve it afterwards")]
    MissingAfterPush,
    #[error("the referrers tag index kept changing under us: gave up after {attempts} attempts")]
    ReferrersConflict { attempts: u32 },
    #[error("digest algorithm {algorithm} is not supported (only sha256)")]
    UnsupportedDigest { algorithm: String },
    #[error("manifest is not valid JSON of its media type")]
    InvalidManifest(#[source] serde_json::Error),
}

/// Why a [`crate::Client`] could not be set up: its CA file or an auth file.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("failed to read the CA file {path}")]
    ReadCaFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the CA file {path} holds no PEM certificate")]
    EmptyCaFile { path: PathBuf },
    #[error("failed to parse the CA file {path}")]
    ParseCaFile {
        path: PathBuf,
        #[source]
        source: ureq::Error,
    },
    #[error("failed to read the registry auth file {path}")]
    ReadAuthFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to parse the registry auth file {path}")]
    ParseAuthFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the registry auth file {path} has an invalid entry for {registry}: {reason}")]
    InvalidAuthEntry {
        path: PathBuf,
        registry: String,
        reason: &'static str,
    },
}

/// Drops `user:password@` and the query string.
fn redact_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let Some((scheme, rest)) = without_query.split_once("://") else {
        return without_query.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_errors_lose_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:secret@registry.example/v2/a/blobs/uploads/1?_state=x"),
            "https://registry.example/v2/a/blobs/uploads/1"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:5000/v2/"),
            "http://127.0.0.1:5000/v2/"
        );
    }

    #[test]
    fn outages_and_refusals_are_told_apart_by_status() {
        let with_status = |status| {
            RegistryError::new(
                Step::FetchBlob,
                "http://r/v2/",
                ErrorKind::Status {
                    status,
                    detail: String::new(),
                },
            )
        };
        for status in [500, 502, 503, 429, 408] {
            assert!(with_status(status).is_unavailable(), "{status}");
        }
        for status in [400, 401, 403, 404, 416] {
            assert!(!with_status(status).is_unavailable(), "{status}");
        }
        assert!(with_status(404).is_not_found());
    }
}
