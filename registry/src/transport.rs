//! HTTP to a registry: the agent (trust roots, timeouts, which registries may be spoken
//! to in plain HTTP), one exchange with its 401 challenge answered once, and the small
//! pieces of HTTP the API needs (Location, Link, error bodies).

use std::io::{ErrorKind as IoErrorKind, Read};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use ureq::http::{self, Method, Response};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, Body};

use crate::auth::{
    parse_challenge, Access, AuthorizationCache, Challenge, Credentials, Secret, TokenResponse,
};
use crate::error::{ClientError, ErrorKind, RegistryError, Step};
use crate::reference::{Registry, Repository};

/// Large enough that a big blob takes few requests: each PATCH costs a registry such as
/// distribution a round trip and a save of its resumable hash (a 326 MB blob in 3 MiB
/// chunks took 5.2 s to upload, against 2.5-3 s in one request).
pub const DEFAULT_CHUNK_SIZE: usize = 32 * 1024 * 1024;

/// GHCR refuses requests near 4 MiB (416) and some proxies cap bodies lower still (413):
/// a session refused so is started again in chunks of this size, well under that.
pub const SMALL_CHUNK_SIZE: usize = 3 * 1024 * 1024;

/// An error body is read only for its message; more than this is not worth holding.
const ERROR_BODY_LIMIT: u64 = 16 * 1024;

/// A token endpoint's answer is a small JSON object.
const TOKEN_BODY_LIMIT: u64 = 64 * 1024;

/// Redirects are followed only by reads: registries send blob downloads to storage
/// (S3, a CDN), but a redirected upload would lose its body.
const READ_REDIRECT_LIMIT: u32 = 5;

/// Which registries may be spoken to in plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlainHttp {
    /// Loopback registries (127.0.0.0/8, ::1, localhost) in plain HTTP, others in HTTPS.
    #[default]
    Loopback,
    /// HTTPS everywhere, loopback included (a test registry with its own CA).
    Never,
    /// Plain HTTP everywhere: the explicit `--insecure-http` choice for a registry on a
    /// network the operator trusts. Credentials then travel in the clear.
    Insecure,
}

/// How a [`crate::Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// For resolving the host and opening the connection, TLS handshake included.
    pub connect_timeout: Duration,
    /// For each request's answer (its status and headers), and for every read or write
    /// of a body: a registry that stalls this long fails the request, while a large blob
    /// that keeps flowing is not cut off.
    pub request_timeout: Duration,
    /// Bytes per PATCH of a chunked upload.
    pub chunk_size: usize,
    /// PEM certificates trusted besides the system's (`--registry-ca FILE`).
    pub extra_ca_file: Option<PathBuf>,
    pub plain_http: PlainHttp,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            chunk_size: DEFAULT_CHUNK_SIZE,
            extra_ca_file: None,
            plain_http: PlainHttp::default(),
        }
    }
}

/// One request, as the API modules describe it.
pub(crate) struct Exchange<'a> {
    pub step: Step,
    pub method: Method,
    pub url: String,
    pub repository: &'a Repository,
    pub access: Access,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<&'a [u8]>,
}

pub(crate) struct Transport {
    /// For `http://` URLs: no trust roots, so none are loaded.
    plain_agent: Agent,
    /// For `https://` URLs, made at the first one: reading the system's trust store takes
    /// longer (about 9 ms) than a cache lookup on a loopback registry.
    tls_agent: OnceLock<Result<Agent, String>>,
    /// The extra CA file's certificates, read (and checked) up front.
    extra_roots: Vec<Certificate<'static>>,
    pub(crate) config: ClientConfig,
    credentials: Credentials,
    authorizations: AuthorizationCache,
}

impl Transport {
    pub(crate) fn new(config: ClientConfig, credentials: Credentials) -> Result<Self, ClientError> {
        let extra_roots = extra_roots(config.extra_ca_file.as_deref())?;
        Ok(Transport {
            plain_agent: agent(&config, &[]),
            tls_agent: OnceLock::new(),
            extra_roots,
            config,
            credentials,
            authorizations: AuthorizationCache::default(),
        })
    }

