use hermetic_registry::{
    sha256_digest, Descriptor, ErrorKind, ManifestReference, SubjectIndexing, Tag,
    DEFAULT_MANIFEST_LIMIT, OCI_INDEX, OCI_MANIFEST,
};
use serde_json::json;

use crate::support::fake::{FakeResponse, FakeServer};
use crate::support::server::RegistryServer;
use crate::support::{blob_bytes, chain, client, push};

pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

/// An image manifest with one layer, its blobs pushed.
pub fn image_manifest(
    client: &hermetic_registry::Client,
    repository: &hermetic_registry::Repository,
    seed: u8,
) -> Vec<u8> {
    let config = push(
        client,
        repository,
        "application/vnd.oci.image.config.v1+json",
        format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).as_bytes(),
    );
    let layer = push(
        client,
        repository,
        "application/vnd.oci.image.layer.v1.tar",
        &blob_bytes(2048, seed),
    );
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    }))
    .unwrap()
}

/// An OCI 1.1 artifact: `artifactType`, the empty config, one layer, a subject.
pub fn artifact_manifest(
    client: &hermetic_registry::Client,
    repository: &hermetic_registry::Repository,
    artifact_type: &str,
    payload: &[u8],
    subject: &Descriptor,
) -> Vec<u8> {
    let empty = push(client, repository, EMPTY_CONFIG, b"{}");
    let layer = push(client, repository, artifact_type, payload);
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty,
        "layers": [layer],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }))
    .unwrap()
}

fn tag(name: &str) -> ManifestReference {
    ManifestReference::Tag(Tag::new(name).unwrap())
}

#[test]
fn manifest_by_tag_and_by_digest_then_deleted() {
    let registry = RegistryServer::start();
    let repository = registry.repository("tools/gcc");
    let client = client();
    let manifest = image_manifest(&client, &repository, 1);

    let pushed = client
        .put_manifest(&repository, &tag("12.2"), OCI_MANIFEST, &manifest)
        .unwrap();

    assert_eq!(pushed.digest, sha256_digest(&manifest));
    assert_eq!(pushed.subject, SubjectIndexing::NoSubject);
    let by_tag = client
        .get_manifest(
            &repository,
            &tag("12.2"),
            &[OCI_MANIFEST, OCI_INDEX],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap();
    assert_eq!(by_tag.bytes, manifest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.digest, pushed.digest);
    let by_digest = client
        .get_manifest(
            &repository,
            &ManifestReference::Digest(pushed.digest.clone()),
            &[OCI_MANIFEST],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap();
    assert_eq!(by_digest.bytes, manifest);

    client.delete_manifest(&repository, &pushed.digest).unwrap();
    let gone = client
        .get_manifest(
            &repository,
            &tag("12.2"),
            &[OCI_MANIFEST],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap_err();
    assert!(gone.is_not_found(), "{}", chain(&gone));
    assert!(!gone.is_unavailable());
    let message = chain(&gone);
    assert!(
        message.contains("failed to fetch manifest at http://"),
        "{message}"
    );
    assert!(message.contains("404"), "{message}");
}

#[test]
fn manifest_pushed_by_digest_must_hash_to_it() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let manifest = image_manifest(&client, &repository, 2);
    let digest = sha256_digest(&manifest);

    let pushed = client
        .put_manifest(
            &repository,
            &ManifestReference::Digest(digest.clone()),
            OCI_MANIFEST,
            &manifest,
        )
        .unwrap();
    assert_eq!(pushed.digest, digest);

    let other = sha256_digest(b"something else");
    let error = client
        .put_manifest(
            &repository,
            &ManifestReference::Digest(other),
            OCI_MANIFEST,
            &manifest,
        )
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::DigestMismatch { .. }),
        "{}",
        chain(&error)
    );
}

#[test]
fn manifest_over_the_size_cap_is_refused() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let manifest = image_manifest(&client, &repository, 3);
    client
        .put_manifest(&repository, &tag("big"), OCI_MANIFEST, &manifest)
        .unwrap();

    let error = client
        .get_manifest(&repository, &tag("big"), &[OCI_MANIFEST], 100)
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::ManifestTooLarge { limit: 100 }),
        "{}",
        chain(&error)
    );
}

