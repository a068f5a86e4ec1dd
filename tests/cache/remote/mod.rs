//! The remote cache on a real OCI registry (docs/cache-format.md, "Remote cache (OCI
//! registry)"), through the `hermetic` binary: runners that share entries, attacks on the
//! registry's content, conflicts, outages, credentials and the `cache` commands.
//!
//! The fixture: a real registry per test ([`registry::RegistryServer`]: Debian's
//! docker-registry on a free loopback port, storage in a temporary directory), runners
//! (each with its own cache dir, state dir and credential files), signing keys made by
//! `hermetic keygen`, and the checks every refused remote entry must pass
//! ([`assert_refused`]).

/// Credentials from Docker and Podman auth files, against a registry behind htpasswd.
mod auth;
/// `hermetic cache push | pull | ls --remote | verify --remote`.
mod commands;
/// Two runners with different bytes for one key: reported, never overwritten.
mod conflict;
/// A runner pushes, another with an empty cache restores what it pushed.
mod fleet;
/// Plain HTTP helpers: a client, a scripted server and proxy, a listener that never answers.
pub mod net;
/// A registry that is down, failing or hanging never fails or hangs a build.
mod outage;
/// Attacks on the registry's content: each refused, quarantined, nothing touched.
mod poison;
/// The registry guard and the registry API calls the attacks use.
pub mod registry;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hermetic::signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use hermetic::signing::{sign_dsse, Bundle, Content, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::fixture::PREVIOUS_ARTIFACT;
use crate::support::{hermetic, stderr, stdout, Source};
use registry::{RegistryServer, RemoteEntry};

/// The repository prefix every test uses: scopes are `REPO/SCOPE`.
pub const REPO: &str = "hermetic/cache";
/// The trusted scope the runners share.
pub const SCOPE: &str = "main";
/// The password of every key `hermetic keygen` makes here (HERMETIC_PASSWORD).
pub const PASSWORD: &str = "remote cache test password";
/// A small reproducible build (as tests/cache/builds.rs's): its output depends on the
/// source's in.txt, so sources with different in.txt give different keys and entries.
pub const SCRIPT: &str = "mkdir -p out/sub && cat in.txt > out/sub/copy && echo built > out/flag";

/// A build that has not finished by then is killed and fails its test: far above any
/// build here (a few seconds each), so only a hang reaches it.
pub const BUILD_DEADLINE: Duration = Duration::from_secs(300);

/// `oci://HOST:PORT/REPO`.
pub fn remote_url(authority: &str) -> String {
    format!("oci://{authority}/{REPO}")
}

/// `REPO/SCOPE`, the registry repository of a scope.
pub fn repository(scope: &str) -> String {
    format!("{REPO}/{scope}")
}

/// `HOST/REPO/SCOPE:<key>`, how a quarantine record names a remote entry.
pub fn reference(authority: &str, key: &str) -> String {
    format!("{authority}/{REPO}/{SCOPE}:{key}")
}

pub fn source(input: &str) -> Source {
    Source::new(&[("in.txt", input)])
}

/// A key pair made by `hermetic keygen` with [`PASSWORD`].
pub struct Keys {
    pub key: PathBuf,
    pub public: PathBuf,
    _dir: tempfile::TempDir,
}

impl Keys {
    pub fn generate(name: &str) -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join(name);
        let output = hermetic()
            .args(["keygen", "--output-key-prefix"])
            .arg(&prefix)
            .env("HERMETIC_PASSWORD", PASSWORD)
            .output()
            .expect("spawn hermetic keygen");
        assert!(output.status.success(), "keygen: {}", stderr(&output));
        Keys {
            key: prefix.with_extension("key"),
            public: prefix.with_extension("pub"),
            _dir: dir,
        }
    }

    pub fn verifying(&self) -> VerifyingKey {
        VerifyingKey::from_pem(&std::fs::read_to_string(&self.public).unwrap()).unwrap()
    }

    /// The hex key id reports use for a signer.
    pub fn key_id(&self) -> String {
        self.verifying().key_id()
    }

    /// The base64 hint a bundle names its key by.
    pub fn hint(&self) -> String {
        self.verifying().hint()
    }

