//! Output paths: the names under the build dir that a build declares as its results.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component, in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// A validated output path relative to the build dir, such as `out/bin`.
///
/// It is non-empty, relative, at most [`MAX_PATH_BYTES`] long, and made only of plain names
/// separated by single `/`: no `.` or `..`, no empty component (`a//b`, trailing `/`), no NUL.
/// Because it is already in that canonical form it can be compared byte for byte with the
/// names stored in archives and manifests.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OutputPath(String);

/// Why a string is not an [`OutputPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputPathError {
    #[error("output path is empty")]
    Empty,
    #[error("output path `{path}` is absolute; it must be relative to the build dir")]
    Absolute { path: String },
    #[error("output path `{path}` contains a NUL byte")]
    Nul { path: String },
    #[error("output path `{path}` has an empty component (`//` or a trailing `/`)")]
    EmptyComponent { path: String },
    #[error("output path `{path}` has a `{component}` component; only plain names are allowed")]
    DotComponent {
        path: String,
        component: &'static str,
    },
    #[error("output path is {len} bytes long; the limit is {MAX_PATH_BYTES}")]
    TooLong { len: usize },
    #[error(
        "output path `{path}` has a component of {len} bytes; the limit is {MAX_COMPONENT_BYTES}"
    )]
    ComponentTooLong { path: String, len: usize },
}

impl OutputPath {
    /// Validates `s` as an output path.
    pub fn parse(s: &str) -> Result<Self, OutputPathError> {
        check(s)?;
        Ok(Self(s.to_owned()))
    }

    /// The path as written, e.g. `out/sub`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check(s: &str) -> Result<(), OutputPathError> {
    if s.is_empty() {
        return Err(OutputPathError::Empty);
    }
    if s.len() > MAX_PATH_BYTES {
        return Err(OutputPathError::TooLong { len: s.len() });
    }
    let path = || s.to_owned();
    if s.starts_with('/') {
        return Err(OutputPathError::Absolute { path: path() });
    }
    if s.contains('\0') {
        return Err(OutputPathError::Nul { path: path() });
    }
    for component in s.split('/') {
        match component {
            "" => return Err(OutputPathError::EmptyComponent { path: path() }),
            "." => {
                return Err(OutputPathError::DotComponent {
                    path: path(),
                    component: ".",
                })
            }
            ".." => {
                return Err(OutputPathError::DotComponent {
                    path: path(),
                    component: "..",
                })
            }
            name if name.len() > MAX_COMPONENT_BYTES => {
                return Err(OutputPathError::ComponentTooLong {
                    path: path(),
                    len: name.len(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for OutputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OutputPath {
    type Error = OutputPathError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        check(&s)?;
        Ok(Self(s))
    }
}

impl From<OutputPath> for String {
    fn from(path: OutputPath) -> Self {
        path.0
    }
}

impl AsRef<str> for OutputPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        for ok in [
            "out",
            "out/bin/tool",
            "a.b/..c/c..",
            "with space/ünïcode",
            "-x/.hidden",
        ] {
            let path = OutputPath::parse(ok).unwrap();
            assert_eq!(path.as_str(), ok);
            assert_eq!(path.to_string(), ok);
        }
    }

    #[test]
    fn refuses_non_canonical_and_escaping_paths() {
        let cases = [
            ("", OutputPathError::Empty),
            (
                "/etc",
                OutputPathError::Absolute {
                    path: "/etc".into(),
                },
            ),
            (
                "a\0b",
                OutputPathError::Nul {
                    path: "a\0b".into(),
                },
            ),
            (
                "a//b",
                OutputPathError::EmptyComponent {
                    path: "a//b".into(),
                },
            ),
            ("a/", OutputPathError::EmptyComponent { path: "a/".into() }),
            (
                "./a",
                OutputPathError::DotComponent {
                    path: "./a".into(),
                    component: ".",
                },
            ),
            (
                "a/../../etc",
                OutputPathError::DotComponent {
                    path: "a/../../etc".into(),
                    component: "..",
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(OutputPath::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn enforces_length_limits() {
        let long_component = "x".repeat(MAX_COMPONENT_BYTES + 1);
        assert!(matches!(
            OutputPath::parse(&long_component),
            Err(OutputPathError::ComponentTooLong { len: 256, .. })
        ));
        let max_component = "x".repeat(MAX_COMPONENT_BYTES);
        assert!(OutputPath::parse(&max_component).is_ok());
        let long_path = vec!["d"; MAX_PATH_BYTES / 2 + 1].join("/");
        assert!(matches!(
            OutputPath::parse(&long_path),
            Err(OutputPathError::TooLong { .. })
        ));
    }

    #[test]
    fn serde_validates_on_deserialize() {
        let path: OutputPath = serde_json::from_str("\"out/bin\"").unwrap();
        assert_eq!(serde_json::to_string(&path).unwrap(), "\"out/bin\"");
        assert!(serde_json::from_str::<OutputPath>("\"../x\"").is_err());
        assert!(serde_json::from_str::<OutputPath>("\"/x\"").is_err());
    }
}