    /// The agent for `url`: TLS, with the system's roots and the extra CA file, for
    /// `https://`.
    fn agent_for(&self, url: &str) -> Result<&Agent, ErrorKind> {
        if url.starts_with("http://") {
            return Ok(&self.plain_agent);
        }
        self.tls_agent
            .get_or_init(|| {
                let mut roots = system_roots()?;
                roots.extend(self.extra_roots.iter().cloned());
                Ok(agent(&self.config, &roots))
            })
            .as_ref()
            .map_err(|reason| ErrorKind::NoTrustRoots {
                reason: reason.clone(),
            })
    }

    /// `scheme://host[:port]/v2/`, the root of the registry's API.
    pub(crate) fn api_root(&self, registry: &Registry) -> String {
        let plain = match self.config.plain_http {
            PlainHttp::Loopback => registry.is_loopback(),
            PlainHttp::Never => false,
            PlainHttp::Insecure => true,
        };
        let scheme = if plain { "http" } else { "https" };
        format!("{scheme}://{}/v2/", registry.authority())
    }

    /// `scheme://host/v2/<name>/`, to which the API modules append their paths.
    pub(crate) fn repository_url(&self, repository: &Repository) -> String {
        format!(
            "{}{}/",
            self.api_root(repository.registry()),
            repository.name()
        )
    }