    pub fn signing(&self) -> SigningKey {
        SigningKey::from_pem(
            &std::fs::read_to_string(&self.key).unwrap(),
            Some(PASSWORD.as_bytes()),
        )
        .expect("the keygen key decrypts with the password")
    }
}

/// One build machine: its own cache dir, state dir (local key), credential files and
/// scratch space for artifacts.
pub struct Runner {
    tmp: tempfile::TempDir,
}

impl Runner {
    pub fn new() -> Runner {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["docker", "runtime", "home"] {
            std::fs::create_dir(tmp.path().join(dir)).unwrap();
        }
        Runner { tmp }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// `hermetic` with this runner's environment: the key password, and credential
    /// files only where this runner keeps them (its DOCKER_CONFIG, XDG_RUNTIME_DIR and
    /// HOME), so the machine's own never leak in.
    pub fn command(&self) -> Command {
        let mut command = hermetic();
        command
            .env("HERMETIC_PASSWORD", PASSWORD)
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("HOME", self.path("home"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("COSIGN_PASSWORD")
            .stdin(Stdio::null());
        command
    }

    /// Writes `$DOCKER_CONFIG/config.json` with basic auth for `authority`.
    pub fn docker_login(&self, authority: &str, user: &str, password: &str) {
        let auth = registry::basic_auth(user, password);
        let config = serde_json::json!({"auths": {authority: {"auth": auth}}});
        std::fs::write(
            self.path("docker/config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    pub fn build<'a>(&'a self, src: &'a Source) -> BuildCmd<'a> {
        BuildCmd {
            runner: self,
            src: src.path(),
            script: SCRIPT.to_owned(),
            artifact: "artifact.tar.zst".to_owned(),
            extract: None,
            scope: SCOPE.to_owned(),
            args: Vec::new(),
        }
    }

    /// `hermetic cache ARGS --cache-dir ... --state-dir ...`.
    pub fn cache(&self, args: &[&str]) -> Output {
        self.command()
            .arg("cache")
            .args(args)
            .arg("--cache-dir")
            .arg(self.cache_dir())
            .arg("--state-dir")
            .arg(self.state_dir())
            .output()
            .expect("spawn hermetic cache")
    }

    /// Every line of events.ndjson.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.cache_dir().join("events.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an event is one JSON object"))
            .collect()
    }

    pub fn quarantined(&self) -> Vec<PathBuf> {
        let Ok(dirs) = std::fs::read_dir(self.cache_dir().join("quarantine")) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = dirs.map(|dir| dir.unwrap().path()).collect();
        dirs.sort();
        dirs
    }

    /// The local store's directory for `key` in the shared scope.
    pub fn local_entry(&self, key: &str) -> PathBuf {
        self.cache_dir().join("scopes").join(SCOPE).join(key)
    }

    /// Files left in the store's tmp/ (entries being written).
    pub fn tmp_leftovers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.cache_dir().join("tmp"), &mut found);
        found
    }

    /// The names in the runner's own directory (artifacts, extract dirs and whatever
    /// a restore might leave beside them), without the cache and state dirs.
    pub fn workspace(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !["cache", "state", "docker", "runtime", "home"].contains(&&**name))
            .collect();
        names.sort();
        names
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        }
        found.push(path);
    }
}

/// Total bytes of the regular files under `dir`.
pub fn bytes_under(dir: &Path) -> u64 {
    let mut found = Vec::new();
    walk(dir, &mut found);
    found
        .iter()
        .filter_map(|path| std::fs::symlink_metadata(path).ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum()
}

/// `hermetic build --json` for a runner, set up step by step.
pub struct BuildCmd<'a> {
    runner: &'a Runner,
    src: &'a Path,
    script: String,
    artifact: String,
    extract: Option<String>,
    scope: String,
    args: Vec<OsString>,
}

