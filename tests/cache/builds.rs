//! `hermetic build --cache-dir` and `hermetic cache ...` through the real binary.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{assert_status, hermetic, stderr, Source};

pub(crate) const SCRIPT: &str =
    "mkdir -p out/sub && cat in.txt > out/sub/copy && echo built > out/flag";

/// A source, a cache dir and a state dir (for the local key) in one scratch dir.
pub(crate) struct Setup {
    pub(crate) src: Source,
    pub(crate) tmp: tempfile::TempDir,
}

impl Setup {
    pub(crate) fn new() -> Self {
        Self {
            src: Source::new(&[("in.txt", "input\n")]),
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// `hermetic keygen` with an empty password: `NAME.key` and `NAME.pub` here.
    fn keygen(&self, name: &str) {
        let keygen = hermetic()
            .args(["keygen", "--output-key-prefix"])
            .arg(self.path(name))
            .env("HERMETIC_PASSWORD", "")
            .output()
            .unwrap();
        assert_status(&keygen, 0);
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    /// `hermetic build --json --cache-dir ... [extra] -- sh -c script`.
    fn build(&self, artifact: &str, extra: &[&str], script: &str) -> (Output, Value) {
        let output = self
            .build_command(artifact, extra, script)
            .output()
            .expect("spawn hermetic");
        let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (output, report)
    }

    /// The command [`Setup::build`] runs.
    pub(crate) fn build_command(&self, artifact: &str, extra: &[&str], script: &str) -> Command {
        let mut command = hermetic();
        command
            .args(["build", "--json", "--src"])
            .arg(self.src.path())
            .arg("--artifact")
            .arg(self.path(artifact))
            .arg("--cache-dir")
            .arg(self.cache_dir())
            .arg("--state-dir")
            .arg(self.path("state"))
            .args(extra)
            .args(["--", "sh", "-c", script]);
        command
    }

    pub(crate) fn cache(&self, args: &[&str]) -> Output {
        self.cache_command(args).output().expect("spawn hermetic")
    }

    /// The command [`Setup::cache`] runs.
    pub(crate) fn cache_command(&self, args: &[&str]) -> Command {
        let mut command = hermetic();
        command
            .arg("cache")
            .args(args)
            .arg("--cache-dir")
            .arg(self.cache_dir());
        command
    }

    fn entries(&self) -> Vec<Value> {
        let state = self.path("state");
        let output = self.cache(&["ls", "--json", "--state-dir", state.to_str().unwrap()]);
        assert_status(&output, 0);
        let listing: Value = serde_json::from_slice(&output.stdout).unwrap();
        listing["entries"].as_array().unwrap().clone()
    }
}

fn entry_dir(report: &Value) -> PathBuf {
    PathBuf::from(report["cache"]["entry"].as_str().expect("an entry path"))
}

#[test]
fn second_identical_build_is_a_hit_that_runs_nothing() {
    let setup = Setup::new();
    let (output, first) = setup.build("a.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(first["verdict"], "reproducible");
    assert_eq!(first["cache"]["status"], "miss");
    assert_eq!(first["cache"]["stored"], true);
    assert_eq!(first["cache"]["scope"], "local");
    let key = first["cache"]["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 64);

    let tree = setup.path("tree");
    let (output, second) = setup.build("b.tar.zst", &["--extract", tree.to_str().unwrap()], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(second["cache"]["status"], "hit", "{}", stderr(&output));
    assert_eq!(second["cache"]["key"], key.as_str());
    assert_eq!(second["cache"]["stored"], false);
    assert_eq!(second["verdict"], "reproducible");
    assert_eq!(
        second["runs"].as_array().unwrap().len(),
        0,
        "nothing ran on a hit"
    );
    assert_eq!(second["output"]["digest"], first["output"]["digest"]);
    assert_eq!(
        std::fs::read(setup.path("a.tar.zst")).unwrap(),
        std::fs::read(setup.path("b.tar.zst")).unwrap(),
        "the restored archive is byte-identical"
    );
    assert_eq!(
        std::fs::read_to_string(setup.path("tree/out/sub/copy")).unwrap(),
        "input\n"
    );
    assert_eq!(setup.entries().len(), 1);
}

#[test]
fn changing_an_input_changes_the_key() {
    let setup = Setup::new();
    let (_, first) = setup.build("a.tar.zst", &[], SCRIPT);
    std::fs::write(setup.src.join("in.txt"), "changed\n").unwrap();
    let (output, second) = setup.build("b.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(second["cache"]["status"], "miss");
    assert_ne!(second["cache"]["key"], first["cache"]["key"]);
    let (_, third) = setup.build("c.tar.zst", &["--source-date-epoch", "1000"], SCRIPT);
    assert_ne!(third["cache"]["key"], second["cache"]["key"]);
}

#[test]
fn a_tampered_entry_is_quarantined_and_the_build_runs_fresh() {
    let setup = Setup::new();
    let (_, first) = setup.build("a.tar.zst", &[], SCRIPT);
    let archive = entry_dir(&first).join("archive.tar.zst");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&archive, &bytes).unwrap();
    std::fs::write(setup.path("b.tar.zst"), "old").unwrap();

    let (output, second) = setup.build("b.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(second["cache"]["status"], "quarantined");
    assert_eq!(second["cache"]["step"], "archive");
    assert!(second["cache"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("archive_digest_mismatch"));
    assert!(stderr(&output).contains("cache quarantined"));
    assert_eq!(second["runs"].as_array().unwrap().len(), 2, "the build ran");
    assert_eq!(second["verdict"], "reproducible");
    assert_eq!(second["cache"]["stored"], true, "and its result is stored");
    assert_eq!(second["output"]["digest"], first["output"]["digest"]);
    let quarantine = PathBuf::from(second["cache"]["quarantine"].as_str().unwrap());
    let record: Value =
        serde_json::from_slice(&std::fs::read(quarantine.join("reason.json")).unwrap()).unwrap();
    assert_eq!(record["reason"], "archive_digest_mismatch");
    let events = std::fs::read_to_string(setup.cache_dir().join("events.ndjson")).unwrap();
    assert!(events.contains("\"event\":\"cache_quarantine\""));

    let listed = setup.cache(&["quarantine", "ls", "--json"]);
    assert_status(&listed, 0);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["quarantine"].as_array().unwrap().len(), 1);

    let (_, third) = setup.build("c.tar.zst", &[], SCRIPT);
    assert_eq!(third["cache"]["status"], "hit");
}

#[test]
fn nondeterministic_results_are_never_stored() {
    let setup = Setup::new();
    let (output, report) = setup.build(
        "a.tar.zst",
        &[],
        "mkdir -p out && cat /proc/sys/kernel/random/uuid > out/id",
    );
    assert_status(&output, 3);
    assert_eq!(report["cache"]["status"], "miss");
    assert_eq!(report["cache"]["stored"], false);
    assert!(report["cache"]["reason"]
        .as_str()
        .unwrap()
        .contains("nondeterministic"));
    assert!(setup.entries().is_empty());
}

#[test]
fn require_cache_turns_a_miss_into_exit_4_without_building() {
    let setup = Setup::new();
    let (output, report) = setup.build("a.tar.zst", &["--require-cache"], SCRIPT);
    assert_status(&output, 4);
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["cache"]["status"], "miss");
    assert!(report["runs"].as_array().unwrap().is_empty());
    assert!(!setup.path("a.tar.zst").exists());

    setup.build("a.tar.zst", &[], SCRIPT);
    let (output, report) = setup.build("b.tar.zst", &["--require-cache"], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(report["cache"]["status"], "hit");
}

#[test]
fn single_runs_are_stored_only_when_asked_and_marked() {
    let setup = Setup::new();
    let (output, report) = setup.build("a.tar.zst", &["--single"], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(report["cache"]["stored"], false);
    assert!(setup.entries().is_empty());

    let (_, report) = setup.build("a.tar.zst", &["--single", "--cache-single-run"], SCRIPT);
    assert_eq!(report["cache"]["stored"], true);
    let (_, single_hit) = setup.build("b.tar.zst", &["--single"], SCRIPT);
    assert_eq!(single_hit["cache"]["status"], "hit");
    assert_eq!(single_hit["verdict"], "built");

    // A dual build does not settle for it, and its reproducible result replaces it.
    let (output, dual) = setup.build("c.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(dual["cache"]["status"], "miss");
    let reason = dual["cache"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("single run"), "{dual}");
    assert_eq!(dual["cache"]["stored"], true);
    let (_, dual_hit) = setup.build("d.tar.zst", &[], SCRIPT);
    assert_eq!(dual_hit["cache"]["status"], "hit");
    assert_eq!(dual_hit["verdict"], "reproducible");
}

#[test]
fn operator_keys_decide_what_trusted_scopes_accept() {
    let setup = Setup::new();
    setup.keygen("ci");
    let public = setup.path("ci.pub");
    let public = public.to_str().unwrap();

    // Signed with the local key, which operator keys displace for trusted scopes.
    let (output, report) = setup.build("a.tar.zst", &["--trust-key", public], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(report["cache"]["stored"], false);
    assert!(report["cache"]["reason"]
        .as_str()
        .unwrap()
        .contains("not trusted"));

    // An untrusted scope takes the local key's entries; the trusted scope never reads them.
    let untrusted = ["--trust-key", public, "--cache-scope", "untrusted-pr-1"];
    let (_, pr) = setup.build("a.tar.zst", &untrusted, SCRIPT);
    assert_eq!(pr["cache"]["stored"], true);
    let (_, main) = setup.build("b.tar.zst", &["--trust-key", public], SCRIPT);
    assert_eq!(main["cache"]["status"], "miss");

    // The operator's key signs for the trusted scope.
    let key = setup.path("ci.key");
    let signed = ["--trust-key", public, "--sign-key", key.to_str().unwrap()];
    let output = hermetic()
        .env("HERMETIC_PASSWORD", "")
        .args(["build", "--json", "--src"])
        .arg(setup.src.path())
        .arg("--artifact")
        .arg(setup.path("c.tar.zst"))
        .arg("--cache-dir")
        .arg(setup.cache_dir())
        .arg("--state-dir")
        .arg(setup.path("state"))
        .args(signed)
        .args(["--", "sh", "-c", SCRIPT])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["cache"]["stored"], true);
    let (_, hit) = setup.build("d.tar.zst", &["--trust-key", public], SCRIPT);
    assert_eq!(hit["cache"]["status"], "hit");
}

#[test]
fn cache_restore_verify_and_verify_manifest() {
    let setup = Setup::new();
    let (_, report) = setup.build("a.tar.zst", &[], SCRIPT);
    let key = report["cache"]["key"].as_str().unwrap();
    let state = setup.path("state");
    let state = state.to_str().unwrap();

    let verified = setup.cache(&["verify", "--state-dir", state, key]);
    assert_status(&verified, 0);
    let shown = setup.cache(&["show", "--state-dir", state, key, "--json"]);
    assert_status(&shown, 0);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["entry"]["cacheKey"], key);
    assert_eq!(shown["entry"]["verdict"], "reproducible");

    let restore = |dest: &Path| {
        setup.cache(&[
            "restore",
            "--state-dir",
            state,
            key,
            "--dest",
            dest.to_str().unwrap(),
        ])
    };
    let dest = setup.path("restored");
    let restored = restore(&dest);
    assert_status(&restored, 0);
    assert_eq!(
        std::fs::read_to_string(dest.join("out/flag")).unwrap(),
        "built\n"
    );

    let entry = entry_dir(&report);
    let manifest = entry.join("entry.sigstore.json");
    let verify_manifest = |archive: &Path| {
        hermetic()
            .args(["verify", "--manifest"])
            .arg(&manifest)
            .arg("--artifact")
            .arg(archive)
            .arg("--trust-key")
            .arg(setup.path("state/keys/cache-local.pub"))
            .output()
            .unwrap()
    };
    assert_status(&verify_manifest(&setup.path("a.tar.zst")), 0);
    std::fs::write(setup.path("other.tar.zst"), b"not the archive").unwrap();
    assert_status(&verify_manifest(&setup.path("other.tar.zst")), 4);

    // A refused restore creates nothing and quarantines the entry.
    std::fs::write(entry.join("archive.tar.zst"), b"not the archive").unwrap();
    let dest = setup.path("refused");
    let refused = restore(&dest);
    assert_status(&refused, 4);
    assert!(!dest.exists());
    assert!(stderr(&refused).contains("quarantined"));
}

#[test]
fn gc_evicts_least_recently_used_entries_down_to_the_cap() {
    let setup = Setup::new();
    let one = "mkdir -p out && echo one > out/f";
    let two = "mkdir -p out && echo two > out/f";
    let (_, first) = setup.build("a.tar.zst", &[], one);
    let (_, second) = setup.build("b.tar.zst", &[], two);
    let entries = setup.entries();
    assert_eq!(entries.len(), 2);
    // Use again the entry that comes first by path, within the same second as the rest:
    // only its recency (a hit refreshes it) can keep it, not the order of the paths.
    let first_by_path = entries
        .iter()
        .min_by_key(|entry| entry["path"].as_str().unwrap().to_owned())
        .unwrap();
    let (script, other_key) = if first_by_path["key"] == first["cache"]["key"] {
        (one, &second["cache"]["key"])
    } else {
        (two, &first["cache"]["key"])
    };
    let (_, hit) = setup.build("c.tar.zst", &[], script);
    assert_eq!(hit["cache"]["status"], "hit");
    let listed = setup.entries();
    assert_eq!(
        listed[1]["key"], first_by_path["key"],
        "most recently used last"
    );

    let keep = first_by_path["bytes"].as_u64().unwrap();
    let gc = setup.cache(&["gc", "--max-size", &keep.to_string(), "--json"]);
    assert_status(&gc, 0);
    let report: Value = serde_json::from_slice(&gc.stdout).unwrap();
    let evicted = report["evicted"].as_array().unwrap();
    assert_eq!(evicted.len(), 1);
    assert_eq!(&evicted[0]["key"], other_key);
    let left = setup.entries();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["key"], first_by_path["key"]);

    assert_status(&setup.cache(&["gc", "--max-size", "0"]), 0);
    assert!(setup.entries().is_empty());
}

/// The listing commands take `--trust-key` too: `ls` and `quarantine ls` say whether a
/// trusted key signed each entry, and `gc --drop-untrusted` evicts what none signed.
#[test]
fn listings_and_gc_check_signatures_with_the_trusted_keys() {
    let setup = Setup::new();
    let (_, report) = setup.build("a.tar.zst", &[], SCRIPT);
    let entries = setup.entries();
    assert_eq!(entries.len(), 1);
    let signature = &entries[0]["signature"];
    assert_eq!(signature["trusted"], true, "{signature}");
    assert_eq!(signature["signer"], report["cache"]["signer"]);
    assert_eq!(signature["verdict"], "reproducible");

    setup.keygen("ci");
    let state = setup.path("state");
    let state = state.to_str().unwrap();
    let public = setup.path("ci.pub");
    let with_ci = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--state-dir",
            state,
            "--trust-key",
            public.to_str().unwrap(),
        ]);
        setup.cache(&all)
    };
    // Operator keys displace the local key for the trusted scope `local`.
    let listed = with_ci(&["ls", "--json"]);
    assert_status(&listed, 0);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let signature = &listed["entries"][0]["signature"];
    assert_eq!(signature["trusted"], false, "{signature}");
    assert_eq!(signature["reason"], "untrusted_key");
    assert!(crate::support::stdout(&with_ci(&["ls"])).contains("untrusted (untrusted_key)"));

    // Without --drop-untrusted the keys evict nothing, and a cap is required.
    assert_status(&with_ci(&["gc"]), 2);
    assert_status(&with_ci(&["gc", "--max-size", "1T"]), 0);
    assert_eq!(setup.entries().len(), 1);

    // A tampered entry a trusted key signed was changed after it was signed.
    let archive = entry_dir(&report).join("archive.tar.zst");
    std::fs::write(&archive, b"not the archive").unwrap();
    assert_status(&setup.cache(&["verify", "--state-dir", state]), 4);
    let quarantined = setup.cache(&["quarantine", "ls", "--json", "--state-dir", state]);
    assert_status(&quarantined, 0);
    let quarantined: Value = serde_json::from_slice(&quarantined.stdout).unwrap();
    let record = &quarantined["quarantine"][0];
    assert_eq!(record["record"]["reason"], "archive_size", "{record}");
    assert_eq!(record["signature"]["trusted"], true, "{record}");
    let quarantined = with_ci(&["quarantine", "ls", "--json"]);
    let quarantined: Value = serde_json::from_slice(&quarantined.stdout).unwrap();
    assert_eq!(quarantined["quarantine"][0]["signature"]["trusted"], false);

    setup.build("b.tar.zst", &[], SCRIPT);
    setup.build("c.tar.zst", &[], "mkdir -p out && echo other > out/f");
    assert_eq!(setup.entries().len(), 2);
    let gc = with_ci(&["gc", "--drop-untrusted", "--json"]);
    assert_status(&gc, 0);
    let gc: Value = serde_json::from_slice(&gc.stdout).unwrap();
    assert_eq!(gc["evicted_untrusted"], 2, "{gc}");
    assert!(setup.entries().is_empty());
    assert_eq!(
        std::fs::read_dir(setup.cache_dir().join("quarantine"))
            .unwrap()
            .count(),
        1,
        "quarantine is never collected"
    );
}

/// An entry's signed manifest is a plain key-signed Sigstore bundle: sigstore-js, an
/// independent implementation, accepts it for the archive.
#[test]
fn sigstore_js_accepts_an_entry() {
    let setup = Setup::new();
    let (_, report) = setup.build("a.tar.zst", &[], SCRIPT);
    let entry = entry_dir(&report);
    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/verify-bundle.js");
    let output = std::process::Command::new("node")
        .arg(&verifier)
        .arg(entry.join("entry.sigstore.json"))
        .arg(setup.path("state/keys/cache-local.pub"))
        .arg(entry.join("archive.tar.zst"))
        .arg("urn:hermetic:cache-entry:v1")
        .output()
        .expect("node runs (CI installs tests/interop with npm ci)");
    assert!(
        output.status.success(),
        "sigstore-js refused: {}{}",
        crate::support::stdout(&output),
        stderr(&output)
    );
}

/// A PKCS#8 key made by openssl signs entries, and its public key (from openssl too) is
/// what a trusted scope accepts.
#[test]
fn an_openssl_key_signs_and_is_trusted() {
    let setup = Setup::new();
    let key = setup.path("ossl.key");
    let public = setup.path("ossl.pub");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .status()
        .expect("openssl runs");
    assert!(made.success());
    let exported = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(exported.success());
    let trust = ["--trust-key", public.to_str().unwrap()];
    let signed = [trust[0], trust[1], "--sign-key", key.to_str().unwrap()];
    let (output, report) = setup.build("a.tar.zst", &signed, SCRIPT);
    assert_status(&output, 0);
    assert_eq!(report["cache"]["stored"], true, "{}", report["cache"]);
    let (_, hit) = setup.build("b.tar.zst", &trust, SCRIPT);
    assert_eq!(hit["cache"]["status"], "hit");
    assert_eq!(hit["cache"]["signer"], report["cache"]["signer"]);
}

/// `[cache]` in the config file: builds and `hermetic cache` use it without flags, and the
/// state dir (for the local key) is the config's.
#[test]
fn the_config_file_names_the_cache() {
    let setup = Setup::new();
    let config = setup.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\nstate_dir = {:?}\n[cache]\ndir = {:?}\nscope = \"main\"\n",
            setup.path("state"),
            setup.cache_dir()
        ),
    )
    .unwrap();
    let build = |artifact: &str| {
        let output = hermetic()
            .env("HERMETIC_CONFIG", &config)
            .args(["build", "--json", "--src"])
            .arg(setup.src.path())
            .arg("--artifact")
            .arg(setup.path(artifact))
            .args(["--", "sh", "-c", SCRIPT])
            .output()
            .expect("spawn hermetic");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (output, report)
    };
    let (output, first) = build("a.tar.zst");
    assert_status(&output, 0);
    assert_eq!(first["cache"]["status"], "miss", "{}", stderr(&output));
    assert_eq!(first["cache"]["stored"], true);
    assert_eq!(first["cache"]["scope"], "main");
    assert!(
        setup.path("state/keys").is_dir(),
        "the local key is in the config's state dir"
    );
    let (output, second) = build("b.tar.zst");
    assert_status(&output, 0);
    assert_eq!(second["cache"]["status"], "hit");

    let listed = hermetic()
        .env("HERMETIC_CONFIG", &config)
        .args(["cache", "ls", "--json"])
        .output()
        .expect("spawn hermetic");
    assert_status(&listed, 0);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["entries"][0]["scope"], "main");
}

#[test]
fn cache_flags_without_a_cache_are_a_usage_error() {
    let setup = Setup::new();
    let config = setup.path("config.toml");
    std::fs::write(&config, "version = 1\n").unwrap();
    let output = hermetic()
        .env("HERMETIC_CONFIG", &config)
        .args(["build", "--require-cache", "--src"])
        .arg(setup.src.path())
        .args(["--", "true"])
        .output()
        .expect("spawn hermetic");
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("--require-cache needs a cache"),
        "{}",
        stderr(&output)
    );
}