    /// Sends the request with whatever authorization answered this kind of request
    /// before; on a 401, answers the challenge and sends it once more. Any other status
    /// is the caller's to judge.
    pub(crate) fn send(&self, exchange: &Exchange<'_>) -> Result<Response<Body>, RegistryError> {
        let cached = self
            .authorizations
            .get(exchange.repository, exchange.access);
        let response = self.send_once(exchange, cached.as_ref())?;
        if response.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenges: Vec<String> = response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        drop(response);
        let (authorization, lifetime) = self.answer_challenges(exchange, &challenges)?;
        let response = self.send_once(exchange, Some(&authorization))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.credentials_error(exchange, status));
        }
        self.authorizations.insert(
            exchange.repository,
            exchange.access,
            authorization,
            lifetime,
        );
        Ok(response)
    }

    fn send_once(
        &self,
        exchange: &Exchange<'_>,
        authorization: Option<&Secret>,
    ) -> Result<Response<Body>, RegistryError> {
        let fail = |kind| RegistryError::new(exchange.step, &exchange.url, kind);
        let mut builder = http::Request::builder()
            .method(exchange.method.clone())
            .uri(&exchange.url);
        for (name, value) in &exchange.headers {
            builder = builder.header(*name, value);
        }
        // An upload session's Location may point at another host: the registry's
        // credentials go to the registry only.
        if let Some(authorization) = authorization {
            if same_authority(&exchange.url, exchange.repository.registry()) {
                builder = builder.header(http::header::AUTHORIZATION, authorization.expose());
            }
        }
        let is_read = exchange.method == Method::GET || exchange.method == Method::HEAD;
        let redirects = if is_read { READ_REDIRECT_LIMIT } else { 0 };
        let result = match exchange.body {
            Some(body) => {
                let request = builder
                    .body(body)
                    .map_err(|error| fail(ErrorKind::InvalidResponse(error.to_string())))?;
                let agent = self.agent_for(&exchange.url).map_err(&fail)?;
                let request = agent
                    .configure_request(request)
                    .max_redirects(redirects)
                    .build();
                agent.run(request)
            }
            None => {
                let request = builder
                    .body(())
                    .map_err(|error| fail(ErrorKind::InvalidResponse(error.to_string())))?;
                let agent = self.agent_for(&exchange.url).map_err(&fail)?;
                let request = agent
                    .configure_request(request)
                    .max_redirects(redirects)
                    .build();
                agent.run(request)
            }
        };
        result.map_err(|error| fail(classify_transport_error(error)))
    }

    /// The first challenge this client can answer, answered: Basic with the configured
    /// credential, Bearer with a token from the realm (fetched with the credential if
    /// there is one, anonymously otherwise).
    fn answer_challenges(
        &self,
        exchange: &Exchange<'_>,
        challenges: &[String],
    ) -> Result<(Secret, Option<Duration>), RegistryError> {
        let found = self.credentials.lookup(exchange.repository);
        let parsed = challenges.iter().find_map(|header| parse_challenge(header));
        match parsed {
            Some(Challenge::Basic) => match found {
                Some(found) => Ok((found.credential.authorization(), None)),
                None => Err(self.credentials_error(exchange, 401)),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let (token, lifetime) =
                    self.fetch_token(exchange, &realm, service.as_deref(), scope.as_deref())?;
                Ok((token, Some(lifetime)))
            }
            None => Err(RegistryError::new(
                exchange.step,
                &exchange.url,
                ErrorKind::UnsupportedChallenge {
                    challenge: challenges.join(", "),
                },
            )),
        }
    }

    fn fetch_token(
        &self,
        exchange: &Exchange<'_>,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<(Secret, Duration), RegistryError> {
        let fail = |kind| RegistryError::new(Step::GetToken, realm, kind);
        let realm_is_plain = realm.starts_with("http://");
        let realm_is_trusted = realm.starts_with("https://")
            || (realm_is_plain
                && (self.config.plain_http == PlainHttp::Insecure
                    || exchange.repository.registry().is_loopback()));
        if !realm_is_trusted {
            return Err(fail(ErrorKind::InsecureTokenRealm {
                realm: realm.to_owned(),
            }));
        }
        let mut url = realm.to_owned();
        if let Some(service) = service {
            url = with_query(&url, "service", service);
        }
        // A request that needs several scopes (a cross-repository mount) gets them
        // space-separated in one challenge; the token endpoint wants one parameter each.
        for scope in scope.into_iter().flat_map(str::split_whitespace) {
            url = with_query(&url, "scope", scope);
        }
        let found = self.credentials.lookup(exchange.repository);
        let mut request = self
            .agent_for(&url)
            .map_err(fail)?
            .get(&url)
            .header("Accept", "application/json");
        if let Some(found) = &found {
            request = request.header(
                http::header::AUTHORIZATION,
                found.credential.authorization().expose(),
            );
        }
        let mut response = request
            .call()
            .map_err(|error| fail(classify_transport_error(error)))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RegistryError::new(
                Step::GetToken,
                realm,
                credentials_kind(exchange.repository, found.map(|found| found.source), status),
            ));
        }
        if status != 200 {
            return Err(fail(status_kind(&mut response, status)));
        }
        let body = read_small_body(&mut response, TOKEN_BODY_LIMIT)
            .map_err(|kind| RegistryError::new(Step::GetToken, realm, kind))?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_authorization)
            .ok_or_else(|| {
                fail(ErrorKind::InvalidResponse(
                    "the token endpoint's answer has no token".into(),
                ))
            })
    }

    fn credentials_error(&self, exchange: &Exchange<'_>, status: u16) -> RegistryError {
        let source = self
            .credentials
            .lookup(exchange.repository)
            .map(|found| found.source);
        RegistryError::new(
            exchange.step,
            &exchange.url,
            credentials_kind(exchange.repository, source, status),
        )
    }

    /// Turns any status but the expected ones into an error carrying the registry's own
    /// message.
    pub(crate) fn expect_status(
        &self,
        exchange: &Exchange<'_>,
        mut response: Response<Body>,
        expected: &[u16],
    ) -> Result<Response<Body>, RegistryError> {
        let status = response.status().as_u16();
        if expected.contains(&status) {
            return Ok(response);
        }
        Err(RegistryError::new(
            exchange.step,
            &exchange.url,
            status_kind(&mut response, status),
        ))
    }
}

fn credentials_kind(repository: &Repository, source: Option<String>, status: u16) -> ErrorKind {
    let registry = repository.registry().authority().to_owned();
    match source {
        Some(source_file) => ErrorKind::CredentialsRefused {
            registry,
            status,
            source_file,
        },
        None => ErrorKind::CredentialsRequired { registry },
    }
}

fn same_authority(url: &str, registry: &Registry) -> bool {
    url.parse::<http::Uri>().is_ok_and(|uri| {
        uri.authority().is_some_and(|authority| {
            authority
                .as_str()
                .eq_ignore_ascii_case(registry.authority())
        })
    })
}

