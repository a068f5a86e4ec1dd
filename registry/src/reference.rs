//! Names of things in a registry: the registry's address, a repository in it, a tag, and
//! the two spellings users write (`oci://HOST/REPO` for the cache, `HOST/REPO:TAG@DIGEST`
//! for images). Everything here is validated once, on parsing, so that what later goes
//! into a URL path cannot carry `..`, `?` or `#`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use oci_spec::image::{Digest, DigestAlgorithm};

/// Why a name was refused; each variant names the input as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("{input:?} is not an oci:// address (expected oci://HOST[:PORT]/REPOSITORY)")]
    NotOciUrl { input: String },
    #[error(
        "{input:?} names no registry host: write HOST[:PORT]/REPOSITORY, where HOST has a dot \
         or a port, or is localhost (there is no default registry)"
    )]
    NoRegistryHost { input: String },
    #[error("{input:?} has an invalid registry host {host:?}")]
    InvalidHost { input: String, host: String },
    #[error("{input:?} has an invalid repository name {name:?} (lowercase letters, digits and . _ - separators, components joined by /)")]
    InvalidRepository { input: String, name: String },
    #[error("{input:?} has an invalid tag {tag:?} (at most 128 of letters, digits, _ . -, not starting with . or -)")]
    InvalidTag { input: String, tag: String },
    #[error(
        "{input:?} has an invalid digest {digest:?} (expected sha256: and 64 lowercase hex digits)"
    )]
    InvalidDigest { input: String, digest: String },
    #[error("{input:?} names neither a tag nor a digest: add :TAG or @sha256:DIGEST")]
    MissingTagOrDigest { input: String },
}

/// A registry's address as written (`host`, `host:port`, `[v6]:port`), used verbatim as
/// the URL authority and as the key of its credentials and tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Registry {
    authority: String,
    host: String,
}

impl Registry {
    fn parse(authority: &str, input: &str) -> Result<Self, ReferenceError> {
        let invalid = || ReferenceError::InvalidHost {
            input: input.to_owned(),
            host: authority.to_owned(),
        };
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(invalid)?;
            v6.parse::<std::net::Ipv6Addr>().map_err(|_| invalid())?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
            };
            (format!("[{v6}]"), port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (authority.to_owned(), None),
            }
        };
        if let Some(port) = port {
            if port.is_empty() || port.parse::<u16>().is_err() {
                return Err(invalid());
            }
        }
        let is_dns_name = !host.starts_with('[')
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(is_dns_name || host.starts_with('[')) {
            return Err(invalid());
        }
        Ok(Registry {
            authority: authority.to_owned(),
            host,
        })
    }

    /// `host[:port]` as written.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Loopback registries (127.0.0.0/8, ::1, localhost) may be spoken to in plain HTTP:
    /// nothing on the path can read or change the traffic.
    pub fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.eq_ignore_ascii_case("localhost")
            || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority)
    }
}

/// A repository in a registry, e.g. `registry.example:5000/ci/cache`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    registry: Registry,
    name: String,
}

impl Repository {
    /// A repository from its registry address and path (`ci/cache`).
    pub fn new(registry_authority: &str, name: &str) -> Result<Self, ReferenceError> {
        let input = format!("{registry_authority}/{name}");
        Self::from_parts(registry_authority, name, &input)
    }

    fn from_parts(authority: &str, name: &str, input: &str) -> Result<Self, ReferenceError> {
        let registry = Registry::parse(authority, input)?;
        if !is_valid_repository_name(name) {
            return Err(ReferenceError::InvalidRepository {
                input: input.to_owned(),
                name: name.to_owned(),
            });
        }
        Ok(Repository {
            registry,
            name: name.to_owned(),
        })
    }

