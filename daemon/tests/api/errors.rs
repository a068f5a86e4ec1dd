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
    let output = tokio::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "curl",
            "-sS",
        ])
        .arg("--unix-socket")
        .arg(&daemon.socket)
        .args(["-w", "\n%{http_code}"])
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
