//! `kill -9` at each step of store, restore, quarantine and gc: the engine's debug builds
//! kill themselves with SIGKILL at the step `HERMETIC_TEST_CRASH_AT` names
//! (engine/src/test_hooks.rs). Afterwards the store holds whole entries or none, the
//! destination the whole tree or nothing, a tampered entry is never restored, and the
//! next run clears what the killed one left in `tmp/` and works.
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::builds::{Setup, SCRIPT};
use crate::support::assert_status;

/// The cache tests' setup, with a crash point to stop at.
trait Crashing {
    fn build_stopping(
        &self,
        artifact: &str,
        extract: Option<&str>,
        crash_at: Option<&str>,
    ) -> Output;
    fn cache_stopping(&self, args: &[&str], crash_at: Option<&str>) -> Output;
    fn entry_dirs(&self) -> Vec<PathBuf>;
    fn assert_every_entry_whole(&self);
    fn tmp_leftovers(&self) -> Vec<String>;
}

impl Crashing for Setup {
    fn build_stopping(
        &self,
        artifact: &str,
        extract: Option<&str>,
        crash_at: Option<&str>,
    ) -> Output {
        let extract = extract.map(|dir| self.path(dir));
        let extra: Vec<&str> = match &extract {
            Some(dir) => vec!["--extract", dir.to_str().unwrap()],
            None => vec![],
        };
        run(self.build_command(artifact, &extra, SCRIPT), crash_at)
    }

    fn cache_stopping(&self, args: &[&str], crash_at: Option<&str>) -> Output {
        let state = self.path("state");
        let mut command = self.cache_command(args);
        command.arg("--state-dir").arg(state);
        run(command, crash_at)
    }

    /// Every entry directory in every scope.
    fn entry_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for scope in std::fs::read_dir(self.cache_dir().join("scopes")).unwrap() {
            for entry in std::fs::read_dir(scope.unwrap().path()).unwrap() {
                dirs.push(entry.unwrap().path());
            }
        }
        dirs.sort();
        dirs
    }

    /// Each entry in the scopes verifies (signature, key, every hash): none is torn.
    fn assert_every_entry_whole(&self) {
        for dir in self.entry_dirs() {
            let key = dir.file_name().unwrap().to_str().unwrap().to_owned();
            assert_status(&self.cache_stopping(&["verify", &key], None), 0);
        }
    }

    fn tmp_leftovers(&self) -> Vec<String> {
        names(&self.cache_dir().join("tmp"))
    }
}

