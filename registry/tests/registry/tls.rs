use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hermetic_registry::{Client, ClientConfig, ClientError, Credentials, ErrorKind, PlainHttp};

use crate::support::server::{find_program, Options, RegistryServer};
use crate::support::{blob_bytes, chain, push};

/// A throwaway CA and a certificate it signed for 127.0.0.1, made with openssl.
struct TestPki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

fn make_pki() -> TestPki {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let openssl = find_program("openssl");
    let run = |args: &[&str]| {
        let output = Command::new(&openssl)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=hermetic test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    TestPki {
        ca: path("ca.pem"),
        certificate: path("leaf.pem"),
        key: path("leaf.key"),
        _dir: dir,
    }
}

fn https_client(extra_ca_file: Option<&Path>) -> Client {
    Client::new(
        ClientConfig {
            // Loopback would otherwise be spoken to in plain HTTP.
            plain_http: PlainHttp::Never,
            extra_ca_file: extra_ca_file.map(Path::to_owned),
            request_timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        },
        Credentials::none(),
    )
    .unwrap()
}

#[test]
fn https_registry_trusted_through_the_extra_ca_file() {
    let pki = make_pki();
    let registry = RegistryServer::start_with(Options {
        tls: Some((&pki.certificate, &pki.key)),
        ..Options::default()
    });
    let repository = registry.repository("cache");
    let client = https_client(Some(&pki.ca));

    let bytes = blob_bytes(10_000, 1);
    let descriptor = push(&client, &repository, "application/octet-stream", &bytes);
    let mut fetched = Vec::new();
    client
        .fetch_blob(&repository, &descriptor, &mut fetched)
        .unwrap();
    assert_eq!(fetched, bytes);
}

#[test]
fn https_registry_with_an_unknown_ca_is_refused_not_unavailable() {
    let pki = make_pki();
    let registry = RegistryServer::start_with(Options {
        tls: Some((&pki.certificate, &pki.key)),
        ..Options::default()
    });

    let error = https_client(None)
        .list_tags(&registry.repository("cache"))
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::Transport(_)),
        "{}",
        chain(&error)
    );
    assert!(
        !error.is_unavailable(),
        "a certificate problem is no outage"
    );
    assert!(
        chain(&error).contains("https://127.0.0.1:"),
        "{}",
        chain(&error)
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let error = Client::new(
        ClientConfig {
            extra_ca_file: Some(empty.clone()),
            ..ClientConfig::default()
        },
        Credentials::none(),
    )
    .err()
    .unwrap();
    assert!(matches!(error, ClientError::EmptyCaFile { .. }), "{error}");
    assert!(error.to_string().contains("empty.pem"), "{error}");
}
