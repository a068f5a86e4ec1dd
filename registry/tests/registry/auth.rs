use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use hermetic_registry::{
    sha256_digest, BasicCredential, Credentials, ErrorKind, ManifestReference, Secret, Tag,
    DEFAULT_MANIFEST_LIMIT, OCI_MANIFEST,
};

use crate::manifests::image_manifest;
use crate::support::fake::{FakeResponse, FakeServer};
use crate::support::server::RegistryServer;
use crate::support::{blob_bytes, chain, client, client_with, push};

/// A docker `config.json` holding `user:password` for the registry, as `docker login`
/// writes it.
fn docker_config(registry: &RegistryServer, user: &str, password: &str) -> Credentials {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = registry
        .temp_dir()
        .join(format!("docker-config-{password}.json"));
    std::fs::write(
        &path,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.authority()
        ),
    )
    .unwrap();
    Credentials::from_auth_files(&[path]).unwrap()
}

#[test]
fn htpasswd_registry_with_credentials_from_a_docker_config() {
    let registry = RegistryServer::start_with_htpasswd("ci", "right-password");
    let repository = registry.repository("ci/cache");
    let client = client_with(docker_config(&registry, "ci", "right-password"), 4096);

    let bytes = blob_bytes(10_000, 1);
    let layer = push(&client, &repository, "application/octet-stream", &bytes);
    let manifest = image_manifest(&client, &repository, 2);
    client
        .put_manifest(
            &repository,
            &ManifestReference::Tag(Tag::new("v1").unwrap()),
            OCI_MANIFEST,
            &manifest,
        )
        .unwrap();
    let mut fetched = Vec::new();
    client
        .fetch_blob(&repository, &layer, &mut fetched)
        .unwrap();
    assert_eq!(fetched, bytes);
    assert_eq!(client.list_tags(&repository).unwrap(), ["v1"]);
}

#[test]
fn htpasswd_registry_refuses_wrong_credentials_clearly() {
    let registry = RegistryServer::start_with_htpasswd("ci", "right-password");
    let repository = registry.repository("ci/cache");
    let client = client_with(docker_config(&registry, "ci", "wrong-password"), 4096);

    let error = client
        .blob_exists(&repository, &sha256_digest(b"x"))
        .unwrap_err();

    assert!(
        matches!(
            error.kind(),
            ErrorKind::CredentialsRefused { status: 401, .. }
        ),
        "{}",
        chain(&error)
    );
    assert!(!error.is_unavailable());
    let message = chain(&error);
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(
        message.contains("docker-config-wrong-password.json"),
        "{message}"
    );
    assert!(!message.contains("wrong-password\""), "{message}");
}

#[test]
fn htpasswd_registry_without_credentials_says_none_are_configured() {
    let registry = RegistryServer::start_with_htpasswd("ci", "right-password");
    let error = client()
        .list_tags(&registry.repository("ci/cache"))
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::CredentialsRequired { .. }),
        "{}",
        chain(&error)
    );
    assert!(
        chain(&error).contains("none are configured"),
        "{}",
        chain(&error)
    );
}

#[test]
fn bearer_token_is_fetched_with_the_credential_and_reused() {
    let expected_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("robot:token-password")
    );
    let token_fetches = AtomicUsize::new(0);
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let authority = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let realm_authority = std::sync::Arc::clone(&authority);
    let fake = FakeServer::start(move |request| {
        if request.path() == "/token" {
            token_fetches.fetch_add(1, Ordering::SeqCst);
            let scoped = request.target.contains("service=fake-registry")
                && request.target.contains("scope=repository:team/app:pull");
            if request.header("authorization") == Some(expected_basic.as_str()) && scoped {
                return FakeResponse::new(200).body(r#"{"access_token":"t0k3n","expires_in":300}"#);
            }
            return FakeResponse::new(401);
        }
        if request.header("authorization") == Some("Bearer t0k3n") {
            return FakeResponse::new(200)
                .header("Content-Type", OCI_MANIFEST)
                .body(manifest.to_vec());
        }
        let realm = format!("http://{}/token", realm_authority.get().unwrap());
        FakeResponse::new(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="{realm}",service="fake-registry",scope="repository:team/app:pull""#
            ),
        )
    });
    authority.set(fake.authority()).unwrap();
    let credentials = Credentials::for_registry(
        &fake.authority(),
        BasicCredential::new("robot", Secret::new("token-password")),
    );
    let client = client_with(credentials, 4096);
    let repository = fake.repository("team/app");
    let reference = ManifestReference::Tag(Tag::new("v1").unwrap());

    for _ in 0..3 {
        let fetched = client
            .get_manifest(
                &repository,
                &reference,
                &[OCI_MANIFEST],
                DEFAULT_MANIFEST_LIMIT,
            )
            .unwrap();
        assert_eq!(fetched.bytes, manifest);
    }

    let requests = fake.requests();
    let token_requests = requests
        .iter()
        .filter(|r| r.starts_with("GET /token"))
        .count();
    assert_eq!(token_requests, 1, "{requests:#?}");
    // One 401, one token, then three answered requests.
    assert_eq!(requests.len(), 5, "{requests:#?}");
}
