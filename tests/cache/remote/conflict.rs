//! Two runners that made different bytes for one key: the second pusher does not
//! overwrite the first entry; it reports the conflict (both entry manifests, both
//! archives, both signers) and logs a `cache_conflict` event.
//!
//! How the two runners come to disagree, legitimately: the cache key covers the profile
//! file's bytes, not the contents of the host directories the profile binds (the known
//! limit of host-toolchain profiles, docs/cache-format.md "Cache key"). So both runners
//! use one profile that binds a host directory read-only, and the build copies a file
//! from it into its output; the test changes that file between the two runners' builds.
//! Same command, source, profile and toolchain, so the same key; different archives.
//! Nothing is forged: both entries are what a real build made and stored, and each
//! runner signs its own with its own key.
//!
//! When the second runner sees the first entry decides the path:
//! - a race: the second runner's lookup missed (the first had not pushed yet), and the
//!   first pushes while the second uploads. A proxy in front of the registry for the
//!   second runner holds its first request for the key's tag after its blob requests
//!   (its compare-before-write), and meanwhile the first runner builds and pushes
//!   directly to the registry. No timing: the hold is an event in the request stream.
//! - a refused entry: the second runner's lookup found the first entry, signed by a key
//!   it does not trust, refused it and built fresh; it must not push over it.
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::net::{Reply, Scripted};
use super::registry::{hex_of, sha256, OCI_MANIFEST};
use super::{expected_manifest, remote_url, repository, source, Built, Keys, Runner, SCOPE};
use crate::support::default_profile_text;

/// A host directory the profile binds read-only, with a file the build copies.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        // Not under /tmp: the sandbox has its own tmpfs there.
        let dir = tempfile::Builder::new()
            .prefix("hermetic-conflict-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for path in [dir.path(), &data] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let profile = default_profile_text().replacen(
            "binds = [",
            &format!("binds = [{:?}, ", data.display().to_string()),
            1,
        );
        assert_ne!(
            profile,
            default_profile_text(),
            "the profile has a binds list"
        );
        std::fs::write(dir.path().join("profile.toml"), profile).unwrap();
        Outside { dir }
    }

    fn value_path(&self) -> PathBuf {
        self.dir.path().join("data/value")
    }

    fn set(&self, value: &str) {
        set_value(&self.value_path(), value);
    }

    fn profile(&self) -> PathBuf {
        self.dir.path().join("profile.toml")
    }

    fn script(&self) -> String {
        format!(
            "mkdir -p out && cp {} out/value",
            self.value_path().display()
        )
    }
}

