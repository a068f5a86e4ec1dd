//! Two runners share a cache through the registry: A builds and pushes, B (an empty local
//! cache, A's public key) restores without building, byte for byte, keeps the entry
//! locally, and then needs the registry no more.
use serde_json::Value;

use super::registry::{hex_of, referrers_tag, sha256, BUNDLE_TYPE, EMPTY_CONFIG, OCI_MANIFEST};
use super::{expected_manifest, repository, statement_of, Fleet, SCOPE};
use crate::support::assert_status;

#[test]
fn an_entry_pushed_by_one_runner_restores_on_another_without_building() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let a = &pushed.built;
    assert_eq!(a.cache()["status"], "miss", "{}", a.describe());
    assert_eq!(a.remote()["status"], "miss", "no tag yet\n{}", a.describe());
    assert_eq!(
        a.remote()["repository"],
        format!("{}/{}", fleet.registry.authority(), repository(SCOPE)),
        "{}",
        a.describe()
    );
    assert_eq!(
        a.remote()["manifest"],
        pushed.entry.digest,
        "{}",
        a.describe()
    );
    assert_eq!(a.cache()["signer"], fleet.keys.key_id());

    let b = fleet.b_build(&fleet.src).extract("tree").run();
    b.assert_exit(0);
    assert_eq!(b.cache()["status"], "hit", "{}", b.describe());
    assert_eq!(b.remote()["status"], "hit", "{}", b.describe());
    assert_eq!(
        b.remote()["manifest"],
        pushed.entry.digest,
        "{}",
        b.describe()
    );
    assert_eq!(
        b.remote()["signer"],
        fleet.keys.key_id(),
        "{}",
        b.describe()
    );
    assert!(
        b.remote()["push"].is_null(),
        "B pushes nothing\n{}",
        b.describe()
    );
    assert_eq!(b.runs(), 0, "nothing ran on a remote hit\n{}", b.describe());
    assert_eq!(b.report["verdict"], "reproducible");
    assert_eq!(b.cache()["key"], pushed.key.as_str());
    assert_eq!(b.digest(), a.digest(), "the same output digest as A");
    assert_eq!(
        std::fs::read(&b.artifact).unwrap(),
        pushed.archive,
        "the restored archive is A's, byte for byte"
    );
    assert_eq!(
        std::fs::read_to_string(b.extract.as_ref().unwrap().join("out/sub/copy")).unwrap(),
        "input\n"
    );

    // B's local store now holds the entry: A's archive and the registry's signature
    // bundle (with both subjects), which the local checks accept.
    let local = fleet.b.local_entry(&pushed.key);
    assert_eq!(
        std::fs::read(local.join("archive.tar.zst")).unwrap(),
        pushed.archive
    );
    assert_eq!(
        std::fs::read(local.join("entry.sigstore.json")).unwrap(),
        pushed.entry.bundle(),
        "the local copy keeps the bundle it was pulled with"
    );
    let trust = fleet.keys.public.to_str().unwrap();
    let verified = fleet.b.cache(&[
        "verify",
        "--cache-scope",
        SCOPE,
        "--trust-key",
        trust,
        &pushed.key,
    ]);
    assert_status(&verified, 0);

    // With the registry gone, B's next build is a local hit: the remote was not needed.
    let mut registry = fleet.registry;
    registry.stop();
    let again = fleet
        .b
        .build(&fleet.src)
        .remote(&super::remote_url(registry.authority()))
        .trust(&fleet.keys)
        .artifact("again.tar.zst")
        .run();
    again.assert_exit(0);
    assert_eq!(again.cache()["status"], "hit", "{}", again.describe());
    assert_eq!(again.remote()["status"], "skipped", "{}", again.describe());
    assert_eq!(again.runs(), 0);
    assert_eq!(std::fs::read(&again.artifact).unwrap(), pushed.archive);
}