    /// The remote cache's address: `oci://HOST[:PORT]/REPO[/...]`.
    pub fn parse_oci_url(input: &str) -> Result<Self, ReferenceError> {
        let rest = input
            .strip_prefix("oci://")
            .ok_or_else(|| ReferenceError::NotOciUrl {
                input: input.to_owned(),
            })?;
        let (authority, name) = rest
            .split_once('/')
            .ok_or_else(|| ReferenceError::NotOciUrl {
                input: input.to_owned(),
            })?;
        Self::from_parts(authority, name, input)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The repository's path in the registry, without the host.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// The distribution spec's `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+(...)*)*`,
/// at most 255 characters as distribution enforces.
fn is_valid_repository_name(name: &str) -> bool {
    name.len() <= 255 && name.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(component: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alphanumeric(bytes[0] as char) {
        return false;
    }
    let mut chars = component.chars().peekable();
    while let Some(c) = chars.next() {
        if alphanumeric(c) {
            continue;
        }
        let separator_is_valid = match c {
            '.' => true,
            '_' => {
                if chars.peek() == Some(&'_') {
                    chars.next();
                }
                true
            }
            '-' => {
                while chars.peek() == Some(&'-') {
                    chars.next();
                }
                true
            }
            _ => false,
        };
        if !separator_is_valid || !chars.peek().is_some_and(|&next| alphanumeric(next)) {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn new(tag: &str) -> Result<Self, ReferenceError> {
        Self::parse(tag, tag)
    }

    fn parse(tag: &str, input: &str) -> Result<Self, ReferenceError> {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let valid = (1..=128).contains(&tag.len())
            && tag.starts_with(word)
            && tag.chars().all(|c| word(c) || c == '.' || c == '-');
        if !valid {
            return Err(ReferenceError::InvalidTag {
                input: input.to_owned(),
                tag: tag.to_owned(),
            });
        }
        Ok(Tag(tag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a `sha256:<64 lowercase hex>` digest, the only algorithm this client can check.
pub fn parse_sha256_digest(digest: &str) -> Result<Digest, ReferenceError> {
    parse_digest(digest, digest)
}

fn parse_digest(digest: &str, input: &str) -> Result<Digest, ReferenceError> {
    match Digest::from_str(digest) {
        Ok(parsed) if *parsed.algorithm() == DigestAlgorithm::Sha256 => Ok(parsed),
        _ => Err(ReferenceError::InvalidDigest {
            input: input.to_owned(),
            digest: digest.to_owned(),
        }),
    }
}

/// What follows `/manifests/` in a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestReference {
    Tag(Tag),
    Digest(Digest),
}

impl fmt::Display for ManifestReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestReference::Tag(tag) => tag.fmt(f),
            ManifestReference::Digest(digest) => digest.fmt(f),
        }
    }
}

impl From<Tag> for ManifestReference {
    fn from(tag: Tag) -> Self {
        ManifestReference::Tag(tag)
    }
}

impl From<Digest> for ManifestReference {
    fn from(digest: Digest) -> Self {
        ManifestReference::Digest(digest)
    }
}

/// An image reference, `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`. When both are given the
/// digest is the identity and the tag only a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    repository: Repository,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl ImageReference {
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The reference to fetch the manifest by: the digest when there is one.
    pub fn manifest_reference(&self) -> ManifestReference {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => ManifestReference::Digest(digest.clone()),
            (None, Some(tag)) => ManifestReference::Tag(tag.clone()),
            (None, None) => unreachable!("parsing refuses a reference with neither"),
        }
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (without_digest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest, input)?)),
            None => (input, None),
        };
        let (authority, path) =
            without_digest
                .split_once('/')
                .ok_or_else(|| ReferenceError::NoRegistryHost {
                    input: input.to_owned(),
                })?;
        let names_a_registry =
            authority.contains('.') || authority.contains(':') || authority == "localhost";
        if !names_a_registry {
            return Err(ReferenceError::NoRegistryHost {
                input: input.to_owned(),
            });
        }
        // A colon after the last slash starts the tag; one before it belongs to the host.
        let (name, tag) = match path.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(Tag::parse(tag, input)?)),
            _ => (path, None),
        };
        if tag.is_none() && digest.is_none() {
            return Err(ReferenceError::MissingTagOrDigest {
                input: input.to_owned(),
            });
        }
        Ok(ImageReference {
            repository: Repository::from_parts(authority, name, input)?,
            tag,
            digest,
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    #[test]
    fn oci_url_gives_registry_and_nested_repository() {
        let repository = Repository::parse_oci_url("oci://127.0.0.1:5000/ci/build-cache").unwrap();
        assert_eq!(repository.registry().authority(), "127.0.0.1:5000");
        assert_eq!(repository.name(), "ci/build-cache");
        assert!(repository.registry().is_loopback());
        assert_eq!(repository.to_string(), "127.0.0.1:5000/ci/build-cache");
    }

    #[test]
    fn oci_url_refuses_other_schemes_missing_paths_and_bad_names() {
        for (input, expected) in [
            ("https://registry.example/cache", "not an oci:// address"),
            ("oci://registry.example", "not an oci:// address"),
            ("oci://registry.example/", "invalid repository name"),
            ("oci://registry.example/Cache", "invalid repository name"),
            ("oci://registry.example/a/../b", "invalid repository name"),
            ("oci://registry.example/a//b", "invalid repository name"),
            ("oci://registry.example/a-", "invalid repository name"),
            (
                "oci://registry.example/cache?x=1",
                "invalid repository name",
            ),
            ("oci://registry.example:http/cache", "invalid registry host"),
            (
                "oci://registry.example:99999/cache",
                "invalid registry host",
            ),
            ("oci://reg_istry.example/cache", "invalid registry host"),
        ] {
            let error = Repository::parse_oci_url(input).unwrap_err().to_string();
            assert!(error.contains(expected), "{input}: {error}");
            assert!(
                error.contains(&format!("{input:?}")),
                "{error} names its input"
            );
        }
    }

    #[test]
    fn repository_components_allow_the_spec_separators() {
        for name in [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "ci/cache/v1",
            "x0/y-1.z",
        ] {
            assert!(is_valid_repository_name(name), "{name}");
        }
        for name in ["", "a___b", "a._b", "_a", "a/", "/a", "A", "a b"] {
            assert!(!is_valid_repository_name(name), "{name}");
        }
    }

    #[test]
    fn image_reference_with_port_tag_and_digest() {
        let input = format!("localhost:5000/tools/gcc:12.2@sha256:{HEX}");
        let reference: ImageReference = input.parse().unwrap();
        assert_eq!(
            reference.repository.registry().authority(),
            "localhost:5000"
        );
        assert_eq!(reference.repository.name(), "tools/gcc");
        assert_eq!(reference.tag.as_ref().unwrap().as_str(), "12.2");
        assert_eq!(reference.digest.as_ref().unwrap().digest(), HEX);
        assert!(matches!(
            reference.manifest_reference(),
            ManifestReference::Digest(_)
        ));
        assert_eq!(reference.to_string(), input);
    }

    #[test]
    fn image_reference_host_with_port_and_no_tag_is_not_taken_for_a_tag() {
        let reference: ImageReference = format!("registry.example:443/gcc@sha256:{HEX}")
            .parse()
            .unwrap();
        assert_eq!(
            reference.repository.registry().authority(),
            "registry.example:443"
        );
        assert_eq!(reference.tag, None);
        assert!(!reference.repository.registry().is_loopback());
    }

    #[test]
    fn image_reference_requires_an_explicit_registry_and_a_tag_or_digest() {
        for (input, expected) in [
            ("library/gcc:12", "names no registry host"),
            ("gcc:12", "names no registry host"),
            ("registry.example/gcc", "neither a tag nor a digest"),
            ("registry.example/gcc:-x", "invalid tag"),
            ("registry.example/gcc@sha512:00", "invalid digest"),
            ("registry.example/gcc@sha256:ABC", "invalid digest"),
        ] {
            let error = input.parse::<ImageReference>().unwrap_err().to_string();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }

    #[test]
    fn loopback_covers_the_whole_v4_range_v6_and_localhost() {
        for authority in ["127.0.0.1", "127.8.9.10:80", "[::1]:5000", "LOCALHOST:1"] {
            assert!(
                Registry::parse(authority, authority).unwrap().is_loopback(),
                "{authority}"
            );
        }
        for authority in ["10.0.0.1", "registry.example", "[::2]", "localhost.example"] {
            assert!(
                !Registry::parse(authority, authority).unwrap().is_loopback(),
                "{authority}"
            );
        }
    }
}
