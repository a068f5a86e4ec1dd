//! Bad input and refused clients: a clear 4xx JSON error each, and the daemon keeps
//! serving everyone else.
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::support::Daemon;

fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_invalid_requests_are_400() {
    let daemon = Daemon::start(|_| {}).await;
    let src = daemon.src.clone();
    for body in [
        "{not json".to_owned(),
        "".to_owned(),
        json!({"kind": "teleport"}).to_string(),
        json!({"kind": "run", "profile": "default"}).to_string(),
        json!({"kind": "run", "profile": "default", "src": "relative", "command": ["true"]})
            .to_string(),
        json!({"kind": "run", "profile": "default", "src": src, "command": []}).to_string(),
    ] {
        let (status, error) = daemon.post("/v1/jobs", &body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(code(&error), "bad-request", "{body}");
    }
    let (status, error) = daemon.get("/v1/jobs?limit=lots").await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(code(&error), "bad-request");
    assert_eq!(daemon.get("/v1/health").await.0, 200);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_413() {
    let daemon = Daemon::start(|config| config.body_limit_bytes = 4096).await;
    let huge = daemon.run_request(&[&"x".repeat(10_000)]);
    let (status, error) = daemon.post("/v1/jobs", &huge).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(code(&error), "body-too-large");
    let id = daemon.submit(&["/bin/true"]).await;
    assert_eq!(daemon.wait_finished(id).await["state"], "succeeded");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_versions_and_methods_are_json_errors() {
    let daemon = Daemon::start(|_| {}).await;
    let (status, error) = daemon.get("/v1/nothing-here").await;
    assert_eq!((status, code(&error)), (404, "not-found"), "{error}");
    let (status, error) = daemon.get("/v2/jobs").await;
    assert_eq!(
        (status, code(&error)),
        (404, "unsupported-api-version"),
        "{error}"
    );
    let (status, error) = daemon.post("/v2/jobs", "{}").await;
    assert_eq!(
        (status, code(&error)),
        (404, "unsupported-api-version"),
        "{error}"
    );
    let (status, error) = daemon.post("/v1/health", "").await;
    assert_eq!(
        (status, code(&error)),
        (405, "method-not-allowed"),
        "{error}"
    );
    assert_eq!(daemon.get("/v1/health").await.0, 200);
    daemon.stop().await;
}

/// Runs curl as uid/gid 65534 (nobody) against the daemon's socket; returns (status, body).
async fn as_nobody(daemon: &Daemon, path: &str) -> (u16, serde_json::Value) {
    as_nobody_sending(daemon, path, None).await
}

/// As `as_nobody`, POSTing `body` when given.
async fn as_nobody_sending(
    daemon: &Daemon,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    as_user(&daemon.socket, 65534, path, body).await
}

/// A request over `socket` from `curl` running as `uid` (primary group nogroup, 65534).
async fn as_user(
    socket: &std::path::Path,
    uid: u32,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut command = tokio::process::Command::new("setpriv");
    command
        .arg(format!("--reuid={uid}"))
        .args(["--regid=65534", "--clear-groups", "curl", "-sS"])
        .arg("--unix-socket")
        .arg(socket)
        .args(["-w", "\n%{http_code}"]);
    if let Some(body) = body {
        command.args(["--data-binary", body]);
    }
    let output = command
        .arg(format!("http://hermeticd{path}"))
        .output()
        .await
        .expect("run setpriv and curl");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(body).unwrap())
}

/// Lets any local user reach the socket, so that only SO_PEERCRED stands in the way.
fn open_socket_to_everyone(daemon: &Daemon) {
    let chmod = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    chmod(daemon.dir.path(), 0o755);
    chmod(daemon.socket.parent().unwrap(), 0o755);
    chmod(&daemon.socket, 0o666);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_a_uid_not_allowed_is_403_and_others_are_served() {
    let daemon = Daemon::start(|_| {}).await;
    open_socket_to_everyone(&daemon);
    for path in ["/v1/health", "/v1/jobs", "/metrics", "/v2/jobs"] {
        let (status, error) = as_nobody(&daemon, path).await;
        assert_eq!(status, 403, "{path}: {error}");
        assert_eq!(code(&error), "forbidden");
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("uid 65534"));
    }
    let id = daemon.submit(&["/bin/true"]).await;
    assert_eq!(daemon.wait_finished(id).await["state"], "succeeded");
    daemon.stop().await;
}

/// A user allowed on a root daemon builds with its own file access: it cannot read a
/// root-only source or write into a root-only directory, and its artifact is its own.
#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_user_builds_with_its_own_file_access() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (a root daemon acting for uid 65534); CI runs it as root");
    }
    let daemon = Daemon::start(|config| config.allowed_uids = vec![65534]).await;
    open_socket_to_everyone(&daemon);
    let dir = daemon.dir.path();
    let owned_by_nobody = |path: &std::path::Path| {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    };
    let secret_src = dir.join("secret-src");
    std::fs::create_dir(&secret_src).unwrap();
    std::fs::write(secret_src.join("secret.txt"), "TOPSECRET").unwrap();
    std::fs::set_permissions(&secret_src, std::fs::Permissions::from_mode(0o700)).unwrap();
    let own_src = dir.join("own-src");
    std::fs::create_dir(&own_src).unwrap();
    owned_by_nobody(&own_src);
    let own_out = dir.join("own-out");
    std::fs::create_dir(&own_out).unwrap();
    owned_by_nobody(&own_out);
    let root_out = dir.join("root-out");
    std::fs::create_dir(&root_out).unwrap();
    std::fs::set_permissions(&root_out, std::fs::Permissions::from_mode(0o755)).unwrap();

    let submit = |request: serde_json::Value| {
        let daemon = &daemon;
        async move {
            let (status, job) =
                as_nobody_sending(daemon, "/v1/jobs", Some(&request.to_string())).await;
            assert_eq!(status, 201, "{job}");
            daemon.wait_finished(job["id"].as_u64().unwrap()).await
        }
    };
    let build = |src: &std::path::Path, artifact: std::path::PathBuf| {
        json!({
            "kind": "build", "profile": "default", "src": src, "outputs": ["out"],
            "artifact": artifact, "extract": null, "single": true, "explain": false,
            "source_date_epoch": null,
            "command": ["sh", "-c", "mkdir -p out && cat * > out/copy 2>/dev/null; true"],
        })
    };

    let job = submit(build(&secret_src, own_out.join("stolen.tar.zst"))).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("ermission denied"),
        "{job}"
    );
    assert!(!own_out.join("stolen.tar.zst").exists());
    let (_, log) = daemon.text(&format!("/v1/jobs/{}/log", job["id"])).await;
    assert!(!log.contains("TOPSECRET"), "{log}");

    let job = submit(build(&own_src, root_out.join("planted.tar.zst"))).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        std::fs::read_dir(&root_out).unwrap().next().is_none(),
        "nothing written"
    );

    let job = submit(build(&own_src, own_out.join("own.tar.zst"))).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let artifact = std::fs::metadata(own_out.join("own.tar.zst")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((artifact.uid(), artifact.gid()), (65534, 65534));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_uids_and_gids_may_connect() {
    for allow_gid in [false, true] {
        let daemon = Daemon::start(|config| {
            if allow_gid {
                config.allowed_gids = vec![65534];
            } else {
                config.allowed_uids = vec![65534];
            }
        })
        .await;
        open_socket_to_everyone(&daemon);
        let (status, health) = as_nobody(&daemon, "/v1/health").await;
        assert_eq!(status, 200, "{health}");
        daemon.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uid_fields_in_a_request_are_ignored() {
    let daemon = Daemon::start(|_| {}).await;
    let mut request: serde_json::Value =
        serde_json::from_str(&daemon.run_request(&["sh", "-c", "id -u"])).unwrap();
    request["uid"] = json!(12345);
    request["gid"] = json!(12345);
    let (status, job) = daemon.post("/v1/jobs", &request.to_string()).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_u64().unwrap();
    assert_eq!(daemon.wait_finished(id).await["state"], "succeeded");
    let (_, log) = daemon.text(&format!("/v1/jobs/{id}/log")).await;
    assert_eq!(
        log.trim(),
        "1000",
        "the sandbox's own mapped uid, not the client's"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_is_0660_and_owned_by_the_configured_group() {
    use std::os::unix::fs::MetadataExt;
    let daemon = Daemon::start(|config| config.socket_gid = Some(65534)).await;
    let metadata = std::fs::metadata(&daemon.socket).unwrap();
    assert_eq!(metadata.mode() & 0o777, 0o660);
    assert_eq!(metadata.gid(), 65534);
    daemon.stop().await;
}

/// Kills the daemon it holds when dropped, even when the test failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon that is not root cannot take on another user's file access, so it refuses
/// their jobs even when its config lets them connect; it still answers them otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn a_non_root_daemon_refuses_other_users_jobs() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it runs a daemon as nobody and a client as uid 65533); CI runs it as root"
    );
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/hermeticd.sock");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\nsocket = {:?}\nstate_dir = {:?}\nallowed_uids = [65533]\n",
            socket,
            dir.path().join("state")
        ),
    )
    .unwrap();
    // The daemon (nobody) owns its directories; the client may reach the socket.
    let run_dir = socket.parent().unwrap();
    std::fs::create_dir(run_dir).unwrap();
    for dir in [dir.path(), run_dir] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _daemon = KillOnDrop(
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_hermeticd"))
            .arg("--config")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start hermeticd as nobody"),
    );
    assert!(
        crate::support::eventually(|| socket.exists()).await,
        "the daemon running as nobody never listened"
    );
    let (status, health) = as_user(&socket, 65533, "/v1/health", None).await;
    assert_eq!(status, 200, "{health}");

    let request = r#"{"kind":"run","profile":"default","src":"/tmp","command":["true"]}"#;
    let (status, error) = as_user(&socket, 65533, "/v1/jobs", Some(request)).await;
    assert_eq!(status, 403, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot act as uid 65533"),
        "{error}"
    );
}