/// One flipped byte in the cache's VERSION must not stop a runner: the layout is set
/// aside (kept, with a reason and an event) and the build runs and stores anew.
#[test]
fn a_damaged_cache_layout_is_set_aside_and_builds_go_on() {
    let setup = Setup::new();
    let (output, first) = setup.build("a.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(first["cache"]["stored"], true);
    let version = setup.cache_dir().join("VERSION");
    let mut bytes = std::fs::read(&version).unwrap();
    bytes[3] ^= 0x01;
    std::fs::write(&version, &bytes).unwrap();

    let (output, second) = setup.build("b.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(second["cache"]["status"], "miss", "{second}");
    let reason = second["cache"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("set aside"), "{second}");
    assert_eq!(
        second["cache"]["stored"], true,
        "the new cache takes the result"
    );
    let events = std::fs::read_to_string(setup.cache_dir().join("events.ndjson")).unwrap();
    assert!(events.contains("cache_layout_set_aside"), "{events}");
    let set_aside: Vec<_> = std::fs::read_dir(setup.cache_dir().join("quarantine"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with("-layout"))
        .collect();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(std::fs::read(set_aside[0].join("VERSION")).unwrap(), bytes);
    assert_eq!(
        std::fs::read_dir(set_aside[0].join("scopes/local"))
            .unwrap()
            .count(),
        1,
        "the old entry is kept as evidence"
    );
    let (_, third) = setup.build("c.tar.zst", &[], SCRIPT);
    assert_eq!(third["cache"]["status"], "hit");
}

/// A cache a newer hermetic wrote is left alone: the build runs uncached and says why;
/// only --require-cache makes that an exit 4.
#[test]
fn a_newer_cache_layout_is_left_untouched_and_the_build_runs_uncached() {
    let setup = Setup::new();
    std::fs::create_dir_all(setup.cache_dir()).unwrap();
    std::fs::write(setup.cache_dir().join("VERSION"), "hermetic.cache/v9\n").unwrap();
    let (output, report) = setup.build("a.tar.zst", &[], SCRIPT);
    assert_status(&output, 0);
    assert_eq!(report["cache"]["status"], "disabled", "{report}");
    assert!(
        report["cache"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("hermetic.cache/v9"),
        "{report}"
    );
    assert_eq!(report["cache"]["stored"], false);
    let (output, required) = setup.build("b.tar.zst", &["--require-cache"], SCRIPT);
    assert_status(&output, 4);
    assert_eq!(required["cache"]["status"], "disabled");
    let left: Vec<_> = std::fs::read_dir(setup.cache_dir())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(left, ["VERSION"], "nothing was written into it");
}
