//! Registry credentials, found where docker and podman keep them, and the answers to a
//! registry's `WWW-Authenticate` challenge (Basic, or a Bearer token from its token
//! endpoint), cached per registry, repository and access.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::error::ClientError;
use crate::reference::Repository;

/// A password, token or `Authorization` value. No Debug or Display, so that it cannot
/// end up in a log or an error message by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// A user name and password for one registry (or one namespace in it).
#[derive(Clone)]
pub struct BasicCredential {
    username: String,
    password: Secret,
}

impl BasicCredential {
    pub fn new(username: impl Into<String>, password: Secret) -> Self {
        BasicCredential {
            username: username.into(),
            password,
        }
    }

    pub(crate) fn authorization(&self) -> Secret {
        let pair = format!("{}:{}", self.username, self.password.expose());
        Secret(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}

/// A credential and the file it came from (named when the registry refuses it).
#[derive(Clone)]
pub(crate) struct FoundCredential {
    pub credential: BasicCredential,
    pub source: String,
}

/// The credentials of the auth files, in the order they are searched.
#[derive(Clone, Default)]
pub struct Credentials {
    files: Vec<AuthFile>,
}

#[derive(Clone)]
struct AuthFile {
    path: PathBuf,
    /// Keyed by `host[:port]` or `host[:port]/namespace`, as normalized by `entry_key`.
    entries: HashMap<String, BasicCredential>,
}

impl Credentials {
    /// No credentials: anonymous access only.
    pub fn none() -> Self {
        Credentials::default()
    }

    /// The auth files docker and podman use, from this process's environment
    /// ([`auth_file_locations`]).
    pub fn from_environment() -> Result<Self, ClientError> {
        Self::from_auth_files(&auth_file_locations(|name| std::env::var_os(name)))
    }

    /// Reads these auth files (docker's `config.json` or podman's `auth.json` format);
    /// a missing file is skipped, an unreadable or malformed one is an error.
    pub fn from_auth_files(paths: &[PathBuf]) -> Result<Self, ClientError> {
        let mut files = Vec::new();
        for path in paths {
            match std::fs::read(path) {
                Ok(bytes) => files.push(AuthFile::parse(path, &bytes)?),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ClientError::ReadAuthFile {
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(Credentials { files })
    }

    /// One credential for one registry, as `Client`s built in code (and tests) need.
    pub fn for_registry(registry_authority: &str, credential: BasicCredential) -> Self {
        Credentials {
            files: vec![AuthFile {
                path: PathBuf::from("(given in code)"),
                entries: HashMap::from([(entry_key(registry_authority), credential)]),
            }],
        }
    }

    /// The first file that has an entry for this repository wins; within a file, a
    /// namespace entry (`host/team`) wins over the host's.
    pub(crate) fn lookup(&self, repository: &Repository) -> Option<FoundCredential> {
        let full = format!(
            "{}/{}",
            repository.registry().authority(),
            repository.name()
        );
        let candidates: Vec<&str> = std::iter::successors(Some(full.as_str()), |key| {
            key.rsplit_once('/').map(|(parent, _)| parent)
        })
        .collect();
        self.files.iter().find_map(|file| {
            candidates.iter().find_map(|key| {
                file.entries.get(*key).map(|credential| FoundCredential {
                    credential: credential.clone(),
                    source: file.path.display().to_string(),
                })
            })
        })
    }
}

/// Where docker and podman look, in this order: `$REGISTRY_AUTH_FILE`;
/// `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json` when `DOCKER_CONFIG` is
/// unset (as docker does: the variable replaces the directory);
/// `$XDG_RUNTIME_DIR/containers/auth.json`.
pub fn auth_file_locations(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(file) = env("REGISTRY_AUTH_FILE") {
        paths.push(PathBuf::from(file));
    }
    match (env("DOCKER_CONFIG"), env("HOME")) {
        (Some(dir), _) => paths.push(Path::new(&dir).join("config.json")),
        (None, Some(home)) => paths.push(Path::new(&home).join(".docker/config.json")),
        (None, None) => {}
    }
    if let Some(runtime_dir) = env("XDG_RUNTIME_DIR") {
        paths.push(Path::new(&runtime_dir).join("containers/auth.json"));
    }
    paths
}

#[derive(Deserialize)]
struct AuthFileJson {
    #[serde(default)]
    auths: HashMap<String, AuthEntryJson>,
}

#[derive(Deserialize)]
struct AuthEntryJson {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl AuthFile {
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ClientError> {
        let json: AuthFileJson =
            serde_json::from_slice(bytes).map_err(|source| ClientError::ParseAuthFile {
                path: path.to_owned(),
                source,
            })?;
        let mut entries = HashMap::new();
        for (registry, entry) in json.auths {
            let invalid = |reason| ClientError::InvalidAuthEntry {
                path: path.to_owned(),
                registry: registry.clone(),
                reason,
            };
            let credential = match (entry.auth.as_deref(), entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .map_err(|_| invalid("\"auth\" is not base64"))?;
                    let pair =
                        String::from_utf8(decoded).map_err(|_| invalid("\"auth\" is not UTF-8"))?;
                    let (username, password) = pair
                        .split_once(':')
                        .ok_or_else(|| invalid("\"auth\" is not user:password"))?;
                    BasicCredential::new(username, Secret::new(password))
                }
                (_, Some(username), Some(password)) => {
                    BasicCredential::new(username, Secret::new(password))
                }
                // docker leaves `{}` for registries whose secret is in a credential
                // helper, which this client does not run.
                _ => continue,
            };
            entries.insert(entry_key(&registry), credential);
        }
        Ok(AuthFile {
            path: path.to_owned(),
            entries,
        })
    }
}

/// `https://registry.example/v1/` and `registry.example` name the same registry.
fn entry_key(registry: &str) -> String {
    let without_scheme = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    let trimmed = without_scheme.trim_end_matches('/');
    let without_api = trimmed
        .strip_suffix("/v1")
        .or_else(|| trimmed.strip_suffix("/v2"))
        .unwrap_or(trimmed);
    without_api.to_owned()
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="x"` or `Bearer realm="…",service="…",scope="…"`; None for
/// other schemes.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, parameters) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let parameters = parse_auth_parameters(parameters);
    Some(Challenge::Bearer {
        realm: parameters.get("realm")?.clone(),
        service: parameters.get("service").cloned(),
        scope: parameters.get("scope").cloned(),
    })
}

/// `key="value", key=token` pairs; quoted values may hold commas (scopes do:
/// `repository:a:pull,push`) and backslash escapes.
fn parse_auth_parameters(input: &str) -> HashMap<String, String> {
    let mut parameters = HashMap::new();
    let mut rest = input.trim_start();
    while let Some(equals) = rest.find('=') {
        let key = rest[..equals]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = &rest[equals + 1..];
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
                    '"' => {
                        end = index + 1;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            rest = &quoted[end..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value.push_str(rest[..end].trim());
            rest = &rest[end..];
        }
        parameters.insert(key, value);
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    parameters
}

/// The token endpoint's answer; `access_token` is the OAuth2 spelling.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The `Authorization` value and how long it may be reused. The spec's default
    /// lifetime is 60 s; ten seconds are kept in hand for the request in flight.
    pub(crate) fn into_authorization(self) -> Option<(Secret, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60).saturating_sub(10));
        Some((Secret(format!("Bearer {token}")), lifetime))
    }
}

/// What a request needs the credential for; the key of the token cache, since a
/// registry's scopes are per repository and action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Pull,
    Push,
    Delete,
}

#[derive(PartialEq, Eq, Hash)]
struct CacheKey {
    registry: String,
    repository: String,
    access: Access,
}

struct CachedAuthorization {
    authorization: Secret,
    expires: Option<Instant>,
}

/// Authorizations that answered a challenge, reused until they expire so that only the
/// first request of a kind pays the 401 round trip.
#[derive(Default)]
pub(crate) struct AuthorizationCache {
    entries: Mutex<HashMap<CacheKey, CachedAuthorization>>,
}

impl AuthorizationCache {
    pub(crate) fn get(&self, repository: &Repository, access: Access) -> Option<Secret> {
        let key = cache_key(repository, access);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let cached = entries.get(&key)?;
        if cached
            .expires
            .is_some_and(|expires| Instant::now() >= expires)
        {
            entries.remove(&key);
            return None;
        }
        Some(cached.authorization.clone())
    }

    pub(crate) fn insert(
        &self,
        repository: &Repository,
        access: Access,
        authorization: Secret,
        lifetime: Option<Duration>,
    ) {
        let cached = CachedAuthorization {
            authorization,
            expires: lifetime.map(|lifetime| Instant::now() + lifetime),
        };
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(cache_key(repository, access), cached);
    }
}

fn cache_key(repository: &Repository, access: Access) -> CacheKey {
    CacheKey {
        registry: repository.registry().authority().to_owned(),
        repository: repository.name().to_owned(),
        access,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_a_comma_in_the_scope() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:ci/cache:pull,push""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:ci/cache:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge(r#"Negotiate abc"#), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn auth_file_entries_in_both_spellings_and_normalized_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{
                    "https://registry.example/v1/": {{"auth": "{auth}"}},
                    "registry.example/team": {{"username": "bob", "password": "pw"}},
                    "helper.example": {{}}
                }}, "credsStore": "desktop"}}"#
            ),
        )
        .unwrap();
        let credentials =
            Credentials::from_auth_files(&[dir.path().join("absent.json"), path]).unwrap();
        let found = |name: &str| {
            credentials
                .lookup(&Repository::new("registry.example", name).unwrap())
                .map(|found| found.credential.username)
        };
        assert_eq!(found("other").as_deref(), Some("alice"));
        assert_eq!(found("team/cache").as_deref(), Some("bob"));
        let helper = Repository::new("helper.example", "x").unwrap();
        assert!(credentials.lookup(&helper).is_none());
        let alice = credentials
            .lookup(&Repository::new("registry.example", "other").unwrap())
            .unwrap();
        assert_eq!(alice.credential.password.expose(), "s3:cret");
    }

    #[test]
    fn malformed_auth_entry_names_the_file_and_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths": {"r.example": {"auth": "bm8tY29sb24="}}}"#,
        )
        .unwrap();
        let error = Credentials::from_auth_files(std::slice::from_ref(&path))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("auth.json") && error.contains("r.example"),
            "{error}"
        );
        assert!(error.contains("user:password"), "{error}");
    }

    #[test]
    fn auth_files_in_docker_and_podman_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        assert_eq!(
            auth_file_locations(env(&[
                ("REGISTRY_AUTH_FILE", "/a.json"),
                ("DOCKER_CONFIG", "/d"),
                ("HOME", "/home/u"),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
            ])),
            [
                "/a.json",
                "/d/config.json",
                "/run/user/1/containers/auth.json"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            auth_file_locations(env(&[("HOME", "/home/u")])),
            [PathBuf::from("/home/u/.docker/config.json")]
        );
    }

    #[test]
    fn token_answer_in_either_field_with_its_lifetime() {
        let answer: TokenResponse =
            serde_json::from_str(r#"{"access_token": "abc", "expires_in": 300}"#).unwrap();
        let (authorization, lifetime) = answer.into_authorization().unwrap();
        assert_eq!(authorization.expose(), "Bearer abc");
        assert_eq!(lifetime, Duration::from_secs(290));
        let empty: TokenResponse = serde_json::from_str(r#"{"token": ""}"#).unwrap();
        assert!(empty.into_authorization().is_none());
    }
}
