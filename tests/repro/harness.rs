//! Runs one corpus build through `hermetic build --json` (a dual run) and reads the report.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::support::hermetic;

/// The corpus: one directory per build, each with a `build.sh` run as `sh build.sh`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/repro/corpus")
}

/// The causes the noise pass can name: exactly one of them is reported per differing path
/// when the noise pass ran.
pub const NOISE_CAUSES: [&str; 2] = ["intrinsic-randomness", "variation-sensitive"];

/// A dual build of one corpus entry, configured before it runs.
pub struct Build {
    name: &'static str,
    args: Vec<String>,
    json: bool,
    path: Option<String>,
}

impl Build {
    pub fn new(name: &'static str) -> Build {
        Build {
            name,
            args: Vec::new(),
            json: true,
            path: None,
        }
    }

    /// `--profile NAME`.
    pub fn profile(mut self, name: &str) -> Build {
        self.args.extend(["--profile".into(), name.into()]);
        self
    }

    /// `--explain`.
    pub fn explain(mut self) -> Build {
        self.args.push("--explain".into());
        self
    }

    /// The CLI's `PATH` (the tools it looks for on the host, such as diffoscope; the
    /// build's own PATH is the profile's).
    pub fn host_path(mut self, path: &str) -> Build {
        self.path = Some(path.to_owned());
        self
    }

    /// Without `--json`: the human summary.
    pub fn human(mut self) -> Build {
        self.json = false;
        self
    }

    pub fn run(self) -> Dual {
        let src = corpus_dir().join(self.name);
        assert!(
            src.join("build.sh").is_file(),
            "no corpus build {}",
            src.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("hermetic-repro")
            .tempdir()
            .expect("create a temp dir");
        let artifact = dir.path().join(format!("{}.tar.zst", self.name));
        let mut command = hermetic();
        if let Some(path) = &self.path {
            command.env("PATH", path);
        }
        command.arg("build");
        if self.json {
            command.arg("--json");
        }
        let output = command
            .arg("--src")
            .arg(&src)
            .arg("--artifact")
            .arg(&artifact)
            .args(&self.args)
            .args(["--", "sh", "build.sh"])
            .stdin(Stdio::null())
            .output()
            .expect("spawn hermetic");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let report = if self.json {
            serde_json::from_str(&stdout).unwrap_or_else(|err| {
                panic!(
                    "{}: the report is not JSON ({err})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                    self.name
                )
            })
        } else {
            Value::Null
        };
        let dual = Dual {
            name: self.name,
            report,
            code: output.status.code(),
            artifact,
            dir,
            stdout,
            stderr,
        };
        if dual.json() {
            assert_eq!(
                dual.code,
                dual.report["exit_code"].as_i64().map(|c| c as i32),
                "{}: the exit status is not the report's exit_code\n{}",
                dual.name,
                dual.context()
            );
            assert_eq!(dual.report["schema"], "hermetic.build/v1");
            assert_eq!(dual.report["mode"], "dual");
        }
        dual
    }
}

/// A dual build that has run: its report, exit status and artifact directory.
pub struct Dual {
    pub name: &'static str,
    pub report: Value,
    pub code: Option<i32>,
    /// Where `--artifact` pointed (inside `dir`).
    pub artifact: PathBuf,
    /// The artifact's directory, removed on drop.
    pub dir: tempfile::TempDir,
    pub stdout: String,
    pub stderr: String,
}

impl Dual {
    fn json(&self) -> bool {
        !self.report.is_null()
    }

    /// The report and the build's log, for failure messages.
    pub fn context(&self) -> String {
        let report = if self.json() {
            serde_json::to_string_pretty(&self.report).unwrap_or_default()
        } else {
            self.stdout.clone()
        };
        format!(
            "--- report of {}\n{report}\n--- stderr\n{}",
            self.name, self.stderr
        )
    }

    pub fn verdict(&self) -> &str {
        self.report["verdict"].as_str().unwrap_or("(none)")
    }

    /// Names of the runs in the report, in order.
    pub fn run_names(&self) -> Vec<&str> {
        self.runs()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect()
    }

    pub fn runs(&self) -> &[Value] {
        self.report["runs"].as_array().map_or(&[], Vec::as_slice)
    }

    /// Each run's exit status (None where the sandbox failed).
    pub fn exit_statuses(&self) -> Vec<Option<i64>> {
        self.runs()
            .iter()
            .map(|r| r["exit_status"].as_i64())
            .collect()
    }