fn set_value(path: &std::path::Path, value: &str) {
    std::fs::write(path, value).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Whether the request is for a cache key's tag (`.../manifests/<64 hex>`).
fn is_key_tag(path: &str) -> bool {
    path.contains("/manifests/")
        && path
            .rsplit('/')
            .next()
            .is_some_and(|tag| tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The conflict as the second pusher must report it, in the build report and in its
/// `cache_conflict` event.
fn assert_conflict_reported(
    second: &Built,
    second_runner: &Runner,
    second_keys: &Keys,
    first: &Built,
    first_signer_matches: impl Fn(&Value) -> bool,
    first_trusted: bool,
) {
    second.assert_exit(0);
    assert_eq!(
        second.cache()["stored"],
        true,
        "stored locally\n{}",
        second.describe()
    );
    assert_eq!(second.remote()["push"], "conflict", "{}", second.describe());
    let key = second.key();
    assert_eq!(first.key(), key, "the same key");
    assert_ne!(first.digest(), second.digest(), "different bytes");
    let ours_archive = std::fs::read(&second.artifact).unwrap();
    let theirs_archive = std::fs::read(&first.artifact).unwrap();
    let conflict = &second.remote()["conflict"];
    let (ours, theirs) = (&conflict["ours"], &conflict["theirs"]);
    assert_eq!(
        ours["manifest"],
        sha256(&expected_manifest(&ours_archive, &key, SCOPE)),
        "{conflict:#}"
    );
    assert_eq!(
        hex_of(ours["archive"].as_str().unwrap()),
        hex_of(&sha256(&ours_archive))
    );
    assert_eq!(ours["signer"], second_keys.key_id(), "{conflict:#}");
    assert_eq!(
        theirs["manifest"],
        sha256(&expected_manifest(&theirs_archive, &key, SCOPE)),
        "{conflict:#}"
    );
    assert_eq!(
        theirs["manifest"],
        first.remote()["manifest"],
        "{conflict:#}"
    );
    assert_eq!(
        hex_of(theirs["archive"].as_str().unwrap()),
        hex_of(&sha256(&theirs_archive))
    );
    assert!(first_signer_matches(&theirs["signer"]), "{conflict:#}");
    assert_eq!(theirs["trusted"], first_trusted, "{conflict:#}");

    let event = second_runner
        .events()
        .into_iter()
        .find(|event| event["event"] == "cache_conflict")
        .expect("a cache_conflict event");
    assert_eq!(event["schema"], "hermetic.event/v1", "{event:#}");
    assert_eq!(event["key"], key.as_str(), "{event:#}");
    let text = event.to_string();
    for field in [
        &ours["manifest"],
        &theirs["manifest"],
        &ours["signer"],
        &theirs["signer"],
    ] {
        let field = field.as_str().unwrap();
        assert!(text.contains(field), "the event names {field}: {event:#}");
    }
}

#[test]
fn a_runner_that_loses_a_push_race_reports_the_conflict_and_overwrites_nothing() {
    let registry = super::registry::RegistryServer::start();
    let url = remote_url(registry.authority());
    let outside = Outside::new();
    let src = source("input\n");
    let (first, first_keys) = (Runner::new(), Keys::generate("first"));
    let (second, second_keys) = (Runner::new(), Keys::generate("second"));

    // The first runner's build, run by the proxy while it holds the second runner's
    // compare-before-write request.
    let first_build = first
        .build(&src)
        .profile(&outside.profile())
        .script(&outside.script())
        .remote(&url)
        .publish(&first_keys)
        .trust(&second_keys)
        .prepare();
    let value = outside.value_path();
    let hook = Mutex::new(Some(move || {
        set_value(&value, "the first runner's bytes\n");
        first_build.run()
    }));
    let first_built: Arc<Mutex<Option<Built>>> = Arc::default();
    let seen_blob = Mutex::new(false);
    let proxy = {
        let first_built = first_built.clone();
        Scripted::proxy(Some(registry.authority().to_owned()), move |request| {
            let mut seen = seen_blob.lock().unwrap();
            if request.path().contains("/blobs/") {
                *seen = true;
            } else if *seen && is_key_tag(request.path()) {
                if let Some(run) = hook.lock().unwrap().take() {
                    *first_built.lock().unwrap() = Some(run());
                }
            }
            Reply::Forward
        })
    };

    outside.set("the second runner's bytes\n");
    let built = second
        .build(&src)
        .profile(&outside.profile())
        .script(&outside.script())
        .remote(&remote_url(&proxy.authority()))
        .publish(&second_keys)
        .trust(&first_keys)
        // The first runner's whole build happens while a request waits.
        .timeout(300)
        .run();
    let first_built = first_built
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(|| panic!("the proxy never saw the compare\n{}", built.describe()));
    first_built.assert_exit(0);
    assert_eq!(
        first_built.remote()["push"],
        "pushed",
        "{}",
        first_built.describe()
    );
    assert_eq!(built.remote()["status"], "miss", "{}", built.describe());

    assert_conflict_reported(
        &built,
        &second,
        &second_keys,
        &first_built,
        |signer| signer == &Value::from(first_keys.key_id()),
        true,
    );
    let key = built.key();
    let entry = registry
        .api()
        .entry(&repository(SCOPE), &key)
        .expect("the tag");
    assert_eq!(
        entry.digest,
        first_built.remote()["manifest"],
        "the first entry stays"
    );
    assert_eq!(
        entry.referrers.len(),
        1,
        "only the first runner's signature"
    );
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|line| line.starts_with("PUT ") && line.ends_with(&format!("/manifests/{key}"))),
        "the second runner wrote the tag: {:?}",
        proxy.requests()
    );
}

#[test]
fn a_refused_entry_is_not_pushed_over() {
    let registry = super::registry::RegistryServer::start();
    let url = remote_url(registry.authority());
    let outside = Outside::new();
    let src = source("input\n");
    let (first, first_keys) = (Runner::new(), Keys::generate("first"));
    let (second, second_keys) = (Runner::new(), Keys::generate("second"));

    outside.set("the first runner's bytes\n");
    let first_built = first
        .build(&src)
        .profile(&outside.profile())
        .script(&outside.script())
        .remote(&url)
        .publish(&first_keys)
        .run();
    first_built.assert_exit(0);
    assert_eq!(
        first_built.remote()["push"],
        "pushed",
        "{}",
        first_built.describe()
    );

    // The second runner trusts only its own key: the first entry is refused.
    outside.set("the second runner's bytes\n");
    let built = second
        .build(&src)
        .profile(&outside.profile())
        .script(&outside.script())
        .remote(&url)
        .publish(&second_keys)
        .run();
    assert_eq!(
        built.cache()["status"],
        "quarantined",
        "{}",
        built.describe()
    );
    assert_eq!(
        built.remote()["status"],
        "quarantined",
        "{}",
        built.describe()
    );
    assert!(
        built.remote()["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("untrusted_key"),
        "{}",
        built.describe()
    );
    assert_eq!(built.runs(), 2, "the build ran fresh");

    let (id, hint) = (first_keys.key_id(), first_keys.hint());
    assert_conflict_reported(
        &built,
        &second,
        &second_keys,
        &first_built,
        |signer| signer == &Value::from(id.clone()) || signer == &Value::from(hint.clone()),
        false,
    );
    let entry = registry
        .api()
        .entry(&repository(SCOPE), &built.key())
        .expect("the tag");
    assert_eq!(
        entry.digest,
        first_built.remote()["manifest"],
        "the first entry stays"
    );
}

/// The registry has no conditional tag write, so the pusher reads the tag back: another
/// writer that moves the tag between the pusher's write and its read-back (here, a
/// proxy puts another entry's manifest under the tag at that moment) is reported as a
/// conflict too.
#[test]
fn a_tag_moved_during_the_push_is_reported_as_a_conflict() {
    let fleet = super::Fleet::new();
    let other_src = source("other input\n");
    let other = fleet.push_from_a(&other_src);
    let repository = fleet.repository();

    let registry = fleet.registry.authority().to_owned();
    let moved = Arc::new(Mutex::new(false));
    let proxy = {
        let (moved, other_manifest) = (moved.clone(), other.entry.manifest.clone());
        let (authority, repository) = (registry.clone(), repository.clone());
        let wrote_tag = Mutex::new(false);
        Scripted::proxy(Some(registry), move |request| {
            if !is_key_tag(request.path()) {
                return Reply::Forward;
            }
            let mut wrote = wrote_tag.lock().unwrap();
            if request.method == "PUT" {
                *wrote = true;
            } else if *wrote && !*moved.lock().unwrap() {
                let tag = request.path().rsplit('/').next().unwrap();
                super::registry::Registry {
                    authority: authority.clone(),
                    basic: None,
                }
                .put_manifest(&repository, tag, OCI_MANIFEST, &other_manifest);
                *moved.lock().unwrap() = true;
            }
            Reply::Forward
        })
    };

    let built = fleet
        .a
        .build(&fleet.src)
        .remote(&remote_url(&proxy.authority()))
        .publish(&fleet.keys)
        .run();
    built.assert_exit(0);
    assert!(
        *moved.lock().unwrap(),
        "the tag was never read back after the write: {:?}",
        proxy.requests()
    );
    assert_eq!(built.remote()["push"], "conflict", "{}", built.describe());
    let conflict = &built.remote()["conflict"];
    let key = built.key();
    let ours = std::fs::read(&built.artifact).unwrap();
    assert_eq!(
        conflict["ours"]["manifest"],
        sha256(&expected_manifest(&ours, &key, SCOPE)),
        "{conflict:#}"
    );
    assert_eq!(
        conflict["theirs"]["manifest"], other.entry.digest,
        "{conflict:#}"
    );
    let event = fleet
        .a
        .events()
        .into_iter()
        .find(|event| event["event"] == "cache_conflict")
        .expect("a cache_conflict event");
    assert_eq!(event["key"], key.as_str(), "{event:#}");
    assert!(event.to_string().contains(&other.entry.digest), "{event:#}");
}
