//! `hermetic cache push KEY`, `cache pull KEY`, `cache ls --remote` and
//! `cache verify --remote [KEY]` against a real registry.
use std::process::Output;

use serde_json::Value;

use super::net::{Reply, Scripted};
use super::registry::{referrers_tag, RegistryServer};
use super::{remote_url, repository, source, statement_of, Keys, Runner, SCOPE};
use crate::support::{assert_status, stdout};

/// `hermetic cache ARGS` for `runner` against the registry, in scope `main`, trusting
/// `keys`, with `--json`.
fn cache_remote(runner: &Runner, registry: &RegistryServer, keys: &Keys, args: &[&str]) -> Output {
    let url = remote_url(registry.authority());
    let mut all = args.to_vec();
    all.extend([
        "--cache-scope",
        SCOPE,
        "--cache-remote",
        &url,
        "--trust-key",
        keys.public.to_str().unwrap(),
        "--json",
    ]);
    runner.cache(&all)
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("--json prints JSON ({error}): {}", stdout(output)))
}

/// Every object in `value` (at any depth) whose `key` field is `key`.
fn objects_with_key<'a>(value: &'a Value, key: &str, found: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.get("key").and_then(Value::as_str) == Some(key) {
                found.push(value);
            }
            map.values()
                .for_each(|child| objects_with_key(child, key, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|child| objects_with_key(child, key, found)),
        _ => {}
    }
}

/// A runner builds locally (no remote) and stores an entry signed by its key.
fn stored_entry(runner: &Runner, keys: &Keys) -> (String, Vec<u8>) {
    let src = source("input\n");
    let built = runner.build(&src).sign(keys).trust(keys).run();
    built.assert_exit(0);
    assert_eq!(built.cache()["stored"], true, "{}", built.describe());
    assert!(
        built.remote().is_null(),
        "no remote configured, no remote report"
    );
    (built.key(), std::fs::read(&built.artifact).unwrap())
}

#[test]
fn push_then_pull_into_an_empty_store() {
    let registry = RegistryServer::start();
    let keys = Keys::generate("ci");
    let (a, b) = (Runner::new(), Runner::new());
    let (key, archive) = stored_entry(&a, &keys);

    let sign = keys.key.to_str().unwrap();
    let pushed = cache_remote(&a, &registry, &keys, &["push", &key, "--sign-key", sign]);
    assert_status(&pushed, 0);
    let report = json_of(&pushed);
    assert_eq!(report["push"], "pushed", "{report:#}");
    let entry = registry
        .api()
        .entry(&repository(SCOPE), &key)
        .expect("pushed under the key's tag");
    assert_eq!(report["manifest"], entry.digest, "{report:#}");
    assert_eq!(
        registry
            .api()
            .blob(&repository(SCOPE), &entry.archive)
            .unwrap(),
        archive
    );
    let subjects = statement_of(entry.bundle())["subject"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(subjects, 2, "re-signed with both subjects");

    // Pushing it again (through a proxy that logs the requests): present, and nothing
    // uploaded or written.
    let proxy = Scripted::proxy(Some(registry.authority().to_owned()), |_| Reply::Forward);
    let url = remote_url(&proxy.authority());
    let trust = keys.public.to_str().unwrap();
    let again = a.cache(&[
        "push",
        &key,
        "--cache-scope",
        SCOPE,
        "--cache-remote",
        &url,
        "--trust-key",
        trust,
        "--sign-key",
        sign,
        "--json",
    ]);
    assert_status(&again, 0);
    assert_eq!(json_of(&again)["push"], "present", "{}", stdout(&again));
    let writes: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|line| !line.starts_with("GET ") && !line.starts_with("HEAD "))
        .collect();
    assert_eq!(
        writes,
        Vec::<String>::new(),
        "a present entry is not written again"
    );
    assert_eq!(
        registry
            .api()
            .entry(&repository(SCOPE), &key)
            .unwrap()
            .digest,
        entry.digest
    );

    let pulled = cache_remote(&b, &registry, &keys, &["pull", &key]);
    assert_status(&pulled, 0);
    assert_eq!(json_of(&pulled)["verified"], true, "{}", stdout(&pulled));
    let local = b.local_entry(&key);
    assert_eq!(
        std::fs::read(local.join("archive.tar.zst")).unwrap(),
        archive
    );
    assert_eq!(
        std::fs::read(local.join("entry.sigstore.json")).unwrap(),
        registry
            .api()
            .entry(&repository(SCOPE), &key)
            .unwrap()
            .bundle()
    );
    assert_status(
        &b.cache(&["verify", "--cache-scope", SCOPE, "--trust-key", trust, &key]),
        0,
    );
    // B builds from its store alone: no remote, a hit.
    let src = source("input\n");
    let hit = b.build(&src).trust(&keys).run();
    hit.assert_exit(0);
    assert_eq!(hit.cache()["status"], "hit", "{}", hit.describe());
    assert_eq!(std::fs::read(&hit.artifact).unwrap(), archive);

    // A key the registry does not have: nothing pulled, a failure.
    let missing = "0".repeat(64);
    let pulled = cache_remote(&b, &registry, &keys, &["pull", &missing]);
    assert_ne!(pulled.status.code(), Some(0), "{}", stdout(&pulled));
    assert!(!b.local_entry(&missing).exists());
}

