use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hermetic_registry::{sha256_digest, BlobPush, ErrorKind};

use crate::support::fake::{FakeResponse, FakeServer};
use crate::support::server::RegistryServer;
use crate::support::{blob_bytes, chain, client, descriptor_of, push};

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[test]
fn chunked_push_then_verified_fetch_round_trip() {
    let registry = RegistryServer::start();
    let repository = registry.repository("ci/cache");
    let client = client();
    // 4 KiB chunks: three PATCHes, the last one short.
    let bytes = blob_bytes(10_000, 1);
    let descriptor = descriptor_of(LAYER, &bytes);

    let pushed = client
        .push_blob(
            &repository,
            descriptor.digest(),
            descriptor.size(),
            &mut Cursor::new(&bytes),
            None,
        )
        .unwrap();

    assert_eq!(pushed, BlobPush::Uploaded);
    assert_eq!(
        registry.requests("PATCH", "ci/cache", "blobs/uploads/", 3),
        3
    );
    assert_eq!(registry.requests("PUT", "ci/cache", "blobs/uploads/", 1), 1);
    assert_eq!(
        client
            .blob_exists(&repository, descriptor.digest())
            .unwrap(),
        Some(10_000)
    );
    let mut fetched = Vec::new();
    client
        .fetch_blob(&repository, &descriptor, &mut fetched)
        .unwrap();
    assert_eq!(fetched, bytes);
}

#[test]
fn empty_blob_round_trip() {
    let registry = RegistryServer::start();
    let repository = registry.repository("empty");
    let client = client();
    let descriptor = push(&client, &repository, LAYER, b"");
    let mut fetched = Vec::new();
    client
        .fetch_blob(&repository, &descriptor, &mut fetched)
        .unwrap();
    assert!(fetched.is_empty());
}

#[test]
fn blob_already_present_is_not_uploaded_again() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let bytes = blob_bytes(5000, 2);
    let descriptor = push(&client, &repository, LAYER, &bytes);
    let sessions_before = registry.requests("POST", "cache", "blobs/uploads/", 1);

    let again = client
        .push_blob(
            &repository,
            descriptor.digest(),
            descriptor.size(),
            &mut Cursor::new(&bytes),
            None,
        )
        .unwrap();

    assert_eq!(again, BlobPush::AlreadyPresent);
    // The second push's HEAD in the log means its requests are all there.
    assert_eq!(registry.requests("HEAD", "cache", "blobs/", 2), 2);
    assert_eq!(
        registry.requests("POST", "cache", "blobs/uploads/", 0),
        sessions_before
    );
}

#[test]
fn blob_is_mounted_from_another_repository() {
    let registry = RegistryServer::start();
    let source = registry.repository("team/base");
    let target = registry.repository("team/app");
    let client = client();
    let bytes = blob_bytes(9000, 3);
    let descriptor = push(&client, &source, LAYER, &bytes);

    let mounted = client
        .push_blob(
            &target,
            descriptor.digest(),
            descriptor.size(),
            &mut Cursor::new(&bytes),
            Some(&source),
        )
        .unwrap();

    assert_eq!(mounted, BlobPush::Mounted);
    assert_eq!(
        registry.requests("PATCH", "team/app", "blobs/uploads/", 0),
        0
    );
    let mut fetched = Vec::new();
    client
        .fetch_blob(&target, &descriptor, &mut fetched)
        .unwrap();
    assert_eq!(fetched, bytes);
}

#[test]
fn mount_from_a_repository_without_the_blob_uploads_instead() {
    let registry = RegistryServer::start();
    let client = client();
    let bytes = blob_bytes(100, 4);
    let descriptor = descriptor_of(LAYER, &bytes);
    let pushed = client
        .push_blob(
            &registry.repository("app"),
            descriptor.digest(),
            descriptor.size(),
            &mut Cursor::new(&bytes),
            Some(&registry.repository("nothing-here")),
        )
        .unwrap();
    assert_eq!(pushed, BlobPush::Uploaded);
}

#[test]
fn fetch_refuses_a_blob_whose_bytes_changed_on_the_registry_disk() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let descriptor = push(&client, &repository, LAYER, &blob_bytes(3000, 5));
    let path = registry.blob_data_path(descriptor.digest());
    let mut stored = std::fs::read(&path).unwrap();
    stored[1234] ^= 0x01;
    std::fs::write(&path, stored).unwrap();

    let error = client
        .fetch_blob(&repository, &descriptor, &mut Vec::new())
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::DigestMismatch { expected, .. } if expected == descriptor.digest()),
        "{}",
        chain(&error)
    );
    assert!(!error.is_unavailable());
    let message = chain(&error);
    assert!(
        message.contains("failed to fetch blob at http://"),
        "{message}"
    );
    assert!(
        message.contains(&descriptor.digest().to_string()),
        "{message}"
    );
}