fn run(mut command: Command, crash_at: Option<&str>) -> Output {
    if let Some(step) = crash_at {
        command.env("HERMETIC_TEST_CRASH_AT", step);
    }
    command.output().expect("spawn hermetic")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|read| {
            read.map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// SIGKILL.
fn assert_killed(output: &Output, step: &str) {
    assert_eq!(
        output.status.signal(),
        Some(9),
        "hermetic was not killed at {step} (a debug build is needed: the hook is compiled \
         out of release builds): {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn report(output: &Output) -> Value {
    assert_status(output, 0);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_store_killed_at_any_step_leaves_a_whole_entry_or_none() {
    let reference = Setup::new();
    let digest =
        report(&reference.build_stopping("a.tar.zst", None, None))["output"]["digest"].clone();
    for step in ["store.staged", "store.committing", "store.committed"] {
        let setup = Setup::new();
        assert_killed(&setup.build_stopping("a.tar.zst", None, Some(step)), step);
        assert!(
            !setup.tmp_leftovers().is_empty() || step == "store.committed",
            "{step}: the killed store left nothing in tmp/, so the test shows nothing"
        );
        setup.assert_every_entry_whole();
        let committed = !setup.entry_dirs().is_empty();
        assert_eq!(committed, step == "store.committed", "{step}");

        let next = report(&setup.build_stopping("b.tar.zst", None, None));
        let expected = if committed { "hit" } else { "miss" };
        assert_eq!(next["cache"]["status"], expected, "{step}");
        assert_eq!(next["output"]["digest"], digest, "{step}");
        assert_eq!(setup.tmp_leftovers(), Vec::<String>::new(), "{step}");
        setup.assert_every_entry_whole();
        assert_eq!(setup.entry_dirs().len(), 1, "{step}");
    }
}

#[test]
fn a_restore_killed_midway_publishes_nothing_and_the_next_one_the_whole_tree() {
    for step in ["restore.extracting", "restore.publishing"] {
        let setup = Setup::new();
        let first = report(&setup.build_stopping("a.tar.zst", None, None));
        assert_killed(
            &setup.build_stopping("b.tar.zst", Some("tree"), Some(step)),
            step,
        );
        assert!(
            !setup.path("tree").exists(),
            "{step}: a killed restore published a tree"
        );
        let leftovers: Vec<String> = names(setup.tmp.path())
            .into_iter()
            .filter(|name| name.starts_with(".hermetic-staging-"))
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "{step}: the killed restore was staging beside its destination"
        );

        let next = report(&setup.build_stopping("c.tar.zst", Some("tree"), None));
        assert_eq!(next["cache"]["status"], "hit", "{step}");
        assert_eq!(next["output"]["digest"], first["output"]["digest"]);
        assert_eq!(
            std::fs::read_to_string(setup.path("tree/out/sub/copy")).unwrap(),
            "input\n"
        );
        assert_eq!(setup.tmp_leftovers(), Vec::<String>::new(), "{step}");
    }
}

#[test]
fn a_quarantine_killed_midway_never_restores_the_tampered_entry() {
    let setup = Setup::new();
    let first = report(&setup.build_stopping("a.tar.zst", None, None));
    let [entry] = setup.entry_dirs().try_into().unwrap();
    let archive = entry.join("archive.tar.zst");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&archive, &bytes).unwrap();

    let step = "quarantine.moved";
    assert_killed(
        &setup.build_stopping("b.tar.zst", Some("tree"), Some(step)),
        step,
    );
    assert!(!entry.exists(), "the tampered entry left its scope");
    assert!(!setup.path("tree").exists());
    let quarantined = names(&setup.cache_dir().join("quarantine"));
    assert_eq!(quarantined.len(), 1, "it is in quarantine, as evidence");

    let next = report(&setup.build_stopping("c.tar.zst", Some("tree"), None));
    assert_eq!(next["cache"]["status"], "miss", "never restored");
    assert_eq!(next["verdict"], "reproducible");
    assert_eq!(next["output"]["digest"], first["output"]["digest"]);
    assert_eq!(
        std::fs::read_to_string(setup.path("tree/out/sub/copy")).unwrap(),
        "input\n"
    );
    setup.assert_every_entry_whole();
    assert_eq!(setup.tmp_leftovers(), Vec::<String>::new());
}

#[test]
fn a_gc_killed_while_evicting_leaves_whole_entries_and_the_next_gc_finishes() {
    let setup = Setup::new();
    report(&setup.build_stopping("a.tar.zst", None, None));
    let [entry] = setup.entry_dirs().try_into().unwrap();

    let step = "gc.evicting";
    assert_killed(
        &setup.cache_stopping(&["gc", "--max-size", "0"], Some(step)),
        step,
    );
    assert!(
        !entry.exists(),
        "the entry being evicted is out of its scope"
    );
    assert_eq!(setup.tmp_leftovers().len(), 1, "and half removed in tmp/");

    let gc = setup.cache_stopping(&["gc", "--max-size", "0"], None);
    assert_status(&gc, 0);
    assert_eq!(setup.tmp_leftovers(), Vec::<String>::new());
    let next = report(&setup.build_stopping("b.tar.zst", None, None));
    assert_eq!(next["cache"]["status"], "miss");
    setup.assert_every_entry_whole();
}