impl BuildCmd<'_> {
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn remote(self, url: &str) -> Self {
        self.arg("--cache-remote").arg(url)
    }

    pub fn trust(self, keys: &Keys) -> Self {
        self.arg("--trust-key").arg(&keys.public)
    }

    pub fn sign(self, keys: &Keys) -> Self {
        self.arg("--sign-key").arg(&keys.key)
    }

    /// `--cache-push --sign-key KEY --trust-key PUB`: a runner that publishes (its key
    /// must be trusted for the scope, or it would not store at all).
    pub fn publish(self, keys: &Keys) -> Self {
        self.arg("--cache-push").sign(keys).trust(keys)
    }

    pub fn timeout(self, seconds: u64) -> Self {
        self.arg("--cache-remote-timeout").arg(seconds.to_string())
    }

    pub fn require_cache(self) -> Self {
        self.arg("--require-cache")
    }

    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_owned();
        self
    }

    pub fn script(mut self, script: &str) -> Self {
        self.script = script.to_owned();
        self
    }

    pub fn artifact(mut self, name: &str) -> Self {
        self.artifact = name.to_owned();
        self
    }

    pub fn extract(mut self, name: &str) -> Self {
        self.extract = Some(name.to_owned());
        self
    }

    pub fn profile(self, profile: &Path) -> Self {
        self.arg("--profile").arg(profile)
    }

    pub fn run(self) -> Built {
        self.prepare().run()
    }

    /// The command, ready to run later (from another thread).
    pub fn prepare(self) -> Prepared {
        let runner = self.runner;
        let artifact = runner.path(&self.artifact);
        let extract = self.extract.as_deref().map(|name| runner.path(name));
        let mut command = runner.command();
        command
            .args(["build", "--json", "--src"])
            .arg(self.src)
            .arg("--artifact")
            .arg(&artifact)
            .arg("--cache-dir")
            .arg(runner.cache_dir())
            .arg("--state-dir")
            .arg(runner.state_dir())
            .args(["--cache-scope", &self.scope]);
        if let Some(extract) = &extract {
            command.arg("--extract").arg(extract);
        }
        command
            .args(&self.args)
            .args(["--", "sh", "-c", &self.script]);
        Prepared {
            command,
            artifact,
            extract,
        }
    }
}

/// A build command ready to run.
pub struct Prepared {
    command: Command,
    artifact: PathBuf,
    extract: Option<PathBuf>,
}

impl Prepared {
    /// Runs the build; one still running after [`BUILD_DEADLINE`] is killed and the test
    /// fails (a hung build must fail the suite, not hang it).
    pub fn run(mut self) -> Built {
        let started = Instant::now();
        let mut child = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hermetic build");
        let drain = |mut stream: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = stream.read_to_end(&mut bytes);
                bytes
            })
        };
        let out = drain(Box::new(child.stdout.take().unwrap()));
        let err = drain(Box::new(child.stderr.take().unwrap()));
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for hermetic build") {
                break status;
            }
            if started.elapsed() > BUILD_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                // Its output is not awaited: a leftover child may hold the pipes.
                panic!("hermetic build still running after {BUILD_DEADLINE:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let elapsed = started.elapsed();
        let output = Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        };
        let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        Built {
            output,
            report,
            elapsed,
            artifact: self.artifact,
            extract: self.extract,
        }
    }
}

/// What a build did: its exit, its report, how long it took and where it wrote.
pub struct Built {
    pub output: Output,
    pub report: Value,
    pub elapsed: Duration,
    pub artifact: PathBuf,
    pub extract: Option<PathBuf>,
}

impl Built {
    pub fn cache(&self) -> &Value {
        &self.report["cache"]
    }

    pub fn remote(&self) -> &Value {
        &self.report["cache"]["remote"]
    }

    pub fn key(&self) -> String {
        self.cache()["key"]
            .as_str()
            .unwrap_or_else(|| panic!("a cache key in the report: {}", self.describe()))
            .to_owned()
    }

    /// The archive's digests (`output.digest`).
    pub fn digest(&self) -> &Value {
        &self.report["output"]["digest"]
    }

    pub fn runs(&self) -> usize {
        self.report["runs"].as_array().map_or(0, Vec::len)
    }

    /// The report's cache part and the process's streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- cache\n{:#}\n--- stderr\n{}\n--- stdout (head)\n{}",
            self.output.status.code(),
            self.report["cache"],
            stderr(&self.output),
            stdout(&self.output).chars().take(2000).collect::<String>()
        )
    }

    pub fn assert_exit(&self, code: i32) -> &Self {
        assert_eq!(
            self.output.status.code(),
            Some(code),
            "unexpected exit\n{}",
            self.describe()
        );
        self
    }
}