#[test]
fn ls_and_verify_remote_check_the_registry_in_place() {
    let registry = RegistryServer::start();
    let keys = Keys::generate("ci");
    let runner = Runner::new();
    let (key, _) = stored_entry(&runner, &keys);
    let sign = keys.key.to_str().unwrap();
    assert_status(
        &cache_remote(
            &runner,
            &registry,
            &keys,
            &["push", &key, "--sign-key", sign],
        ),
        0,
    );
    let entry = registry.api().entry(&repository(SCOPE), &key).unwrap();

    // ls --remote: the cache keys only (not the referrers index tag), each with its
    // signature's verdict.
    let listed = cache_remote(&runner, &registry, &keys, &["ls", "--remote"]);
    assert_status(&listed, 0);
    let listing = json_of(&listed);
    let mut found = Vec::new();
    objects_with_key(&listing, &key, &mut found);
    assert_eq!(found.len(), 1, "the key is listed once: {listing:#}");
    assert_eq!(found[0]["signature"]["trusted"], true, "{listing:#}");
    assert_eq!(
        found[0]["signature"]["signer"],
        keys.key_id(),
        "{listing:#}"
    );
    assert!(
        !listing.to_string().contains(&referrers_tag(&entry.digest)),
        "the referrers tag is not a cache key: {listing:#}"
    );
    // With another key trusted, the same entry is listed as untrusted.
    let stranger = Keys::generate("stranger");
    let listing = json_of(&cache_remote(
        &runner,
        &registry,
        &stranger,
        &["ls", "--remote"],
    ));
    let mut found = Vec::new();
    objects_with_key(&listing, &key, &mut found);
    assert_eq!(found.len(), 1, "{listing:#}");
    assert_eq!(found[0]["signature"]["trusted"], false, "{listing:#}");

    // verify --remote passes on a good registry, with and without the key.
    let verified = cache_remote(&runner, &registry, &keys, &["verify", "--remote"]);
    assert_status(&verified, 0);
    json_of(&verified);
    assert_status(
        &cache_remote(&runner, &registry, &keys, &["verify", "--remote", &key]),
        0,
    );
    assert!(runner.quarantined().is_empty());

    // A byte flipped on the registry's disk: exit 4, a quarantine record, and the
    // registry keeps the entry.
    let data = registry.blob_data_path(&entry.archive);
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&data, &bytes).unwrap();
    let refused = cache_remote(&runner, &registry, &keys, &["verify", "--remote"]);
    assert_status(&refused, 4);
    json_of(&refused);
    let quarantined = runner.quarantined();
    assert_eq!(quarantined.len(), 1, "one quarantine record");
    let record: Value =
        serde_json::from_slice(&std::fs::read(quarantined[0].join("reason.json")).unwrap())
            .unwrap();
    assert_eq!(record["source"], "remote", "{record:#}");
    assert_eq!(
        record["reference"],
        super::reference(registry.authority(), &key),
        "{record:#}"
    );
    assert_eq!(record["reason"], "archive_digest_mismatch", "{record:#}");
    assert_eq!(record["step"], "archive", "{record:#}");
    assert_eq!(
        registry
            .api()
            .entry(&repository(SCOPE), &key)
            .unwrap()
            .digest,
        entry.digest,
        "the registry keeps the entry"
    );
    assert!(registry.api().has_blob(&repository(SCOPE), &entry.archive));
    // The local entry was not the one at fault: it stays.
    assert!(runner.local_entry(&key).join("archive.tar.zst").exists());
}