/// Connection failures and timeouts are an outage; a TLS failure (rustls reports an
/// untrusted certificate as InvalidData) or a protocol error is not: the registry
/// answered, and a retry would fail the same way.
fn classify_transport_error(error: ureq::Error) -> ErrorKind {
    match &error {
        ureq::Error::Timeout(_) => ErrorKind::TimedOut(error),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => ErrorKind::Unreachable(error),
        ureq::Error::Io(io) => match io.kind() {
            IoErrorKind::TimedOut | IoErrorKind::WouldBlock => ErrorKind::TimedOut(error),
            IoErrorKind::ConnectionRefused
            | IoErrorKind::ConnectionReset
            | IoErrorKind::ConnectionAborted
            | IoErrorKind::NotConnected
            | IoErrorKind::BrokenPipe
            | IoErrorKind::UnexpectedEof
            | IoErrorKind::AddrNotAvailable
            | IoErrorKind::NetworkUnreachable
            | IoErrorKind::HostUnreachable
            | IoErrorKind::NetworkDown => ErrorKind::Unreachable(error),
            _ => ErrorKind::Transport(error),
        },
        _ => ErrorKind::Transport(error),
    }
}

/// A status error with the registry's message, e.g. `404 Not Found: MANIFEST_UNKNOWN
/// manifest unknown`.
fn status_kind(response: &mut Response<Body>, status: u16) -> ErrorKind {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    let message = read_small_body(response, ERROR_BODY_LIMIT)
        .ok()
        .and_then(|body| error_message(&body))
        .map(|message| format!(": {message}"))
        .unwrap_or_default();
    ErrorKind::Status {
        status,
        detail: format!("{reason}{message}"),
    }
}

/// The distribution spec's `{"errors": [{"code", "message"}]}`. oci-spec's
/// `ErrorResponse` would refuse a code outside its closed list, and an error body is
/// no place to fail twice.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn error_message(body: &[u8]) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let messages: Vec<String> = parsed
        .errors
        .iter()
        .map(|entry| {
            format!("{} {}", entry.code, entry.message)
                .trim()
                .to_owned()
        })
        .filter(|message| !message.is_empty())
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

/// Reads a body that must fit in `limit` bytes.
pub(crate) fn read_small_body(
    response: &mut Response<Body>,
    limit: u64,
) -> Result<Vec<u8>, ErrorKind> {
    let mut body = Vec::new();
    let mut reader = response.body_mut().as_reader().take(limit + 1);
    reader
        .read_to_end(&mut body)
        .map_err(|source| ErrorKind::Interrupted {
            received: body.len() as u64,
            source,
        })?;
    if body.len() as u64 > limit {
        return Err(ErrorKind::InvalidResponse(format!(
            "body larger than {limit} bytes"
        )));
    }
    Ok(body)
}

pub(crate) fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// The `Location` of an upload session, as an absolute URL.
pub(crate) fn location(
    exchange: &Exchange<'_>,
    response: &Response<Body>,
) -> Result<String, RegistryError> {
    let location = header(response, "location").ok_or_else(|| {
        RegistryError::new(
            exchange.step,
            &exchange.url,
            ErrorKind::InvalidResponse(format!(
                "status {} without a Location header",
                response.status().as_u16()
            )),
        )
    })?;
    Ok(resolve_url(&exchange.url, location))
}

/// Resolves a Location or Link target: absolute, scheme-relative (`//host/p`),
/// absolute-path (`/v2/...`) or relative to the request's directory.
pub(crate) fn resolve_url(base: &str, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(scheme_relative) = target.strip_prefix("//") {
        return format!("{scheme}://{scheme_relative}");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    if target.starts_with('/') {
        return format!("{origin}{target}");
    }
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let directory = path.rfind('/').map_or("/", |slash| &path[..=slash]);
    format!("{origin}{directory}{target}")
}

/// The `rel="next"` target of a `Link` header (tag lists and referrers are paginated).
pub(crate) fn next_link(response: &Response<Body>, base: &str) -> Option<String> {
    response
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, parameters) = link.trim().split_once(';')?;
            let is_next = parameters.split(';').any(|parameter| {
                let parameter = parameter.trim().replace(' ', "");
                parameter == "rel=\"next\"" || parameter == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| resolve_url(base, target))
        })
}

/// Appends `key=value`, percent-encoding the value (`+` in a media type would read as a
/// space).
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{url}{separator}{key}={encoded}")
}