/// What A pushed is the documented layout: the entry manifest's exact bytes under the
/// key's tag, the archive blob, the empty config, and the signature as a cosign-style
/// bundle referrer listed in the `sha256-<hex>` index, whose statement names both the
/// archive and the entry manifest.
#[test]
fn the_registry_holds_the_documented_layout() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let api = fleet.registry.api();
    let repository = fleet.repository();
    let entry = &pushed.entry;

    assert_eq!(
        String::from_utf8_lossy(&entry.manifest),
        String::from_utf8_lossy(&expected_manifest(&pushed.archive, &pushed.key, SCOPE)),
        "the entry manifest's bytes"
    );
    assert_eq!(
        api.blob(&repository, &entry.archive).unwrap(),
        pushed.archive,
        "the layer is the archive"
    );
    assert_eq!(
        api.blob(&repository, &sha256(EMPTY_CONFIG)).unwrap(),
        EMPTY_CONFIG
    );
    assert_eq!(
        api.tags(&repository),
        {
            let mut tags = vec![pushed.key.clone(), referrers_tag(&entry.digest)];
            tags.sort();
            tags
        },
        "the key's tag and the referrers index, nothing else"
    );

    let index = api.referrers_index(&repository, &entry.digest).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index:#}");
    assert_eq!(listed[0]["artifactType"], BUNDLE_TYPE, "{index:#}");
    let referrer = &entry.referrers[0].json;
    assert_eq!(referrer["artifactType"], BUNDLE_TYPE, "{referrer:#}");
    assert_eq!(referrer["mediaType"], OCI_MANIFEST);
    assert_eq!(
        referrer["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(referrer["config"]["digest"], sha256(EMPTY_CONFIG));
    let layers = referrer["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], BUNDLE_TYPE);
    assert_eq!(referrer["subject"]["digest"], entry.digest, "{referrer:#}");
    assert_eq!(referrer["subject"]["size"], entry.manifest.len());
    assert_eq!(referrer["subject"]["mediaType"], OCI_MANIFEST);
    assert_eq!(
        referrer["annotations"]["dev.sigstore.bundle.content"],
        "dsse-envelope"
    );
    assert_eq!(
        referrer["annotations"]["dev.sigstore.bundle.predicateType"],
        "urn:hermetic:cache-entry:v1"
    );

    let statement = statement_of(entry.bundle());
    assert_eq!(statement["predicateType"], "urn:hermetic:cache-entry:v1");
    let subjects = statement["subject"].as_array().unwrap();
    assert_eq!(subjects.len(), 2, "{statement:#}");
    let archive = subjects
        .iter()
        .find(|subject| subject["name"] == "archive.tar.zst")
        .expect("the archive subject");
    assert_eq!(archive["digest"]["sha256"], hex_of(&entry.archive));
    assert_eq!(
        archive["digest"]["blake3"],
        blake3::hash(&pushed.archive).to_hex().as_str()
    );
    let manifest = subjects
        .iter()
        .find(|subject| subject["name"] != "archive.tar.zst")
        .unwrap();
    assert_eq!(manifest["name"], repository, "REPO/SCOPE, without the host");
    assert_eq!(
        manifest["digest"],
        serde_json::json!({"sha256": hex_of(&entry.digest)}),
        "the entry manifest's digest, sha256 only"
    );
    let predicate = &statement["predicate"];
    assert_eq!(predicate["schema"], "hermetic.cache-entry/v1");
    assert_eq!(predicate["cacheKey"], pushed.key.as_str());
    assert_eq!(predicate["scope"], SCOPE);
    assert_eq!(predicate["verdict"], "reproducible");
    assert_eq!(predicate["archive"]["size"], pushed.archive.len());
    assert_eq!(
        predicate["builder"]["id"],
        format!("urn:hermetic:builder:key:{}", fleet.keys.key_id())
    );
}

/// A tag with no signature listed (a push in progress, or never signed) is a plain miss:
/// nothing is quarantined, the build runs.
#[test]
fn an_entry_with_no_signature_yet_is_a_miss() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let repository = fleet.repository();
    let index_tag = referrers_tag(&pushed.entry.digest);
    let index = fleet
        .registry
        .api()
        .manifest(&repository, &index_tag)
        .unwrap();
    let deleted = fleet.registry.api().call(
        "DELETE",
        &format!("/v2/{repository}/manifests/{}", sha256(&index)),
        &[],
        b"",
    );
    assert_eq!(deleted.status, 202, "{}", deleted.text());
    assert!(fleet
        .registry
        .api()
        .referrers_index(&repository, &pushed.entry.digest)
        .is_none());

    let b = fleet.b_build(&fleet.src).run();
    b.assert_exit(0);
    assert_eq!(b.cache()["status"], "miss", "{}", b.describe());
    assert_eq!(b.remote()["status"], "miss", "{}", b.describe());
    let reason = b.remote()["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unsigned"), "{}", b.describe());
    assert_eq!(b.runs(), 2, "the build ran");
    assert_eq!(b.digest(), pushed.built.digest());
    assert!(fleet.b.quarantined().is_empty(), "a miss is not a refusal");
    assert!(
        !fleet
            .b
            .events()
            .iter()
            .any(|event: &Value| event["event"] == "cache_quarantine"),
        "no quarantine event"
    );
}

