use std::path::{Path, PathBuf};
use std::process::Output;

use crate::fixture::Env;
use crate::support::{assert_status, default_profile_text, stderr, stdout};

/// A drill plan in a temp dir, beside its source and a toolchain: a directory outside
/// /tmp (the sandbox has its own /tmp) that a copy of the default profile binds
/// read-only. The profile's bytes, and with them the cache key, name the directory but
/// not its files: changing `tool.txt` changes a build's output under the same key, which
/// is what a host toolchain update looks like to a drill.
pub struct Drill {
    pub dir: tempfile::TempDir,
    pub toolchain: tempfile::TempDir,
}

impl Drill {
    pub fn new() -> Drill {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("hermetic-drill-test")
            .tempdir()
            .unwrap();
        let toolchain = tempfile::Builder::new()
            .prefix("hermetic-drill-toolchain")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::set_permissions(toolchain.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/input.txt"), "input\n").unwrap();
        let profile = default_profile_text().replacen(
            "binds = [",
            &format!("binds = [\"{}\", ", toolchain.path().display()),
            1,
        );
        std::fs::write(dir.path().join("toolchain.toml"), profile).unwrap();
        let drill = Drill { dir, toolchain };
        drill.set_tool("tool version 1\n");
        drill
    }

    pub fn set_tool(&self, content: &str) {
        std::fs::write(self.toolchain.path().join("tool.txt"), content).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `plan.toml` with these cases (each a TOML table body without the header).
    pub fn plan(&self, cases: &[&str]) -> PathBuf {
        let mut text = String::from("version = 1\n");
        for case in cases {
            text.push_str("\n[[case]]\n");
            text.push_str(case);
            text.push('\n');
        }
        let path = self.path("plan.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A case building `script` from `src` with the default profile.
    pub fn case(name: &str, script: &str) -> String {
        format!(
            "name = \"{name}\"\nsrc = \"src\"\ncommand = [\"sh\", \"-c\", {}]",
            toml_string(script)
        )
    }

    /// A case whose output is the toolchain's `tool.txt`, with the toolchain profile.
    pub fn tool_case(&self) -> String {
        format!(
            "name = \"tool\"\nsrc = \"src\"\nprofile = \"toolchain.toml\"\ncommand = [\"sh\", \"-c\", {}]",
            toml_string(&format!(
                "mkdir -p out && cp {}/tool.txt out/",
                self.toolchain.path().display()
            ))
        )
    }

    /// `hermetic drill run PLAN --runner RUNNER` with every report, into `prefix.*`.
    pub fn run(&self, env: &Env, runner: &str, prefix: &str) -> (Output, serde_json::Value) {
        let report = self.path(&format!("{prefix}.json"));
        let output = env.output(
            env.hermetic()
                .args(["drill", "run"])
                .arg(self.path("plan.toml"))
                .args(["--runner", runner, "--json"])
                .arg(&report)
                .arg("--junit")
                .arg(self.path(&format!("{prefix}.xml")))
                .arg("--markdown")
                .arg(self.path(&format!("{prefix}.md")))
                .arg("--html")
                .arg(self.path(&format!("{prefix}.html"))),
        );
        let text = std::fs::read_to_string(&report).unwrap_or_else(|err| {
            panic!(
                "no report {}: {err}\n--- stdout\n{}\n--- stderr\n{}",
                report.display(),
                stdout(&output),
                stderr(&output)
            )
        });
        (output, serde_json::from_str(&text).unwrap())
    }
}

/// The case of `report` named `name`.
pub fn case<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {report:#}"))
}

/// `hermetic drill record REPORT`, which must succeed.
pub fn record(env: &Env, dir: &Path, report: &serde_json::Value) {
    let path = dir.join(format!("{}.json", report["id"].as_str().unwrap()));
    std::fs::write(&path, report.to_string()).unwrap();
    let output = env.output(env.hermetic().args(["drill", "record"]).arg(&path));
    assert_status(&output, 0);
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}