/// A registry and the runners that share it: A publishes with its key, B only reads and
/// trusts A's key, and both build the same source.
pub struct Fleet {
    pub registry: RegistryServer,
    pub keys: Keys,
    pub a: Runner,
    pub b: Runner,
    pub src: Source,
}

/// An entry A built and pushed: its report, archive and what the registry holds.
pub struct Pushed {
    pub built: Built,
    pub key: String,
    pub archive: Vec<u8>,
    pub entry: RemoteEntry,
}

impl Fleet {
    pub fn new() -> Fleet {
        Fleet {
            registry: RegistryServer::start(),
            keys: Keys::generate("a"),
            a: Runner::new(),
            b: Runner::new(),
            src: source("input\n"),
        }
    }

    pub fn url(&self) -> String {
        remote_url(self.registry.authority())
    }

    pub fn repository(&self) -> String {
        repository(SCOPE)
    }

    pub fn reference(&self, key: &str) -> String {
        reference(self.registry.authority(), key)
    }

    /// A builds `src` with --cache-push and its key: a reproducible miss, stored and
    /// pushed.
    pub fn push_from_a(&self, src: &Source) -> Pushed {
        let built = self.a.build(src).remote(&self.url()).publish(&self.keys);
        push(built, &self.registry)
    }

    /// A build of `src` by B: the registry as its remote, A's key as its only trusted key.
    pub fn b_build<'a>(&'a self, src: &'a Source) -> BuildCmd<'a> {
        self.b.build(src).remote(&self.url()).trust(&self.keys)
    }

    /// The attack's aftermath in one: B's `--require-cache` build of `src` is refused
    /// (see [`assert_refused`]), B's next build runs fresh and makes `pushed`'s output,
    /// and the registry still holds what it held after the attack.
    pub fn assert_b_refuses(
        &self,
        src: &Source,
        pushed: &Pushed,
        step: &str,
        reason: &str,
    ) -> Refused {
        let tag_digest = self
            .registry
            .api()
            .entry(&self.repository(), &pushed.key)
            .expect("the attacked tag")
            .digest;
        let tagged = self
            .registry
            .api()
            .manifest(&self.repository(), &pushed.key)
            .unwrap();
        let refused = assert_refused(
            &self.b,
            self.b_build(src),
            &self.reference(&pushed.key),
            &pushed.key,
            step,
            reason,
        );
        assert!(
            refused.holds(&tagged),
            "the quarantine keeps the entry manifest that was fetched: {:?}",
            refused.files()
        );
        assert_fresh_build(self.b_build(src), pushed);
        assert_registry_kept(&self.registry, &pushed.key, &tag_digest);
        refused
    }
}

/// Runs a build that publishes (`--cache-push` and a signing key) and checks it was a
/// reproducible miss, stored and pushed; returns it with what the registry now holds.
pub fn push(build: BuildCmd<'_>, registry: &RegistryServer) -> Pushed {
    let scope = build.scope.clone();
    let name = format!(
        "pushed-{}.tar.zst",
        build.src.file_name().unwrap().to_string_lossy()
    );
    let built = build.artifact(&name).run();
    built.assert_exit(0);
    assert_eq!(
        built.report["verdict"],
        "reproducible",
        "{}",
        built.describe()
    );
    assert_eq!(built.cache()["stored"], true, "{}", built.describe());
    assert_eq!(built.remote()["push"], "pushed", "{}", built.describe());
    let key = built.key();
    let entry = registry
        .api()
        .entry(&repository(&scope), &key)
        .expect("the pushed entry is tagged with its key");
    let archive = std::fs::read(&built.artifact).unwrap();
    Pushed {
        built,
        key,
        archive,
        entry,
    }
}

