use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::fixture::{wait_for, Env};

/// `curl` over the daemon's socket as uid 65533 (primary group nogroup, which owns the
/// socket of a daemon running as nobody): (status, body).
fn as_uid_65533(env: &Env, path: &str, body: Option<&str>) -> (u16, String) {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=65533",
            "--regid=65534",
            "--clear-groups",
            "curl",
            "-sS",
        ])
        .arg("--unix-socket")
        .arg(env.socket())
        .args(["-w", "\n%{http_code}"]);
    if let Some(body) = body {
        command.args(["--data-binary", body]);
    }
    let output = command
        .arg(format!("http://hermeticd{path}"))
        .output()
        .expect("run setpriv and curl");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

/// A daemon that is not root cannot take on another user's file access, so it refuses
/// their jobs even when its config lets them connect; it still answers them otherwise.
#[test]
fn a_non_root_daemon_refuses_other_users_jobs() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it runs a daemon as nobody and a client as uid 65533); CI runs it as root"
    );
    let env = Env::new();
    let config = std::fs::read_to_string(&env.config).unwrap() + "allowed_uids = [65533]\n";
    std::fs::write(&env.config, config).unwrap();
    // The daemon (nobody) owns its directories; the client may reach the socket.
    let run_dir = env.socket().parent().unwrap().to_owned();
    std::fs::create_dir(&run_dir).unwrap();
    for dir in [env.dir.path(), run_dir.as_path()] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut daemon = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_hermetic"))
        .args(["daemon", "serve"])
        .env("HERMETIC_CONFIG", &env.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a daemon as nobody");
    let answered = wait_for(|| {
        env.socket().exists().then_some(())?;
        (as_uid_65533(&env, "/v1/health", None).0 == 200).then_some(())
    });
    assert!(
        answered.is_some(),
        "the daemon running as nobody never answered uid 65533"
    );

    let request = r#"{"kind":"run","profile":"default","src":"/tmp","command":["true"]}"#;
    let (status, body) = as_uid_65533(&env, "/v1/jobs", Some(request));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cannot act as uid 65533"), "{body}");
    let _ = daemon.kill();
    let _ = daemon.wait();
}
