//! The drill plan: a versioned TOML file listing cases (docs/drills.md). Relative paths
//! are relative to the plan file, so a plan checked in beside the code it drills works
//! from any directory.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The only plan version this hermetic reads.
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("failed to read the plan {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the plan {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("the plan {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    version: u32,
    #[serde(default, rename = "case")]
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    src: Option<PathBuf>,
    git: Option<String>,
    rev: Option<String>,
    command: Vec<String>,
    outputs: Option<Vec<String>>,
    profile: Option<String>,
    image: Option<String>,
    expect_sha256: Option<String>,
    #[serde(default)]
    extra_runs: u32,
    source_date_epoch: Option<u64>,
}

/// A validated plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cases: Vec<Case>,
}

/// Where a case's source comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory (absolute).
    Dir(PathBuf),
    /// A commit of a git repository: a URL, or a path made absolute.
    Git { url: String, rev: String },
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub source: Source,
    pub command: Vec<String>,
    pub outputs: Vec<String>,
    /// A profile name, or a path made absolute.
    pub profile: String,
    pub image: Option<String>,
    /// `sha256:<hex>`, lowercase.
    pub expect_sha256: Option<String>,
    pub extra_runs: u32,
    pub source_date_epoch: Option<u64>,
}

pub fn load(path: &Path) -> Result<Plan, PlanError> {
    let path = std::path::absolute(path).map_err(|source| PlanError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = std::fs::read_to_string(&path).map_err(|source| PlanError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&path, &text)
}

fn parse(path: &Path, text: &str) -> Result<Plan, PlanError> {
    let file: PlanFile = toml::from_str(text).map_err(|source| PlanError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| PlanError::Invalid {
        path: path.to_owned(),
        message,
    };
    if file.version != PLAN_VERSION {
        return Err(invalid(format!(
            "version {} is not supported (this hermetic reads version {PLAN_VERSION})",
            file.version
        )));
    }
    if file.cases.is_empty() {
        return Err(invalid("no [[case]]".into()));
    }
    let base = path.parent().unwrap_or(Path::new("/"));
    let mut names = HashSet::new();
    let mut cases = Vec::with_capacity(file.cases.len());
    for case in file.cases {
        let name = case.name;
        let fail = |message: &str| invalid(format!("case {name:?}: {message}"));
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(fail(
                "the name must be non-empty, without control characters",
            ));
        }
        if !names.insert(name.clone()) {
            return Err(fail("a second case has this name"));
        }
        if case.command.is_empty() {
            return Err(fail("command is empty"));
        }
        let source = match (case.src, case.git, case.rev) {
            (Some(src), None, None) => Source::Dir(base.join(src)),
            (None, Some(url), Some(rev)) => {
                if rev.is_empty() || rev.starts_with('-') {
                    return Err(fail("rev must name a commit"));
                }
                Source::Git {
                    url: git_url(base, &url),
                    rev,
                }
            }
            (None, Some(_), None) => return Err(fail("git needs rev (the commit to build)")),
            (Some(_), Some(_), _) => return Err(fail("give src or git, not both")),
            (_, None, Some(_)) => return Err(fail("rev needs git")),
            (None, None, None) => return Err(fail("give src or git and rev")),
        };
        let profile = match (case.profile, &case.image) {
            (Some(_), Some(_)) => return Err(fail("give profile or image, not both")),
            (Some(profile), None) if profile.contains('/') || profile.ends_with(".toml") => {
                base.join(profile).to_string_lossy().into_owned()
            }
            (Some(profile), None) => profile,
            (None, _) => "default".to_owned(),
        };
        if let Some(image) = &case.image {
            let pinned = image
                .split_once("@sha256:")
                .is_some_and(|(_, hex)| is_sha256_hex(hex));
            if !pinned {
                return Err(fail(
                    "image must be pinned by its manifest digest: REF@sha256:<64 hex digits>",
                ));
            }
        }
        let expect_sha256 = match case.expect_sha256 {
            Some(digest) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
                if !is_sha256_hex(hex) {
                    return Err(fail("expect_sha256 must be 64 lowercase hex digits"));
                }
                Some(format!("sha256:{hex}"))
            }
            None => None,
        };
        cases.push(Case {
            name,
            source,
            command: case.command,
            outputs: case.outputs.unwrap_or_else(|| vec!["out".to_owned()]),
            profile,
            image: case.image,
            expect_sha256,
            extra_runs: case.extra_runs,
            source_date_epoch: case.source_date_epoch,
        });
    }
    Ok(Plan { cases })
}

fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A URL stays as written; anything else is a path, made absolute against the plan's
/// directory.
fn git_url(base: &Path, url: &str) -> String {
    if url.contains("://") || url.starts_with("git@") {
        url.to_owned()
    } else {
        base.join(url).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, PlanError> {
        parse(Path::new("/plans/drills.toml"), text)
    }

    fn refusal(text: &str) -> String {
        plan(text).unwrap_err().to_string()
    }

    #[test]
    fn paths_are_relative_to_the_plan_and_defaults_are_filled_in() {
        let plan = plan(
            r#"
            version = 1
            [[case]]
            name = "hello"
            src = "examples/hello"
            command = ["make"]
            [[case]]
            name = "tool"
            git = "../repos/tool"
            rev = "abc123"
            command = ["sh", "build.sh"]
            outputs = ["dist"]
            profile = "ci/build.toml"
            expect_sha256 = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
            extra_runs = 2
            [[case]]
            name = "remote"
            git = "https://example.org/r.git"
            rev = "abc"
            command = ["true"]
            image = "registry.example/debian@sha256:1111111111111111111111111111111111111111111111111111111111111111"
            "#,
        )
        .unwrap();
        let [hello, tool, remote] = &plan.cases[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(hello.source, Source::Dir("/plans/examples/hello".into()));
        assert_eq!(
            (hello.outputs.clone(), hello.profile.as_str()),
            (vec!["out".to_owned()], "default")
        );
        assert_eq!(
            tool.source,
            Source::Git {
                url: "/plans/../repos/tool".into(),
                rev: "abc123".into()
            }
        );
        assert_eq!(tool.profile, "/plans/ci/build.toml");
        assert_eq!(tool.extra_runs, 2);
        assert!(
            matches!(&remote.source, Source::Git { url, .. } if url == "https://example.org/r.git")
        );
        assert!(remote.image.is_some());
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let case = |extra: &str| {
            format!("version = 1\n[[case]]\nname = \"c\"\ncommand = [\"true\"]\n{extra}\n")
        };
        for (text, expected) in [
            (
                "version = 2\n[[case]]\nname = \"c\"\nsrc = \".\"\ncommand = [\"true\"]\n"
                    .to_owned(),
                "version 2",
            ),
            ("version = 1\n".to_owned(), "no [[case]]"),
            (case("git = \"r\""), "git needs rev"),
            (case("src = \".\"\ngit = \"r\"\nrev = \"a\""), "not both"),
            (case(""), "give src or git"),
            (
                case("src = \".\"\nprofile = \"default\"\nimage = \"r@sha256:aa\""),
                "profile or image",
            ),
            (
                case("src = \".\"\nimage = \"debian:bookworm\""),
                "pinned by its manifest digest",
            ),
            (
                case("src = \".\"\nexpect_sha256 = \"abc\""),
                "64 lowercase hex",
            ),
            (case("src = \".\"\nflavour = \"x\""), "not valid"),
            (
                format!(
                    "{}{}",
                    case("src = \".\""),
                    "[[case]]\nname = \"c\"\nsrc = \".\"\ncommand = [\"true\"]\n"
                ),
                "a second case",
            ),
        ] {
            let message = refusal(&text);
            let chain = format!("{message} {:?}", plan(&text).unwrap_err());
            assert!(chain.contains(expected), "{expected:?} in {chain}");
        }
    }
}
