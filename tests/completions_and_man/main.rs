//! `hermetic completions` and `hermetic man`: shell completion scripts and man pages made
//! from the same clap definitions as `--help`.
#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::{assert_status, hermetic, stderr, stdout};

#[test]
fn completion_scripts_name_the_commands_and_their_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let output = hermetic().args(["completions", shell]).output().unwrap();
        assert_status(&output, 0);
        let script = stdout(&output);
        for word in ["build", "cache", "gc", "--max-size", "completions", "man"] {
            assert!(script.contains(word), "the {shell} script lacks {word}");
        }
    }
}

#[test]
fn the_bash_script_is_valid_bash() {
    let output = hermetic().args(["completions", "bash"]).output().unwrap();
    assert_status(&output, 0);
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), &output.stdout).unwrap();
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1" && complete -p hermetic"#)
        .arg("bash")
        .arg(script.path())
        .output()
        .expect("run bash");
    assert_status(&sourced, 0);
    assert!(
        stdout(&sourced).contains("hermetic"),
        "{}",
        stdout(&sourced)
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let output = hermetic().args(["completions", "tcsh"]).output().unwrap();
    assert_status(&output, 2);
    assert!(stderr(&output).contains("bash"), "{}", stderr(&output));
}

/// Whether `page` is roff for the section-1 page `title`. clap_mangen defines a string
/// before the `.TH` header, so requests (lines starting with `.`) may come first.
fn is_roff_page(page: &str, title: &str) -> bool {
    let header = format!(".TH {title} 1 ");
    page.lines()
        .find(|line| !line.starts_with('.') || line.starts_with(".TH "))
        .is_some_and(|line| line.starts_with(&header))
}

#[test]
fn man_prints_the_main_page_without_dir() {
    let output = hermetic().arg("man").output().unwrap();
    assert_status(&output, 0);
    let page = stdout(&output);
    assert!(is_roff_page(&page, "hermetic"), "not roff: {page}");
    for reference in ["hermetic\\-build", "hermetic\\-cache", "hermetic\\-man"] {
        assert!(
            page.contains(reference),
            "hermetic.1 does not name {reference}"
        );
    }
    assert!(
        !page.contains("hermetic\\-help"),
        "hermetic.1 names a help page that is never written"
    );
}

#[test]
fn man_writes_a_page_per_command_into_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share/man/man1");
    let output = hermetic()
        .arg("man")
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_status(&output, 0);
    for (file, title) in [
        ("hermetic.1", "hermetic"),
        ("hermetic-build.1", "hermetic-build"),
        ("hermetic-cache-gc.1", "hermetic-cache-gc"),
        ("hermetic-completions.1", "hermetic-completions"),
    ] {
        let page =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert!(is_roff_page(&page, title), "{file} is not roff: {page}");
    }
    for absent in ["hermetic-help.1", "hermetic-daemon-serve.1"] {
        assert!(!dir.join(absent).exists(), "{absent} was written");
    }
    render_with_man(&dir.join("hermetic-cache-gc.1"));
}

/// `man -l` formats the page: its name, a section heading and the flags' text come out.
fn render_with_man(page: &Path) {
    let rendered = match Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        // ASCII hyphens: in a UTF-8 locale groff may print `--max-size` with other dashes.
        .env("LC_ALL", "C")
        .env("MANWIDTH", "100")
        .output()
    {
        Ok(rendered) => rendered,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("man is not installed: skipped rendering {}", page.display());
            return;
        }
        Err(err) => panic!("run man: {err}"),
    };
    assert_status(&rendered, 0);
    let text = stdout(&rendered);
    for expected in ["hermetic-cache-gc", "SYNOPSIS", "--max-size", "10GiB"] {
        assert!(
            text.contains(expected),
            "man -l shows no {expected}: {text}"
        );
    }
}

#[test]
fn an_unwritable_dir_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let output = hermetic()
        .arg("man")
        .arg("--dir")
        .arg(&file)
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(stderr(&output).contains("man pages"), "{}", stderr(&output));
}