/// An agent with the client's timeouts that trusts `roots` for TLS.
fn agent(config: &ClientConfig, roots: &[Certificate<'static>]) -> Agent {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(roots))
        .build();
    Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .max_redirects(0)
        .user_agent(concat!("hermetic-registry/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(Some(config.connect_timeout))
        .timeout_connect(Some(config.connect_timeout))
        .timeout_send_request(Some(config.request_timeout))
        .timeout_recv_response(Some(config.request_timeout))
        .timeout_per_read(Some(config.request_timeout))
        .timeout_per_write(Some(config.request_timeout))
        .build()
        .new_agent()
}

/// The system's trust store; why it is empty, when it is.
fn system_roots() -> Result<Vec<Certificate<'static>>, String> {
    let native = rustls_native_certs::load_native_certs();
    let roots: Vec<Certificate<'static>> = native
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if roots.is_empty() && !native.errors.is_empty() {
        return Err(native
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "));
    }
    Ok(roots)
}

/// The certificates of the extra CA file, which must hold at least one.
fn extra_roots(
    extra_ca_file: Option<&std::path::Path>,
) -> Result<Vec<Certificate<'static>>, ClientError> {
    let Some(path) = extra_ca_file else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|source| ClientError::ReadCaFile {
        path: path.to_owned(),
        source,
    })?;
    let mut roots = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => roots.push(certificate.to_owned()),
            Ok(_) => {}
            Err(source) => {
                return Err(ClientError::ParseCaFile {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    if roots.is_empty() {
        return Err(ClientError::EmptyCaFile {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_in_every_form() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/?mount=x";
        for (target, expected) in [
            (
                "https://other.example/up/1?_state=s",
                "https://other.example/up/1?_state=s",
            ),
            ("//cdn.example/x", "http://cdn.example/x"),
            (
                "/v2/a/blobs/uploads/1?_state=s",
                "http://127.0.0.1:5000/v2/a/blobs/uploads/1?_state=s",
            ),
            (
                "1?_state=s",
                "http://127.0.0.1:5000/v2/a/blobs/uploads/1?_state=s",
            ),
        ] {
            assert_eq!(resolve_url(base, target), expected, "{target}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            with_query(
                "http://r/v2/a/referrers/sha256:00?x=1",
                "artifactType",
                "application/vnd.x+json"
            ),
            "http://r/v2/a/referrers/sha256:00?x=1&artifactType=application/vnd.x%2Bjson"
        );
        assert_eq!(
            with_query("http://r/t", "scope", "repository:a b"),
            "http://r/t?scope=repository:a%20b"
        );
    }

    #[test]
    fn next_link_among_several() {
        let response = http::Response::builder()
            .header(
                "link",
                r#"</v2/a/tags/list?n=2&last=b>; rel="next", </v2/a/tags/list?n=2>; rel="first""#,
            )
            .body(Body::builder().data(""))
            .unwrap();
        assert_eq!(
            next_link(&response, "http://r:1/v2/a/tags/list?n=2").as_deref(),
            Some("http://r:1/v2/a/tags/list?n=2&last=b")
        );
    }

    #[test]
    fn registry_error_bodies_become_messages() {
        assert_eq!(
            error_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#)
                .as_deref(),
            Some("MANIFEST_UNKNOWN manifest unknown")
        );
        assert_eq!(error_message(b"404 page not found"), None);
    }

    #[test]
    fn plain_http_only_where_allowed() {
        let transport = |plain_http| {
            Transport::new(
                ClientConfig {
                    plain_http,
                    ..ClientConfig::default()
                },
                Credentials::none(),
            )
            .unwrap()
        };
        let loopback = Repository::new("127.0.0.1:5000", "a").unwrap();
        let remote = Repository::new("registry.example", "a").unwrap();
        let default = transport(PlainHttp::Loopback);
        assert_eq!(
            default.repository_url(&loopback),
            "http://127.0.0.1:5000/v2/a/"
        );
        assert_eq!(
            default.repository_url(&remote),
            "https://registry.example/v2/a/"
        );
        assert!(transport(PlainHttp::Never)
            .repository_url(&loopback)
            .starts_with("https://"));
        assert!(transport(PlainHttp::Insecure)
            .repository_url(&remote)
            .starts_with("http://"));
    }
}
