//! `hermetic drill poison` (docs/drills-poison.md): the drill passes on a correct local
//! cache and on a registry-backed one, leaving the real store byte for byte as it was and
//! the registry's real tags unchanged; it fails, naming the attack, when a test build
//! switches one restore check off; it reports a world-writable cache dir and an
//! unreadable trusted key.
#[path = "../support/mod.rs"]
mod support;

/// Each deployment's own daemon, which keeps the drill in its history.
#[allow(dead_code)] // the daemon suite uses more of it
#[path = "../daemon/fixture.rs"]
mod fixture;

/// Plain HTTP helpers and the registry the cache suite runs its remote tests against
/// (Debian's docker-registry on a free loopback port), shared with it.
#[allow(dead_code)] // the cache suite uses more of them
#[path = "../cache/remote/net.rs"]
mod net;
#[allow(dead_code)]
#[path = "../cache/remote/registry.rs"]
mod registry;

/// The drill in this process, over a restore whose key check a test switched off.
mod fault;
/// The drill on a local store, through the `hermetic` binary.
mod local;
/// The drill with a scratch repository on a real registry.
mod remote;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use hermetic_contract::report::{AttackOutcome, DrillKind, DrillReport};

use support::{hermetic, stderr, stdout, Source};

/// A cache dir holding one real entry (scope `main`), as a deployment's would, and the
/// state dir whose local key signed it.
pub struct Deployment {
    pub tmp: tempfile::TempDir,
    /// The daemon whose history the drill is kept in (killed on drop).
    pub daemon: fixture::Env,
}

impl Deployment {
    /// Builds the real entry (through the binary, as a deployment would).
    pub fn build() -> Deployment {
        let deployment = Deployment {
            tmp: tempfile::tempdir().unwrap(),
            daemon: fixture::Env::new(),
        };
        std::fs::create_dir(deployment.cache_dir()).unwrap();
        let src = Source::new(&[("in.txt", "a real entry\n")]);
        let built = hermetic()
            .args(["build", "--json", "--cache-scope", "main", "--src"])
            .arg(src.path())
            .arg("--artifact")
            .arg(deployment.tmp.path().join("real.tar.zst"))
            .arg("--cache-dir")
            .arg(deployment.cache_dir())
            .arg("--state-dir")
            .arg(deployment.state_dir())
            .args(["--", "sh", "-c", "mkdir -p out && cat in.txt > out/f"])
            .output()
            .unwrap();
        assert!(built.status.success(), "{}", stderr(&built));
        let report: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
        assert_eq!(report["cache"]["stored"], true, "{report:#}");
        deployment
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn report_path(&self) -> PathBuf {
        self.tmp.path().join("poison.json")
    }

    /// `hermetic drill poison` on this deployment with `extra` arguments.
    pub fn drill(&self, extra: &[&str]) -> (Output, DrillReport) {
        let output = self
            .daemon
            .hermetic()
            .args(["drill", "poison", "--cache-dir"])
            .arg(self.cache_dir())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--json")
            .arg(self.report_path())
            .args(extra)
            .output()
            .unwrap();
        let report = std::fs::read(self.report_path()).unwrap_or_else(|error| {
            panic!(
                "no report ({error}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
                output.status.code(),
                stdout(&output),
                stderr(&output)
            )
        });
        (output, serde_json::from_slice(&report).unwrap())
    }

    /// Nothing of the drill's scratch directory is left beside the cache dir.
    pub fn assert_no_scratch_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".hermetic-drill-"))
            .collect();
        assert!(left.is_empty(), "scratch left behind: {left:?}");
    }
}

/// Every path under `root` with its mode, owner and content (or symlink target), to show
/// that a tree is byte for byte what it was.
pub fn tree(root: &Path) -> Vec<(String, u32, u32, Vec<u8>)> {
    let mut seen = Vec::new();
    walk(root, root, &mut seen);
    seen.sort();
    seen
}

fn walk(root: &Path, dir: &Path, seen: &mut Vec<(String, u32, u32, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = if meta.is_dir() {
            Vec::new()
        } else if meta.is_symlink() {
            std::fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            std::fs::read(&path).unwrap()
        };
        seen.push((name, meta.mode(), meta.uid(), content));
        if meta.is_dir() {
            walk(root, &path, seen);
        }
    }
}

/// The report of a drill that passed: every attack of the catalog, in order (the local
/// ones, again on the entry the operator's key signed with `operator`, then the
/// registry's with `remote`), each refused at its expected step.
pub fn assert_passed(output: &Output, report: &DrillReport, operator: bool, remote: bool) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    assert_eq!(report.schema, "hermetic.drill/v1");
    assert_eq!(report.kind, DrillKind::Poison);
    assert!(report.passed);
    assert_eq!(report.exit_code, 0);
    assert!(report.cases.is_empty());
    let catalog = hermetic::drill::poison::catalog();
    let of = |target: &str, prefix: &str| -> Vec<(String, String)> {
        catalog
            .iter()
            .filter(|attack| attack.target == target)
            .map(|attack| (format!("{prefix}{}", attack.name), target.to_owned()))
            .collect()
    };
    let mut expected = of("local", "");
    if operator {
        expected.extend(of("local", "operator-key/"));
    }
    if remote {
        expected.extend(of("remote", ""));
    }
    let ran: Vec<(String, String)> = report
        .attacks
        .iter()
        .map(|attack| (attack.name.clone(), attack.target.clone()))
        .collect();
    assert_eq!(ran, expected);
    for attack in &report.attacks {
        assert_eq!(attack.outcome, AttackOutcome::Refused, "{attack:?}");
        assert_eq!(
            attack.refused_at.as_deref(),
            Some(attack.expected_step.as_str()),
            "{attack:?}"
        );
    }
    let summary = stdout(output);
    assert!(
        summary.contains(&format!(
            "poison drill {}: passed, all {} attacks refused",
            report.id,
            report.attacks.len()
        )),
        "{summary}"
    );
}
