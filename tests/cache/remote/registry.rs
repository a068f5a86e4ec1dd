//! A real registry (Debian's docker-registry, CNCF distribution 2.8.2) per test, on a free
//! loopback port, storing in a temporary directory, stopped by its guard (the approach of
//! registry/tests/registry/support/server.rs); and the registry API calls the attacks
//! use: read and write manifests, tags, blobs and the referrers tag index, as anyone with
//! write access to the registry (or its disk) could.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest as _;

use super::net::{request, Response};

const SETUP_HINT: &str = "run scripts/test-setup.sh (as root) to install the test dependencies";
const START_DEADLINE: Duration = Duration::from_secs(20);

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const ARCHIVE_TYPE: &str = "application/vnd.hermetic.archive.v1.tar+zstd";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The hex part of `sha256:<hex>`.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

pub struct RegistryServer {
    child: Option<Child>,
    api: Registry,
    root: tempfile::TempDir,
}

impl RegistryServer {
    pub fn start() -> Self {
        Self::start_with(None, true)
    }

    /// A registry that refuses deletion (405), as Debian's docker-registry does unless
    /// `storage.delete.enabled` (REGISTRY_STORAGE_DELETE_ENABLED) is set.
    #[allow(dead_code)] // only tests/drill_poison uses it
    pub fn start_without_deletion() -> Self {
        Self::start_with(None, false)
    }

    /// Every request needs this user and password (htpasswd, bcrypt).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_with(Some((user, password)), true)
    }

    fn start_with(htpasswd: Option<(&str, &str)>, deletion: bool) -> Self {
        let binary = find_program("docker-registry");
        let root = tempfile::tempdir().expect("temporary directory");
        let authority = format!("127.0.0.1:{}", free_port());
        let auth = match htpasswd {
            None => String::new(),
            Some((user, password)) => {
                let file = root.path().join("htpasswd");
                write_htpasswd(&file, user, password);
                format!(
                    "auth:\n  htpasswd:\n    realm: hermetic-test\n    path: {}\n",
                    file.display()
                )
            }
        };
        let config = root.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {deletion}\n\
                 http:\n  addr: {authority}\n  secret: hermetic-test\n{auth}",
                root.path().join("data").display()
            ),
        )
        .expect("write the registry config");
        let log = std::fs::File::create(root.path().join("registry.log")).expect("log file");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let basic = htpasswd.map(|(user, password)| basic_auth(user, password));
        let mut server = RegistryServer {
            child: Some(child),
            api: Registry { authority, basic },
            root,
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if api_root_answers(&self.api.authority) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "docker-registry did not answer on {} within {START_DEADLINE:?}:\n{}",
            self.api.authority,
            self.log()
        );
    }

    pub fn authority(&self) -> &str {
        &self.api.authority
    }

    /// The registry API, with the registry's credentials when it has some.
    pub fn api(&self) -> &Registry {
        &self.api
    }

    /// Where the registry keeps a blob's bytes (manifests are blobs too).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = hex_of(digest);
        self.root
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("registry.log")).unwrap_or_default()
    }

    /// Kills the registry now (the guard would at the end of the test).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails (does not skip) when a test dependency is missing.
pub fn find_program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: {SETUP_HINT}"))
}

fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let output = Command::new(find_program("htpasswd"))
        .args(["-Bbn", user, password])
        .output()
        .expect("run htpasswd");
    assert!(output.status.success(), "htpasswd failed: {output:?}");
    std::fs::write(path, output.stdout).expect("write the htpasswd file");
}

pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `GET /v2/` gets an HTTP answer (200, or 401 behind htpasswd): the registry serves.
fn api_root_answers(authority: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(authority) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = [0; 12];
    stream.read_exact(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.")
}

/// An entry as the registry holds it: the manifest under the key's tag, its one layer,
/// and the referrers listed in the tag-schema index.
pub struct RemoteEntry {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub json: Value,
    pub archive: String,
    pub archive_size: u64,
    pub referrers: Vec<Referrer>,
}

pub struct Referrer {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub json: Value,
    pub bundle: Vec<u8>,
}

impl RemoteEntry {
    /// The descriptor of this entry's manifest, as a referrer's `subject`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": OCI_MANIFEST, "digest": self.digest, "size": self.manifest.len()})
    }

    /// The one signature bundle pushed with the entry.
    pub fn bundle(&self) -> &[u8] {
        assert_eq!(self.referrers.len(), 1, "one signature referrer");
        &self.referrers[0].bundle
    }
}