/// Deterministic, incompressible bytes (xorshift), so that the archive is as large as
/// the file.
fn noise(length: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A registry behind a proxy that refuses request bodies over 4 MiB with 413 (as
/// registries behind proxies and GHCR do): the 10 MiB entry's first, single chunk is
/// refused, the upload starts again in chunks under the cap, and another runner restores
/// the entry through the same proxy.
#[test]
fn a_large_entry_moves_in_chunks_through_a_proxy_that_caps_requests() {
    use super::net::{Reply, Scripted};
    const CAP: usize = 4 << 20;
    let fleet = Fleet::new();
    let big = super::source("input\n");
    std::fs::write(big.join("big.bin"), noise(10 << 20)).unwrap();
    let proxy = Scripted::proxy(Some(fleet.registry.authority().to_owned()), |request| {
        if request.body.len() > CAP {
            Reply::status(413, r#"{"message":"request entity too large"}"#)
        } else {
            Reply::Forward
        }
    });
    let url = super::remote_url(&proxy.authority());
    let script = "mkdir -p out && cp big.bin out/big.bin";

    let pushed = fleet
        .a
        .build(&big)
        .script(script)
        .remote(&url)
        .publish(&fleet.keys)
        .run();
    pushed.assert_exit(0);
    assert_eq!(pushed.remote()["push"], "pushed", "{}", pushed.describe());
    let archive = std::fs::read(&pushed.artifact).unwrap();
    assert!(
        archive.len() > 2 * CAP,
        "an archive of {} bytes",
        archive.len()
    );
    let entry = fleet
        .registry
        .api()
        .entry(&fleet.repository(), &pushed.key())
        .unwrap();
    assert_eq!(
        fleet
            .registry
            .api()
            .blob(&fleet.repository(), &entry.archive)
            .unwrap(),
        archive
    );

    let restored = fleet
        .b
        .build(&big)
        .script(script)
        .remote(&url)
        .trust(&fleet.keys)
        .extract("tree")
        .run();
    restored.assert_exit(0);
    assert_eq!(
        restored.remote()["status"],
        "hit",
        "{}",
        restored.describe()
    );
    assert_eq!(restored.runs(), 0);
    assert_eq!(std::fs::read(&restored.artifact).unwrap(), archive);
    assert_eq!(
        std::fs::read(restored.extract.as_ref().unwrap().join("out/big.bin")).unwrap(),
        noise(10 << 20)
    );
}

/// The same entry (same bytes, so the same entry manifest) first pushed by a runner
/// whose key readers do not trust: a trusted runner's push finds it `present` and
/// attaches its own signature, so readers that trust it get a hit from then on.
#[test]
fn an_entry_present_without_a_trusted_signature_gains_ours() {
    let fleet = Fleet::new();
    let (c, c_keys) = (super::Runner::new(), super::Keys::generate("c"));
    let first = c
        .build(&fleet.src)
        .remote(&fleet.url())
        .publish(&c_keys)
        .run();
    first.assert_exit(0);
    assert_eq!(first.remote()["push"], "pushed", "{}", first.describe());

    let ours = fleet
        .a
        .build(&fleet.src)
        .remote(&fleet.url())
        .publish(&fleet.keys)
        .run();
    ours.assert_exit(0);
    assert_eq!(
        ours.remote()["status"],
        "quarantined",
        "{}",
        ours.describe()
    );
    assert_eq!(ours.remote()["push"], "present", "{}", ours.describe());
    assert_eq!(ours.remote()["manifest"], first.remote()["manifest"]);
    let entry = fleet
        .registry
        .api()
        .entry(&fleet.repository(), &ours.key())
        .unwrap();
    assert_eq!(entry.referrers.len(), 2, "C's signature and A's");

    let b = fleet.b_build(&fleet.src).run();
    b.assert_exit(0);
    assert_eq!(b.remote()["status"], "hit", "{}", b.describe());
    assert_eq!(b.remote()["signer"], fleet.keys.key_id());
    assert_eq!(b.runs(), 0);
}

/// A scope must be a registry path component to be used remotely: `main.` is a valid
/// local scope but not a repository name, and the build is refused as a usage error
/// rather than run with the remote silently dropped.
#[test]
fn a_scope_that_is_no_repository_name_is_refused_for_remote_use() {
    let fleet = Fleet::new();
    let built = fleet.b_build(&fleet.src).scope("main.").run();
    built.assert_exit(2);
    assert!(
        crate::support::stderr(&built.output).contains("main."),
        "{}",
        built.describe()
    );
    assert!(!built.artifact.exists(), "nothing was built");
}