#[test]
fn fetch_refuses_a_descriptor_that_understates_the_size() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let bytes = blob_bytes(3000, 6);
    push(&client, &repository, LAYER, &bytes);
    let understated = hermetic_registry::Descriptor::new(LAYER.into(), 2999, sha256_digest(&bytes));
    let mut written = Vec::new();

    let error = client
        .fetch_blob(&repository, &understated, &mut written)
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::TooLong { expected: 2999 }),
        "{}",
        chain(&error)
    );
    assert!(
        written.is_empty(),
        "refused on Content-Length, before reading"
    );
}

#[test]
fn a_body_without_length_is_cut_off_at_the_descriptor_size() {
    let bytes = blob_bytes(200_000, 7);
    let served = bytes.clone();
    let fake =
        FakeServer::start(move |_| FakeResponse::new(200).body(served.clone()).until_close());
    let mut descriptor_bytes = bytes.clone();
    descriptor_bytes.truncate(1000);
    let descriptor = descriptor_of(LAYER, &descriptor_bytes);
    let mut written = Vec::new();

    let error = client()
        .fetch_blob(&fake.repository("cache"), &descriptor, &mut written)
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::TooLong { expected: 1000 }),
        "{}",
        chain(&error)
    );
    assert!(written.len() <= 1000, "wrote {} bytes", written.len());
}

#[test]
fn a_body_cut_short_is_an_outage_not_a_blob() {
    let bytes = blob_bytes(50_000, 8);
    let descriptor = descriptor_of(LAYER, &bytes);
    let half = bytes[..25_000].to_vec();
    let with_length = half.clone();
    // The connection closes 25 000 bytes into a body announced as 50 000.
    let cut = FakeServer::start(move |_| {
        FakeResponse::new(200)
            .body(with_length.clone())
            .claiming_length(50_000)
    });
    // No length announced: the body just ends early.
    let short = FakeServer::start(move |_| FakeResponse::new(200).body(half.clone()).until_close());

    let cut_error = client()
        .fetch_blob(&cut.repository("cache"), &descriptor, &mut Vec::new())
        .unwrap_err();
    let short_error = client()
        .fetch_blob(&short.repository("cache"), &descriptor, &mut Vec::new())
        .unwrap_err();

    assert!(
        matches!(
            cut_error.kind(),
            ErrorKind::Interrupted {
                received: 25_000,
                ..
            }
        ),
        "{}",
        chain(&cut_error)
    );
    assert!(
        matches!(
            short_error.kind(),
            ErrorKind::Truncated {
                expected: 50_000,
                received: 25_000
            }
        ),
        "{}",
        chain(&short_error)
    );
    assert!(cut_error.is_unavailable() && short_error.is_unavailable());
}

#[test]
fn a_source_that_does_not_match_its_digest_is_never_committed() {
    let registry = RegistryServer::start();
    let repository = registry.repository("cache");
    let client = client();
    let promised = descriptor_of(LAYER, &blob_bytes(9000, 9));
    let actual = blob_bytes(9000, 10);

    let error = client
        .push_blob(
            &repository,
            promised.digest(),
            promised.size(),
            &mut Cursor::new(&actual),
            None,
        )
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::SourceMismatch { .. }),
        "{}",
        chain(&error)
    );
    assert_eq!(
        client.blob_exists(&repository, promised.digest()).unwrap(),
        None
    );
    assert_eq!(
        client
            .blob_exists(&repository, &sha256_digest(&actual))
            .unwrap(),
        None
    );
}

#[test]
fn a_failed_chunk_restarts_the_upload_once() {
    let bytes = blob_bytes(10_000, 11);
    let descriptor = descriptor_of(LAYER, &bytes);
    let patches = AtomicUsize::new(0);
    let sessions = AtomicUsize::new(0);
    let committed = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::clone(&committed);
    let fake = FakeServer::start(move |request| match request.method.as_str() {
        "HEAD" => FakeResponse::new(404),
        "POST" => {
            let session = sessions.fetch_add(1, Ordering::SeqCst);
            // A relative Location, as some registries send.
            FakeResponse::new(202).header("Location", &format!("session-{session}"))
        }
        "PATCH" if patches.fetch_add(1, Ordering::SeqCst) == 1 => FakeResponse::new(500),
        "PATCH" => {
            let mut received = received.lock().unwrap();
            if request.path().ends_with("session-1") {
                let start = received.len();
                let range = format!("{start}-{}", start + request.body.len() - 1);
                assert_eq!(request.header("content-range"), Some(range.as_str()));
                received.extend_from_slice(&request.body);
            }
            FakeResponse::new(202).header("Location", request.path())
        }
        "PUT" => FakeResponse::new(201),
        _ => FakeResponse::new(405),
    });

    let pushed = client()
        .push_blob(
            &fake.repository("cache"),
            descriptor.digest(),
            descriptor.size(),
            &mut Cursor::new(&bytes),
            None,
        )
        .unwrap();

    assert_eq!(pushed, BlobPush::Uploaded);
    let requests = fake.requests();
    let expected_prefix = [
        "HEAD /v2/cache/blobs/".to_owned() + descriptor.digest().as_ref(),
        "POST /v2/cache/blobs/uploads/".into(),
        "PATCH /v2/cache/blobs/uploads/session-0".into(),
        "PATCH /v2/cache/blobs/uploads/session-0".into(),
        "POST /v2/cache/blobs/uploads/".into(),
        "PATCH /v2/cache/blobs/uploads/session-1".into(),
        "PATCH /v2/cache/blobs/uploads/session-1".into(),
        "PATCH /v2/cache/blobs/uploads/session-1".into(),
    ];
    assert_eq!(requests[..8], expected_prefix, "{requests:#?}");
    assert_eq!(
        requests[8],
        format!(
            "PUT /v2/cache/blobs/uploads/session-1?digest={}",
            descriptor.digest()
        )
    );
    assert_eq!(*committed.lock().unwrap(), bytes);
}