#[test]
fn manifest_of_an_unaccepted_media_type_is_refused() {
    // distribution answers 404 itself; a registry that ignores Accept must not slip
    // another kind of document through.
    let fake = FakeServer::start(|_| {
        FakeResponse::new(200)
            .header(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
            )
            .body(br#"{"schemaVersion":2}"#.to_vec())
    });

    let error = client()
        .get_manifest(
            &fake.repository("cache"),
            &tag("v1"),
            &[OCI_INDEX],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::UnexpectedMediaType { actual, .. }
            if actual == "application/vnd.docker.distribution.manifest.v2+json"),
        "{}",
        chain(&error)
    );
}

#[test]
fn manifest_fetched_by_digest_is_checked_against_it() {
    let asked = sha256_digest(b"the manifest that was asked for");
    let fake = FakeServer::start(|_| {
        FakeResponse::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(br#"{"schemaVersion":2}"#.to_vec())
    });
    let error = client()
        .get_manifest(
            &fake.repository("cache"),
            &ManifestReference::Digest(asked.clone()),
            &[OCI_MANIFEST],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::DigestMismatch { expected, .. } if *expected == asked),
        "{}",
        chain(&error)
    );
}

#[test]
fn artifact_manifest_with_subject_and_artifact_type() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let image = image_manifest(&client, &repository, 5);
    let subject = client
        .put_manifest(&repository, &tag("build"), OCI_MANIFEST, &image)
        .unwrap();
    let subject_descriptor = Descriptor::new(OCI_MANIFEST.into(), subject.size, subject.digest);
    let signature_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let artifact = artifact_manifest(
        &client,
        &repository,
        signature_type,
        br#"{"bundle":1}"#,
        &subject_descriptor,
    );

    let pushed = client
        .put_manifest(
            &repository,
            &ManifestReference::Digest(sha256_digest(&artifact)),
            OCI_MANIFEST,
            &artifact,
        )
        .unwrap();

    // distribution 2.8.2 stores the artifact but has no referrers API (no OCI-Subject).
    assert_eq!(pushed.subject, SubjectIndexing::ByReferrersTag);
    let fetched = client
        .get_manifest(
            &repository,
            &ManifestReference::Digest(pushed.digest),
            &[OCI_MANIFEST],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap();
    let fetched: oci_fields::Artifact = serde_json::from_slice(&fetched.bytes).unwrap();
    assert_eq!(fetched.artifact_type, signature_type);
    assert_eq!(fetched.config.media_type, EMPTY_CONFIG);
    assert_eq!(fetched.subject.digest(), subject_descriptor.digest());
}

mod oci_fields {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Artifact {
        pub artifact_type: String,
        pub config: Config,
        pub subject: hermetic_registry::Descriptor,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Config {
        pub media_type: String,
    }
}

#[test]
fn tags_are_listed() {
    let registry = RegistryServer::start();
    let repository = registry.repository("tools/make");
    let client = client();
    let manifest = image_manifest(&client, &repository, 6);
    for name in ["4.3", "latest", "debian-12"] {
        client
            .put_manifest(&repository, &tag(name), OCI_MANIFEST, &manifest)
            .unwrap();
    }
    let mut tags = client.list_tags(&repository).unwrap();
    tags.sort();
    assert_eq!(tags, ["4.3", "debian-12", "latest"]);
}

#[test]
fn tag_listing_follows_link_pagination() {
    let fake = FakeServer::start(|request| {
        let page = |tags: &str| {
            FakeResponse::new(200)
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"name":"cache","tags":{tags}}}"#))
        };
        if request.target.contains("last=b") {
            page(r#"["c"]"#)
        } else {
            page(r#"["a","b"]"#).header("Link", r#"</v2/cache/tags/list?n=2&last=b>; rel="next""#)
        }
    });
    let tags = client().list_tags(&fake.repository("cache")).unwrap();
    assert_eq!(tags, ["a", "b", "c"]);
    assert_eq!(fake.requests().len(), 2);
}
