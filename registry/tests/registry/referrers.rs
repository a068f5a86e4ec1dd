use hermetic_registry::{
    sha256_digest, Descriptor, ManifestReference, MediaType, SubjectIndexing, Tag,
    DEFAULT_MANIFEST_LIMIT, OCI_INDEX, OCI_MANIFEST,
};
use serde_json::json;

use crate::manifests::{artifact_manifest, image_manifest};
use crate::support::fake::{FakeResponse, FakeServer};
use crate::support::server::RegistryServer;
use crate::support::{chain, client};

const SIGNATURE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const PROVENANCE: &str = "application/vnd.in-toto+json";

#[test]
fn two_referrers_of_one_subject_through_the_tag_fallback() {
    let registry = RegistryServer::start();
    let repository = registry.repository("ci/cache");
    let client = client();
    let image = image_manifest(&client, &repository, 1);
    let subject = client
        .put_manifest(
            &repository,
            &ManifestReference::Tag(Tag::new("entry").unwrap()),
            OCI_MANIFEST,
            &image,
        )
        .unwrap();
    let subject_descriptor =
        Descriptor::new(OCI_MANIFEST.into(), subject.size, subject.digest.clone());
    let mut pushed = Vec::new();
    for (artifact_type, payload) in [(SIGNATURE, "signature"), (PROVENANCE, "provenance")] {
        let artifact = artifact_manifest(
            &client,
            &repository,
            artifact_type,
            payload.as_bytes(),
            &subject_descriptor,
        );
        let result = client
            .put_manifest(
                &repository,
                &ManifestReference::Digest(sha256_digest(&artifact)),
                OCI_MANIFEST,
                &artifact,
            )
            .unwrap();
        assert_eq!(result.subject, SubjectIndexing::ByReferrersTag);
        pushed.push(result.digest);
    }

    let all = client
        .referrers(&repository, &subject.digest, None)
        .unwrap();
    let listed: Vec<_> = all.iter().map(|d| d.digest().clone()).collect();
    assert_eq!(listed, pushed);
    let signature = &all[0];
    assert_eq!(signature.artifact_type(), &Some(MediaType::from(SIGNATURE)));
    assert_eq!(signature.media_type(), &MediaType::ImageManifest);
    assert!(signature
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key("org.opencontainers.image.created")));

    let provenance = client
        .referrers(&repository, &subject.digest, Some(PROVENANCE))
        .unwrap();
    assert_eq!(provenance.len(), 1);
    assert_eq!(provenance[0].digest(), &pushed[1]);

    let referrers_tag = format!("sha256-{}", subject.digest.digest());
    assert!(client
        .list_tags(&repository)
        .unwrap()
        .contains(&referrers_tag));
    // The registry was asked for its referrers API first, and said 404.
    assert!(registry.requests("GET", "ci/cache", "referrers/", 1) >= 1);
}

#[test]
fn adding_a_listed_referrer_again_changes_nothing() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    // The subject need not exist; the referrer must (distribution checks what an
    // index lists).
    let subject = sha256_digest(b"a subject that need not exist");
    let manifest = image_manifest(&client, &repository, 2);
    let pushed = client
        .put_manifest(
            &repository,
            &ManifestReference::Digest(sha256_digest(&manifest)),
            OCI_MANIFEST,
            &manifest,
        )
        .unwrap();
    let referrer = Descriptor::new(OCI_MANIFEST.into(), pushed.size, pushed.digest);

    client
        .add_referrer(&repository, &subject, &referrer)
        .unwrap();
    client
        .add_referrer(&repository, &subject, &referrer)
        .unwrap();

    let index = client
        .get_manifest(
            &repository,
            &ManifestReference::Tag(Tag::new(&format!("sha256-{}", subject.digest())).unwrap()),
            &[OCI_INDEX],
            DEFAULT_MANIFEST_LIMIT,
        )
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["mediaType"], OCI_INDEX);
}

#[test]
fn nothing_refers_to_an_unknown_subject() {
    let registry = RegistryServer::start();
    let unknown = sha256_digest(b"nothing points here");
    let referrers = client()
        .referrers(&registry.repository("cache"), &unknown, None)
        .unwrap();
    assert!(referrers.is_empty());
}

#[test]
fn a_registry_with_a_referrers_api_is_asked_directly() {
    let subject = sha256_digest(b"subject");
    let descriptor = |artifact_type: &str, seed: &[u8]| {
        json!({
            "mediaType": OCI_MANIFEST,
            "digest": sha256_digest(seed).to_string(),
            "size": 500,
            "artifactType": artifact_type,
        })
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(SIGNATURE, b"one"), descriptor(PROVENANCE, b"two")],
    }))
    .unwrap();
    let fake = FakeServer::start(move |request| {
        if request.path().contains("/referrers/") {
            // This registry ignores the filter and says so by omitting
            // OCI-Filters-Applied: the client filters.
            FakeResponse::new(200)
                .header("Content-Type", OCI_INDEX)
                .body(index.clone())
        } else {
            FakeResponse::new(500)
        }
    });

    let signatures = client()
        .referrers(&fake.repository("cache"), &subject, Some(SIGNATURE))
        .unwrap();

    assert_eq!(signatures.len(), 1);
    assert_eq!(signatures[0].digest(), &sha256_digest(b"one"));
    assert_eq!(
        fake.requests(),
        [format!(
            "GET /v2/cache/referrers/{subject}?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson"
        )]
    );
}

#[test]
fn a_referrers_answer_that_is_not_an_index_is_refused() {
    let fake = FakeServer::start(|_| FakeResponse::new(200).body("<html>login</html>"));
    let error = client()
        .referrers(&fake.repository("cache"), &sha256_digest(b"s"), None)
        .unwrap_err();
    assert!(
        chain(&error).contains("invalid answer"),
        "{}",
        chain(&error)
    );
}

#[test]
fn a_registry_that_answers_oci_subject_indexes_the_referrer_itself() {
    let subject = json!({
        "mediaType": OCI_MANIFEST,
        "digest": sha256_digest(b"subject").to_string(),
        "size": 100,
    });
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256_digest(b"{}").to_string(),
            "size": 2,
        },
        "layers": [],
        "subject": subject,
    }))
    .unwrap();
    let digest = sha256_digest(&artifact);
    let served_digest = digest.to_string();
    let fake = FakeServer::start(move |request| match request.method.as_str() {
        "PUT" => FakeResponse::new(201)
            .header("Docker-Content-Digest", &served_digest)
            .header("OCI-Subject", sha256_digest(b"subject").as_ref()),
        "HEAD" => FakeResponse::new(200).header("Docker-Content-Digest", &served_digest),
        _ => FakeResponse::new(500),
    });

    let pushed = client()
        .put_manifest(
            &fake.repository("cache"),
            &ManifestReference::Digest(digest.clone()),
            OCI_MANIFEST,
            &artifact,
        )
        .unwrap();

    assert_eq!(pushed.subject, SubjectIndexing::ByRegistry);
    assert_eq!(
        fake.requests(),
        [
            format!("PUT /v2/cache/manifests/{digest}"),
            format!("HEAD /v2/cache/manifests/{digest}"),
        ],
        "no referrers tag is written"
    );
}