/// Counts what a fake registry received in PATCHes and whether anything was committed.
fn recording_registry() -> (FakeServer, Arc<Mutex<usize>>, Arc<AtomicUsize>) {
    let patched = Arc::new(Mutex::new(0));
    let puts = Arc::new(AtomicUsize::new(0));
    let (patched_bytes, put_count) = (Arc::clone(&patched), Arc::clone(&puts));
    let fake = FakeServer::start(move |request| match request.method.as_str() {
        "HEAD" => FakeResponse::new(404),
        "POST" => FakeResponse::new(202).header("Location", "session"),
        "PATCH" => {
            *patched_bytes.lock().unwrap() += request.body.len();
            FakeResponse::new(202).header("Location", request.path())
        }
        "PUT" => {
            put_count.fetch_add(1, Ordering::SeqCst);
            FakeResponse::new(201)
        }
        _ => FakeResponse::new(405),
    });
    (fake, patched, puts)
}

#[test]
fn a_source_longer_than_promised_sends_no_byte_past_the_promise() {
    let (fake, patched, puts) = recording_registry();
    // 4 KiB chunks: the third chunk would carry bytes 8192..12000 of a 9000-byte promise.
    let promised = descriptor_of(LAYER, &blob_bytes(9000, 12));
    let longer = blob_bytes(12_000, 12);

    let error = client()
        .push_blob(
            &fake.repository("cache"),
            promised.digest(),
            promised.size(),
            &mut Cursor::new(&longer),
            None,
        )
        .unwrap_err();

    match error.kind() {
        ErrorKind::SourceMismatch {
            expected_size,
            actual_size,
            ..
        } => assert!(
            *expected_size == 9000 && *actual_size > 9000,
            "{}",
            chain(&error)
        ),
        _ => panic!("{}", chain(&error)),
    }
    assert_eq!(
        *patched.lock().unwrap(),
        8192,
        "only the two whole chunks went out"
    );
    assert_eq!(puts.load(Ordering::SeqCst), 0, "nothing was committed");
}

/// Gives `good` bytes, then fails.
struct FailingSource {
    inner: Cursor<Vec<u8>>,
    good: u64,
}

impl std::io::Read for FailingSource {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = self.good.saturating_sub(self.inner.position());
        if left == 0 {
            return Err(std::io::Error::other("disk went away"));
        }
        let take = buffer.len().min(left as usize);
        self.inner.read(&mut buffer[..take])
    }
}

impl std::io::Seek for FailingSource {
    fn seek(&mut self, position: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(position)
    }
}

#[test]
fn a_source_that_fails_midway_is_not_committed_or_retried() {
    let (fake, patched, puts) = recording_registry();
    let bytes = blob_bytes(10_000, 13);
    let descriptor = descriptor_of(LAYER, &bytes);

    let error = client()
        .push_blob(
            &fake.repository("cache"),
            descriptor.digest(),
            descriptor.size(),
            &mut FailingSource {
                inner: Cursor::new(bytes),
                good: 5000,
            },
            None,
        )
        .unwrap_err();

    assert!(
        matches!(error.kind(), ErrorKind::ReadSource(_)),
        "{}",
        chain(&error)
    );
    assert!(
        chain(&error).contains("disk went away"),
        "{}",
        chain(&error)
    );
    assert_eq!(*patched.lock().unwrap(), 4096, "the first whole chunk only");
    assert_eq!(puts.load(Ordering::SeqCst), 0);
    let sessions = fake
        .requests()
        .iter()
        .filter(|request| request.starts_with("POST "))
        .count();
    assert_eq!(sessions, 1, "our own source failing is not retried");
}