/// A `--require-cache` build against a poisoned remote entry (`build` has the remote and
/// trust set up): it exits 4 without building; the report says `quarantined` at `step`
/// for `reason`; the artifact from an earlier build is unchanged, the --extract dir was
/// not created and nothing else appeared beside them; whatever was fetched is in
/// `<cache-dir>/quarantine/<nanos>-main-<key>/` with a reason.json naming the remote
/// source and reference; events.ndjson has a `cache_quarantine` event with
/// `"source": "remote"`; nothing was committed to the local store or left in tmp/.
/// Returns reason.json and the quarantine dir.
pub fn assert_refused(
    runner: &Runner,
    build: BuildCmd<'_>,
    reference: &str,
    key: &str,
    step: &str,
    reason: &str,
) -> Refused {
    std::fs::write(runner.path("refused.tar.zst"), PREVIOUS_ARTIFACT).unwrap();
    let quarantined_before = runner.quarantined();
    let workspace_before = runner.workspace();
    let built = build
        .artifact("refused.tar.zst")
        .extract("refused-tree")
        .require_cache()
        .run();
    built.assert_exit(4);
    let cache = built.cache();
    assert_eq!(cache["status"], "quarantined", "{}", built.describe());
    assert_eq!(cache["step"], step, "{}", built.describe());
    assert_eq!(
        built.remote()["status"],
        "quarantined",
        "{}",
        built.describe()
    );
    let reported = built.remote()["reason"].as_str().unwrap_or_default();
    assert!(
        reported.contains(reason),
        "cache.remote.reason names {reason}\n{}",
        built.describe()
    );
    assert_eq!(built.runs(), 0, "nothing ran\n{}", built.describe());

    // The destination: untouched.
    assert_eq!(
        std::fs::read(runner.path("refused.tar.zst")).unwrap(),
        PREVIOUS_ARTIFACT,
        "the artifact from an earlier build was overwritten"
    );
    assert!(
        !runner.path("refused-tree").exists(),
        "the --extract dir was created"
    );
    assert_eq!(
        runner.workspace(),
        workspace_before,
        "something was left beside the destination"
    );

    // Quarantined locally, with the remote source named.
    let new: Vec<PathBuf> = runner
        .quarantined()
        .into_iter()
        .filter(|dir| !quarantined_before.contains(dir))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "one quarantine dir: {new:?}\n{}",
        built.describe()
    );
    let dir = &new[0];
    let name = dir.file_name().unwrap().to_str().unwrap();
    assert!(
        name.ends_with(&format!("-{SCOPE}-{key}")),
        "quarantine dir name {name}"
    );
    assert_eq!(
        cache["quarantine"],
        dir.to_str().unwrap(),
        "{}",
        built.describe()
    );
    let record: Value = serde_json::from_slice(
        &std::fs::read(dir.join("reason.json")).expect("reason.json in the quarantine dir"),
    )
    .expect("reason.json is JSON");
    assert_eq!(
        record["schema"], "hermetic.cache-quarantine/v1",
        "{record:#}"
    );
    assert_eq!(record["source"], "remote", "{record:#}");
    assert_eq!(record["reference"], reference, "{record:#}");
    assert_eq!(record["key"], key, "{record:#}");
    assert_eq!(record["scope"], SCOPE, "{record:#}");
    assert_eq!(record["step"], step, "{record:#}");
    assert_eq!(record["reason"], reason, "{record:#}");
    assert!(
        record["time"].as_str().unwrap().ends_with('Z'),
        "{record:#}"
    );
    assert!(
        !record["message"].as_str().unwrap().is_empty(),
        "{record:#}"
    );

    let event = runner
        .events()
        .into_iter()
        .rev()
        .find(|event| event["event"] == "cache_quarantine")
        .expect("a cache_quarantine event");
    assert_eq!(event["schema"], "hermetic.event/v1", "{event}");
    assert_eq!(event["source"], "remote", "{event}");
    assert_eq!(event["reference"], reference, "{event}");
    assert_eq!(event["key"], key, "{event}");
    assert_eq!(event["reason"], reason, "{event}");
    assert_eq!(event["step"], step, "{event}");
    assert_eq!(event["path"], dir.to_str().unwrap(), "{event}");

    assert!(
        !runner.local_entry(key).exists(),
        "a refused entry reached the local store"
    );
    assert_eq!(
        runner.tmp_leftovers(),
        Vec::<PathBuf>::new(),
        "tmp/ leftovers"
    );
    Refused {
        record,
        dir: dir.clone(),
    }
}