    pub fn differences(&self) -> &[Value] {
        self.report["differences"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    pub fn differing_paths(&self) -> BTreeSet<&str> {
        self.differences()
            .iter()
            .filter_map(|d| d["path"].as_str())
            .collect()
    }

    pub fn difference(&self, path: &str) -> &Value {
        self.differences()
            .iter()
            .find(|d| d["path"] == path)
            .unwrap_or_else(|| panic!("{path} does not differ\n{}", self.context()))
    }

    /// Every suspected cause recorded for `path`.
    pub fn causes_of(&self, path: &str) -> Vec<&Value> {
        self.report["suspected_causes"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|c| c["path"] == path)
            .collect()
    }

    /// The names of the causes recorded for `path`.
    pub fn cause_names(&self, path: &str) -> BTreeSet<&str> {
        self.causes_of(path)
            .into_iter()
            .filter_map(|c| c["cause"].as_str())
            .collect()
    }

    /// The `varied[].what` names.
    pub fn varied(&self) -> Vec<&str> {
        self.report["varied"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|v| v["what"].as_str())
            .collect()
    }

    /// How the varied run varied `what`.
    pub fn how(&self, what: &str) -> &str {
        self.report["varied"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["what"] == what))
            .and_then(|v| v["how"].as_str())
            .unwrap_or_else(|| panic!("{what} is not in varied[]\n{}", self.context()))
    }

    pub fn assert_verdict(&self, verdict: &str, code: i32) {
        assert_eq!(
            (self.verdict(), self.code),
            (verdict, Some(code)),
            "{}: wrong verdict\n{}",
            self.name,
            self.context()
        );
    }

    /// Reproducible: exit 0, runs a and b only, identical digests, nothing flagged.
    pub fn assert_reproducible(&self) {
        self.assert_verdict("reproducible", 0);
        assert_eq!(self.run_names(), ["a", "b"], "{}", self.context());
        assert_eq!(self.exit_statuses(), [Some(0), Some(0)]);
        assert_eq!(
            self.runs()[0]["output_digest"],
            self.runs()[1]["output_digest"]
        );
        assert_eq!(
            self.report["output"]["digest"],
            self.runs()[0]["output_digest"]
        );
        assert!(self.report["output"].get("flagged").is_none());
        assert!(
            self.report.get("differences").is_none(),
            "{}",
            self.context()
        );
        assert!(self.artifact.is_file());
    }

    /// Nondeterministic (exit 3) with exactly these differing paths; the noise pass ran.
    pub fn assert_nondeterministic(&self, paths: &[&str]) {
        self.assert_verdict("nondeterministic", 3);
        assert_eq!(
            self.differing_paths(),
            paths.iter().copied().collect(),
            "{}: wrong differing paths\n{}",
            self.name,
            self.context()
        );
        assert_eq!(self.run_names(), ["a", "b", "c"], "{}", self.context());
        assert_eq!(self.exit_statuses(), [Some(0), Some(0), Some(0)]);
        assert_eq!(self.report["output"]["flagged"], "nondeterministic");
        assert!(self.artifact.is_file());
    }

    /// Every one of `paths` has exactly the causes `causes`.
    pub fn assert_causes(&self, paths: &[&str], causes: &[&str]) {
        for path in paths {
            assert_eq!(
                self.cause_names(path),
                causes.iter().copied().collect(),
                "{}: wrong suspected causes of {path}\n{}",
                self.name,
                self.context()
            );
        }
    }

    /// The one cause the noise pass gave `path`.
    pub fn noise_cause(&self, path: &str) -> &str {
        let noise: Vec<&str> = self
            .cause_names(path)
            .into_iter()
            .filter(|c| NOISE_CAUSES.contains(c))
            .collect();
        assert_eq!(noise.len(), 1, "{path}: {noise:?}\n{}", self.context());
        noise[0]
    }

    /// The timestamp-leak cause of `path`, if one was found.
    pub fn timestamp_leak(&self, path: &str) -> Option<&Value> {
        self.causes_of(path)
            .into_iter()
            .find(|c| c["cause"] == "timestamp-leak")
    }

    /// The files left in the artifact's directory.
    pub fn artifact_dir_entries(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.dir.path())
            .expect("read the artifact dir")
            .map(|e| {
                e.expect("a dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

/// The regular files of one of our output archives (tar + zstd), path to content.
pub fn archived_files(archive: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(archive).expect("open the archive");
    let mut reader = tar::Archive::new(zstd::Decoder::new(file).expect("a zstd stream"));
    let mut files = std::collections::BTreeMap::new();
    for entry in reader.entries().expect("a tar stream") {
        let mut entry = entry.expect("a tar entry");
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().expect("a path").display().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("read an entry");
        files.insert(path, content);
    }
    files
}