/// The registry's HTTP API (plain HTTP on loopback).
pub struct Registry {
    pub authority: String,
    /// `user:password` in base64, sent as Basic auth when set.
    pub basic: Option<String>,
}

impl Registry {
    pub fn call(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let authorization = self.basic.as_ref().map(|basic| format!("Basic {basic}"));
        let mut all = headers.to_vec();
        if let Some(authorization) = &authorization {
            all.push(("Authorization", authorization));
        }
        request(&self.authority, method, target, &all, body)
    }

    /// The manifest (or index) under a tag or digest; None on 404.
    pub fn manifest(&self, repository: &str, reference: &str) -> Option<Vec<u8>> {
        let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}");
        let response = self.call(
            "GET",
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Accept", &accept)],
            b"",
        );
        match response.status {
            200 => Some(response.body),
            404 => None,
            status => panic!(
                "GET manifest {repository}:{reference}: {status} {}",
                response.text()
            ),
        }
    }

    pub fn put_manifest(&self, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let response = self.call(
            "PUT",
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        );
        assert_eq!(
            response.status,
            201,
            "PUT manifest {repository}:{reference}: {}",
            response.text()
        );
    }

    /// Uploads bytes as a blob (POST, then one PUT ?digest=) and returns its digest.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let started = self.call(
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            b"",
        );
        assert_eq!(started.status, 202, "start an upload: {}", started.text());
        let location = started.header("location").expect("an upload location");
        let location = location
            .strip_prefix(&format!("http://{}", self.authority))
            .unwrap_or(location);
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self.call(
            "PUT",
            &format!("{location}{separator}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(done.status, 201, "finish an upload: {}", done.text());
        digest
    }

    /// Mounts a blob from another repository of this registry.
    pub fn mount_blob(&self, to: &str, from: &str, digest: &str) {
        let response = self.call(
            "POST",
            &format!("/v2/{to}/blobs/uploads/?mount={digest}&from={from}"),
            &[],
            b"",
        );
        assert_eq!(response.status, 201, "mount {digest}: {}", response.text());
    }

    pub fn blob(&self, repository: &str, digest: &str) -> Option<Vec<u8>> {
        let response = self.call("GET", &format!("/v2/{repository}/blobs/{digest}"), &[], b"");
        match response.status {
            200 => Some(response.body),
            404 => None,
            status => panic!("GET blob {digest}: {status} {}", response.text()),
        }
    }

    pub fn has_blob(&self, repository: &str, digest: &str) -> bool {
        let status = self
            .call(
                "HEAD",
                &format!("/v2/{repository}/blobs/{digest}"),
                &[],
                b"",
            )
            .status;
        assert!(
            status == 200 || status == 404,
            "HEAD blob {digest}: {status}"
        );
        status == 200
    }

    pub fn tags(&self, repository: &str) -> Vec<String> {
        let response = self.call("GET", &format!("/v2/{repository}/tags/list"), &[], b"");
        if response.status == 404 {
            return Vec::new();
        }
        assert_eq!(response.status, 200, "tags: {}", response.text());
        let listing: Value = serde_json::from_slice(&response.body).unwrap();
        let mut tags: Vec<String> = listing["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .map(|tag| tag.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The referrers tag-schema index of a manifest (`sha256-<hex>`), if any.
    pub fn referrers_index(&self, repository: &str, digest: &str) -> Option<Value> {
        self.manifest(repository, &referrers_tag(digest))
            .map(|bytes| serde_json::from_slice(&bytes).expect("the index is JSON"))
    }

    /// The entry under `key`'s tag, with its referrers and their bundles.
    pub fn entry(&self, repository: &str, key: &str) -> Option<RemoteEntry> {
        let manifest = self.manifest(repository, key)?;
        let digest = sha256(&manifest);
        let json: Value = serde_json::from_slice(&manifest).expect("the manifest is JSON");
        let layer = &json["layers"][0];
        let archive = layer["digest"].as_str().expect("a layer").to_owned();
        let archive_size = layer["size"].as_u64().expect("a layer size");
        let mut referrers = Vec::new();
        if let Some(index) = self.referrers_index(repository, &digest) {
            for listed in index["manifests"].as_array().expect("an index") {
                let referrer_digest = listed["digest"].as_str().unwrap().to_owned();
                let bytes = self
                    .manifest(repository, &referrer_digest)
                    .expect("a listed referrer exists");
                let referrer: Value = serde_json::from_slice(&bytes).unwrap();
                let bundle_digest = referrer["layers"][0]["digest"].as_str().unwrap();
                let bundle = self
                    .blob(repository, bundle_digest)
                    .expect("the bundle blob exists");
                referrers.push(Referrer {
                    manifest: bytes,
                    digest: referrer_digest,
                    json: referrer,
                    bundle,
                });
            }
        }
        Some(RemoteEntry {
            manifest,
            digest,
            json,
            archive,
            archive_size,
            referrers,
        })
    }

    /// Makes `bundle` a signature referrer of the manifest `subject` (a descriptor), the
    /// way the cache attaches one, and lists it in the subject's referrers index:
    /// alone (`replace`) or after the ones already listed. Returns the referrer's digest.
    pub fn attach_referrer(
        &self,
        repository: &str,
        subject: &Value,
        bundle: &[u8],
        replace: bool,
    ) -> String {
        let config = self.put_blob(repository, EMPTY_CONFIG);
        let layer = self.put_blob(repository, bundle);
        let annotations = json!({
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": "urn:hermetic:cache-entry:v1",
        });
        let referrer = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_TYPE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config,
                       "size": 2, "data": "e30="},
            "layers": [{"mediaType": BUNDLE_TYPE, "digest": layer, "size": bundle.len()}],
            "subject": subject,
            "annotations": annotations,
        });
        let bytes = serde_json::to_vec(&referrer).unwrap();
        let digest = sha256(&bytes);
        self.put_manifest(repository, &digest, OCI_MANIFEST, &bytes);
        let descriptor = json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": bytes.len(),
            "artifactType": BUNDLE_TYPE,
            "annotations": annotations,
        });
        let subject_digest = subject["digest"].as_str().unwrap();
        let mut listed = match self.referrers_index(repository, subject_digest) {
            Some(index) if !replace => index["manifests"].as_array().unwrap().clone(),
            _ => Vec::new(),
        };
        listed.push(descriptor);
        self.put_referrers_index(repository, subject_digest, &listed);
        digest
    }

    /// Writes the referrers index of `subject_digest` with exactly these descriptors.
    pub fn put_referrers_index(&self, repository: &str, subject_digest: &str, listed: &[Value]) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
        self.put_manifest(
            repository,
            &referrers_tag(subject_digest),
            OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        );
    }

    /// Copies an entry (manifest under its tag, config and layer blobs, its referrers and
    /// their blobs, the referrers index) from one repository to another with plain API
    /// calls: what a writer of both repositories could do.
    pub fn copy_entry(&self, from: &str, to: &str, key: &str) {
        let entry = self.entry(from, key).expect("the entry to copy");
        self.copy_blobs_of(&entry.json, from, to);
        self.put_manifest(to, key, OCI_MANIFEST, &entry.manifest);
        for referrer in &entry.referrers {
            self.copy_blobs_of(&referrer.json, from, to);
            self.put_manifest(to, &referrer.digest, OCI_MANIFEST, &referrer.manifest);
        }
        let tag = referrers_tag(&entry.digest);
        let index = self.manifest(from, &tag).expect("a referrers index");
        self.put_manifest(to, &tag, OCI_INDEX, &index);
    }

    fn copy_blobs_of(&self, manifest: &Value, from: &str, to: &str) {
        let config = manifest["config"]["digest"].as_str().unwrap();
        self.mount_blob(to, from, config);
        for layer in manifest["layers"].as_array().unwrap() {
            self.mount_blob(to, from, layer["digest"].as_str().unwrap());
        }
    }
}

pub fn referrers_tag(digest: &str) -> String {
    format!("sha256-{}", hex_of(digest))
}