/// A refused remote entry's quarantine record and directory.
pub struct Refused {
    pub record: Value,
    pub dir: PathBuf,
}

impl Refused {
    /// The files kept in the quarantine dir besides reason.json.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.dir, &mut found);
        found.retain(|path| path.is_file() && !path.ends_with("reason.json"));
        found
    }

    /// Whether one of the kept files has exactly these bytes.
    pub fn holds(&self, bytes: &[u8]) -> bool {
        self.files()
            .iter()
            .any(|path| std::fs::read(path).is_ok_and(|kept| kept == bytes))
    }
}

/// The build after a refusal runs fresh and right: exit 0, both runs ran, the output
/// is `expected`'s, byte for byte.
pub fn assert_fresh_build(build: BuildCmd<'_>, expected: &Pushed) -> Built {
    let built = build.artifact("fresh.tar.zst").run();
    built.assert_exit(0);
    assert_eq!(built.runs(), 2, "the build ran\n{}", built.describe());
    assert_eq!(built.report["verdict"], "reproducible");
    assert_eq!(
        built.digest(),
        expected.built.digest(),
        "{}",
        built.describe()
    );
    assert_eq!(std::fs::read(&built.artifact).unwrap(), expected.archive);
    built
}

/// A refused entry is never deleted from the registry: the tag still names the same
/// manifest, and the blobs it lists are still there.
pub fn assert_registry_kept(registry: &RegistryServer, key: &str, tag_digest: &str) {
    let repository = repository(SCOPE);
    let entry = registry
        .api()
        .entry(&repository, key)
        .expect("the refused entry's tag is still there");
    assert_eq!(entry.digest, tag_digest, "the tag moved");
    for layer in entry.json["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert!(
            registry.api().has_blob(&repository, digest),
            "blob {digest} was deleted"
        );
    }
}

/// The entry manifest the spec prescribes for an archive, key and scope, byte for byte
/// (compact JSON, keys in the documented order).
pub fn expected_manifest(archive: &[u8], key: &str, scope: &str) -> Vec<u8> {
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"artifactType\":\"application/vnd.hermetic.cache-entry.v1\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\
         \"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\
         \"size\":2,\"data\":\"e30=\"}},\
         \"layers\":[{{\"mediaType\":\"application/vnd.hermetic.archive.v1.tar+zstd\",\
         \"digest\":\"{}\",\"size\":{}}}],\
         \"annotations\":{{\"dev.hermetic.cache.format\":\"hermetic.cache-remote/v1\",\
         \"dev.hermetic.cache.key\":\"{key}\",\"dev.hermetic.cache.scope\":\"{scope}\"}}}}",
        registry::sha256(archive),
        archive.len()
    )
    .into_bytes()
}

/// The entry's signed statement (the DSSE payload of its bundle), as JSON.
pub fn statement_of(bundle: &[u8]) -> Value {
    let bundle = Bundle::from_json(bundle).expect("a bundle");
    let Content::Dsse(envelope) = bundle.content else {
        panic!("an entry bundle is DSSE")
    };
    serde_json::from_slice(&envelope.payload).expect("the statement is JSON")
}

/// Signs `statement` as an entry statement with `key`: what the holder of that key (a
/// compromised or buggy builder, or an attacker with their own key) can publish.
pub fn sign_statement(key: &SigningKey, statement: &Value) -> Vec<u8> {
    sign_dsse(
        key,
        IN_TOTO_PAYLOAD_TYPE,
        &serde_json::to_vec(statement).unwrap(),
    )
    .to_json()
    .into_bytes()
}

/// The statement of `bundle` with its entry-manifest subject (the one that is not the
/// archive) now naming `manifest_digest`.
pub fn statement_for_manifest(bundle: &[u8], manifest_digest: &str) -> Value {
    let mut statement = statement_of(bundle);
    let subjects = statement["subject"].as_array_mut().expect("subjects");
    let manifest = subjects
        .iter_mut()
        .find(|subject| subject["name"] != "archive.tar.zst")
        .expect("an entry-manifest subject");
    manifest["digest"]["sha256"] = registry::hex_of(manifest_digest).into();
    statement
}
