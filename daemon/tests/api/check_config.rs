//! `hermeticd --check-config`
use std::process::Command;

fn check(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hermeticd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .arg("--socket")
        .arg("/tmp/override.sock")
        .arg("--keep-failed")
        .output()
        .unwrap()
}

#[test]
fn a_valid_config_is_printed_with_the_flags_applied() {
    let output = check("version = 1\nqueue_limit = 9\n");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("queue_limit: 9"), "{text}");
    assert!(text.contains("\"/tmp/override.sock\""), "{text}");
    assert!(text.contains("keep_failed: true"), "{text}");
}

#[test]
fn an_invalid_config_is_a_usage_error_that_names_the_key() {
    for (config, expected) in [
        ("version = 2\n", "version 2 is not supported"),
        (
            "version = 1\nqueue_limt = 9\n",
            "unknown field `queue_limt`",
        ),
        ("version = 1\nmax_concurrent = 0\n", "max_concurrent"),
    ] {
        let output = check(config);
        assert_eq!(output.status.code(), Some(2), "{config}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{config}: {stderr}");
    }
}
