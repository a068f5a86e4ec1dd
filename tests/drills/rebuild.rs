use std::process::Output;

use crate::fixture::Env;
use crate::plan::Drill;
use crate::support::{assert_status, require_cgroups, stderr, stdout};

/// A release: an archive built through the daemon with signed provenance, from the
/// drill's source, with the toolchain profile (its output is the toolchain's tool.txt and
/// the source's input.txt).
struct Release {
    env: Env,
    drill: Drill,
}

impl Release {
    fn new() -> Release {
        let env = Env::new();
        let drill = Drill::new();
        for prefix in ["release", "attacker"] {
            let output = env.output(
                env.hermetic()
                    .current_dir(drill.dir.path())
                    .env("HERMETIC_PASSWORD", "test password")
                    .args(["keygen", "--output-key-prefix", prefix]),
            );
            assert_status(&output, 0);
        }
        let script = format!(
            "mkdir -p out && cp {}/tool.txt out/ && cp input.txt out/",
            drill.toolchain.path().display()
        );
        let output = env.output(
            env.hermetic()
                .current_dir(drill.dir.path())
                .env("HERMETIC_PASSWORD", "test password")
                .args(["build", "--src", "src", "--profile", "toolchain.toml"])
                .args(["--artifact", "release.tar.zst", "--provenance", "prov.json"])
                .args(["--sign-key", "release.key", "--", "sh", "-c", &script]),
        );
        assert_status(&output, 0);
        Release { env, drill }
    }

    fn rebuild(&self, trust: &str, extra: &[&str]) -> (Output, serde_json::Value) {
        let output = self.env.output(
            self.env
                .hermetic()
                .current_dir(self.drill.dir.path())
                .args(["drill", "rebuild", "--bundle", "prov.json", "--src", "src"])
                .args(["--trust-key", trust, "--json"])
                .args(extra),
        );
        let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "{err}\n--- stdout\n{}\n--- stderr\n{}",
                stdout(&output),
                stderr(&output)
            )
        });
        (output, json)
    }

    fn job_count(&self) -> usize {
        let jobs = self
            .env
            .output(self.env.hermetic().args(["jobs", "--json"]));
        assert_status(&jobs, 0);
        let jobs: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
        jobs["jobs"].as_array().unwrap().len()
    }
}

#[test]
fn a_rebuild_of_the_same_inputs_is_good_and_of_a_changed_toolchain_bad_with_the_file() {
    require_cgroups();
    let release = Release::new();
    let (output, good) = release.rebuild("release.pub", &[]);
    assert_status(&output, 0);
    assert_eq!(good["verdict"], "good", "{good:#}");
    assert_eq!(good["rebuilt"]["sha256"], good["expected"]["sha256"]);

    // Same source, same profile bytes, another toolchain: what a rebuilder catches.
    release.drill.set_tool("tool version 2\n");
    let (output, bad) = release.rebuild("release.pub", &["--artifact", "release.tar.zst"]);
    assert_status(&output, 3);
    assert_eq!(bad["verdict"], "bad", "{bad:#}");
    assert_ne!(bad["rebuilt"]["sha256"], bad["expected"]["sha256"]);
    let differences: Vec<(&str, &str)> = bad["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), d["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(differences, [("out/tool.txt", "content")], "{bad:#}");
}

#[test]
fn a_rebuild_is_refused_for_an_untrusted_key_another_source_or_another_profile() {
    require_cgroups();
    let release = Release::new();
    let jobs = release.job_count();

    let (output, refused) = release.rebuild("attacker.pub", &[]);
    assert_status(&output, 4);
    assert_eq!(refused["verdict"], "refused");
    assert_eq!(refused["reason"], "untrusted_key", "{refused:#}");

    std::fs::write(release.drill.path("src/input.txt"), "other input\n").unwrap();
    let (output, refused) = release.rebuild("release.pub", &[]);
    assert_status(&output, 4);
    assert_eq!(refused["reason"], "source_mismatch", "{refused:#}");
    assert!(
        stderr(&output).contains("the statement records"),
        "{}",
        stderr(&output)
    );
    std::fs::write(release.drill.path("src/input.txt"), "input\n").unwrap();

    let profile = release.drill.path("toolchain.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, format!("{text}\n# edited\n")).unwrap();
    let (output, refused) = release.rebuild("release.pub", &[]);
    assert_status(&output, 4);
    assert_eq!(refused["reason"], "profile_mismatch", "{refused:#}");

    // Refusals come before building: no job was submitted.
    assert_eq!(release.job_count(), jobs);
}
