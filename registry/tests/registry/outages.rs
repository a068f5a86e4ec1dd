use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hermetic_registry::{sha256_digest, Client, ClientConfig, Credentials, ErrorKind, Repository};

use crate::support::fake::{FakeResponse, FakeServer};
use crate::support::server::RegistryServer;
use crate::support::{chain, client};

#[test]
fn a_stopped_registry_is_unavailable_at_once() {
    let mut registry = RegistryServer::start();
    let repository = registry.repository("cache");
    registry.stop();

    let started = Instant::now();
    let error = client()
        .blob_exists(&repository, &sha256_digest(b"x"))
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{}", chain(&error));
    assert!(
        matches!(error.kind(), ErrorKind::Unreachable(_)),
        "{}",
        chain(&error)
    );
    assert!(chain(&error).contains("failed to check for blob at http://127.0.0.1:"));
}

#[test]
fn a_registry_that_accepts_and_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let (done, wait_for_done) = mpsc::channel::<()>();
    // Accepts the connection and holds it, silent, until the test is over.
    let holder = std::thread::spawn(move || {
        let connection = listener.accept();
        let _ = wait_for_done.recv();
        drop(connection);
    });
    let timeout = Duration::from_millis(800);
    let client = Client::new(
        ClientConfig {
            connect_timeout: timeout,
            request_timeout: timeout,
            ..ClientConfig::default()
        },
        Credentials::none(),
    )
    .unwrap();

    let started = Instant::now();
    let error = client
        .blob_exists(
            &Repository::new(&authority, "cache").unwrap(),
            &sha256_digest(b"x"),
        )
        .unwrap_err();
    let elapsed = started.elapsed();
    done.send(()).unwrap();
    holder.join().unwrap();

    assert!(
        matches!(error.kind(), ErrorKind::TimedOut(_)),
        "{}",
        chain(&error)
    );
    assert!(error.is_unavailable());
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout * 3, "{elapsed:?}");
}

#[test]
fn server_errors_are_outages_and_client_errors_are_refusals() {
    let fake = FakeServer::start(|request| {
        if request.path().ends_with("/tags/list") {
            FakeResponse::new(503)
                .body(r#"{"errors":[{"code":"UNAVAILABLE","message":"storage backend down"}]}"#)
        } else {
            FakeResponse::new(400).body(
                r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}"#,
            )
        }
    });
    let client = client();
    let repository = fake.repository("cache");

    let outage = client.list_tags(&repository).unwrap_err();
    assert!(outage.is_unavailable());
    assert_eq!(outage.status(), Some(503));
    assert!(
        chain(&outage).ends_with(
            "registry answered 503 Service Unavailable: UNAVAILABLE storage backend down"
        ),
        "{}",
        chain(&outage)
    );

    let refusal = client
        .blob_exists(&repository, &sha256_digest(b"x"))
        .unwrap_err();
    assert!(!refusal.is_unavailable());
    assert_eq!(refusal.status(), Some(400));
}
