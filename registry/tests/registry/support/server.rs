//! A real registry (Debian's docker-registry, CNCF distribution 2.8.2) per test, on a
//! free loopback port, storing in a temporary directory, stopped by its guard.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hermetic_registry::{Digest, Repository};

const SETUP_HINT: &str = "run scripts/test-setup.sh (as root) to install the test dependencies";
const START_DEADLINE: Duration = Duration::from_secs(20);

pub struct RegistryServer {
    child: Option<Child>,
    authority: String,
    root: tempfile::TempDir,
}

/// Optional parts of the registry's configuration.
#[derive(Default)]
pub struct Options<'a> {
    /// Require this user and password (htpasswd, bcrypt) for every request.
    pub htpasswd: Option<(&'a str, &'a str)>,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<(&'a Path, &'a Path)>,
}

impl RegistryServer {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_with(Options {
            htpasswd: Some((user, password)),
            ..Options::default()
        })
    }

    pub fn start_with(options: Options<'_>) -> Self {
        let binary = find_program("docker-registry");
        let root = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let authority = format!("127.0.0.1:{port}");
        let auth = match options.htpasswd {
            None => String::new(),
            Some((user, password)) => {
                let htpasswd = root.path().join("htpasswd");
                write_htpasswd(&htpasswd, user, password);
                format!(
                    "auth:\n  htpasswd:\n    realm: hermetic-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
        };
        let tls = match options.tls {
            None => String::new(),
            Some((certificate, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certificate.display(),
                key.display()
            ),
        };
        let config = root.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {authority}\n  secret: hermetic-test\n{tls}\
                 {auth}",
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
        let mut server = RegistryServer {
            child: Some(child),
            authority,
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
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if api_root_answers(&self.authority) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {} within {START_DEADLINE:?}:\n{}",
            self.authority,
            self.log()
        );
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn repository(&self, name: &str) -> Repository {
        Repository::new(&self.authority, name).expect("test repository name")
    }

    pub fn temp_dir(&self) -> &Path {
        self.root.path()
    }

    /// Where the registry keeps a blob's bytes (manifests are blobs too).
    pub fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.digest();
        self.root
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's access log and errors.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("registry.log")).unwrap_or_default()
    }

    /// Access log lines for `METHOD /v2/<repository>/<path_prefix>`. A line is written
    /// as the handler returns, which may be just after the client saw the answer: wait
    /// (boundedly) for at least `at_least` of them.
    pub fn requests(
        &self,
        method: &str,
        repository: &str,
        path_prefix: &str,
        at_least: usize,
    ) -> usize {
        let needle = format!("\"{method} /v2/{repository}/{path_prefix}");
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let count = self
                .log()
                .lines()
                .filter(|line| line.contains(&needle))
                .count();
            if count >= at_least || Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
    std::fs::write(path, output.stdout).expect("write htpasswd file");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `GET /v2/` gets an HTTP answer: 200, 401 behind htpasswd, or the 400 a TLS server
/// gives to plain HTTP. Any of them means the registry is serving.
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
