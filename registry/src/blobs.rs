//! Blobs: existence checks, verified streaming downloads, and uploads (skip when present,
//! cross-repository mount, or chunked PATCHes and a final PUT, restarted once).

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use oci_spec::image::{Descriptor, Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};
use ureq::http::Method;

use crate::auth::Access;
use crate::error::{ErrorKind, RegistryError, Step};
use crate::reference::Repository;
use crate::transport::{header, location, with_query, Exchange, SMALL_CHUNK_SIZE};
use crate::Client;

/// How much of a download is read (and hashed) at a time.
const READ_BUFFER: usize = 64 * 1024;

/// What [`Client::push_blob`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository already had it (HEAD answered 200); nothing was sent.
    AlreadyPresent,
    /// The registry linked it from the `from` repository; nothing was sent.
    Mounted,
    /// Its bytes were uploaded.
    Uploaded,
}

impl Client {
    /// The blob's size if the repository has it, None on 404.
    pub fn blob_exists(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let exchange = self.blob_exchange(Step::CheckBlob, Method::HEAD, repository, digest);
        let response = self.transport.send(&exchange)?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = self.transport.expect_status(&exchange, response, &[200])?;
        let size = header(&response, "content-length")
            .and_then(|length| length.parse().ok())
            .ok_or_else(|| {
                RegistryError::new(
                    exchange.step,
                    &exchange.url,
                    ErrorKind::InvalidResponse("no Content-Length for an existing blob".into()),
                )
            })?;
        Ok(Some(size))
    }

    /// Streams the blob into `writer` while hashing it. Refuses a body longer than the
    /// descriptor's size as soon as the first extra byte arrives (nothing more is read),
    /// a body that ends short, and a digest that does not match.
    ///
    /// On an error the writer holds unverified bytes: write to a temporary file and
    /// discard it unless this returns Ok.
    pub fn fetch_blob(
        &self,
        repository: &Repository,
        descriptor: &Descriptor,
        writer: &mut dyn Write,
    ) -> Result<(), RegistryError> {
        let expected_digest = descriptor.digest();
        let expected_size = descriptor.size();
        let exchange =
            self.blob_exchange(Step::FetchBlob, Method::GET, repository, expected_digest);
        let fail = |kind| RegistryError::new(exchange.step, &exchange.url, kind);
        require_sha256(expected_digest).map_err(fail)?;
        let response = self.transport.send(&exchange)?;
        let mut response = self.transport.expect_status(&exchange, response, &[200])?;
        let announced = header(&response, "content-length").and_then(|n| n.parse::<u64>().ok());
        if announced.is_some_and(|announced| announced > expected_size) {
            return Err(fail(ErrorKind::TooLong {
                expected: expected_size,
            }));
        }
        let mut body = response.body_mut().as_reader();
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        let mut buffer = vec![0; READ_BUFFER];
        loop {
            let read = body
                .read(&mut buffer)
                .map_err(|source| fail(ErrorKind::Interrupted { received, source }))?;
            if read == 0 {
                break;
            }
            if received + read as u64 > expected_size {
                return Err(fail(ErrorKind::TooLong {
                    expected: expected_size,
                }));
            }
            received += read as u64;
            hasher.update(&buffer[..read]);
            writer
                .write_all(&buffer[..read])
                .map_err(|source| fail(ErrorKind::Write(source)))?;
        }
        if received < expected_size {
            return Err(fail(ErrorKind::Truncated {
                expected: expected_size,
                received,
            }));
        }
        let actual = sha256_digest_of(hasher);
        if actual != *expected_digest {
            return Err(fail(ErrorKind::DigestMismatch {
                expected: expected_digest.clone(),
                actual,
            }));
        }
        writer
            .flush()
            .map_err(|source| fail(ErrorKind::Write(source)))
    }

    /// Uploads `size` bytes from `source` as the blob `digest`, unless the repository
    /// has it already or can mount it from `mount_from` (same registry). Bytes go in
    /// PATCH chunks of the configured size, then a PUT that names the digest; the
    /// digest and size are checked on our side before that PUT, so a source that
    /// changed under us is never committed. A session that fails is restarted once from
    /// the start of `source`: in chunks of at most [`SMALL_CHUNK_SIZE`] when a chunk was
    /// refused as too large (413, 416).
    pub fn push_blob<R: Read + Seek + Send>(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        source: &mut R,
        mount_from: Option<&Repository>,
    ) -> Result<BlobPush, RegistryError> {
        if self.blob_exists(repository, digest)?.is_some() {
            return Ok(BlobPush::AlreadyPresent);
        }
        let uploads = format!(
            "{}blobs/uploads/",
            self.transport.repository_url(repository)
        );
        let mountable = mount_from.filter(|from| from.registry() == repository.registry());
        let session = match mountable {
            Some(from) => {
                let url = with_query(
                    &with_query(&uploads, "mount", digest.as_ref()),
                    "from",
                    from.name(),
                );
                let exchange = upload_exchange(Step::MountBlob, Method::POST, url, repository);
                let response = self.transport.send(&exchange)?;
                let response = self
                    .transport
                    .expect_status(&exchange, response, &[201, 202])?;
                if response.status().as_u16() == 201 {
                    return Ok(BlobPush::Mounted);
                }
                // 202: the registry would not mount (no access to `from`, or it lacks
                // the blob) and opened an ordinary upload session instead.
                location(&exchange, &response)?
            }
            None => self.start_upload(&uploads, repository)?,
        };
        let chunk_size = self.transport.config.chunk_size.max(1);
        match self.upload_session(session, repository, digest, size, source, chunk_size) {
            Ok(()) => Ok(BlobPush::Uploaded),
            Err(error) if failed_on_our_side(&error) => Err(error),
            Err(error) => {
                let chunk_size = if matches!(error.status(), Some(413 | 416)) {
                    chunk_size.min(SMALL_CHUNK_SIZE)
                } else {
                    chunk_size
                };
                let session = self.start_upload(&uploads, repository)?;
                self.upload_session(session, repository, digest, size, source, chunk_size)?;
                Ok(BlobPush::Uploaded)
            }
        }
    }

    fn start_upload(
        &self,
        uploads: &str,
        repository: &Repository,
    ) -> Result<String, RegistryError> {
        let exchange = upload_exchange(
            Step::StartUpload,
            Method::POST,
            uploads.to_owned(),
            repository,
        );
        let response = self.transport.send(&exchange)?;
        let response = self.transport.expect_status(&exchange, response, &[202])?;
        location(&exchange, &response)
    }

    /// Sends `source` in PATCHes of `chunk_size`. A second thread reads and hashes the
    /// next chunk while this one sends the current one: with the hash on the sending
    /// thread, a push took 1.28x as long as curl's monolithic upload of the same file
    /// (benches/remote.sh), the registry idling while we hashed.
    fn upload_session<R: Read + Seek + Send>(
        &self,
        mut session: String,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        source: &mut R,
        chunk_size: usize,
    ) -> Result<(), RegistryError> {
        source
            .seek(SeekFrom::Start(0))
            .map_err(|error| read_source_failed(&session, error))?;
        std::thread::scope(|scope| {
            let (chunks, read_ahead) = ChunkReader::start(scope, source, chunk_size);
            // Returning early drops the channels, which ends the reader before the scope
            // joins it.
            let mut offset: u64 = 0;
            loop {
                let chunk = match chunks.recv() {
                    Ok(Ok(chunk)) => chunk,
                    Ok(Err(error)) => return Err(read_source_failed(&session, error)),
                    // The reader saw the end of the source.
                    Err(_) => break,
                };
                let end = offset + chunk.len() as u64;
                if end > size {
                    // More bytes than promised: stop before sending them.
                    let (actual, read) = read_ahead.finish(chunks);
                    return Err(source_mismatch(&session, digest, size, actual, read));
                }
                let mut exchange =
                    upload_exchange(Step::UploadChunk, Method::PATCH, session, repository);
                exchange.headers = vec![
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", format!("{offset}-{}", end - 1)),
                ];
                exchange.body = Some(&chunk);
                let response = self.transport.send(&exchange)?;
                let response = self.transport.expect_status(&exchange, response, &[202])?;
                session = location(&exchange, &response)?;
                offset = end;
                read_ahead.recycle(chunk);
            }
            // The reader has seen the end: what it hashed is exactly what was sent.
            let (actual, _) = read_ahead.finish(chunks);
            if offset != size || actual != *digest {
                return Err(source_mismatch(&session, digest, size, actual, offset));
            }
            Ok(session)
        })
        .and_then(|session| {
            let url = with_query(&session, "digest", digest.as_ref());
            let mut exchange = upload_exchange(Step::FinishUpload, Method::PUT, url, repository);
            exchange.headers = vec![("Content-Type", "application/octet-stream".into())];
            exchange.body = Some(&[]);
            let response = self.transport.send(&exchange)?;
            self.transport.expect_status(&exchange, response, &[201])?;
            Ok(())
        })
    }

    fn blob_exchange<'a>(
        &self,
        step: Step,
        method: Method,
        repository: &'a Repository,
        digest: &Digest,
    ) -> Exchange<'a> {
        Exchange {
            step,
            method,
            url: format!(
                "{}blobs/{digest}",
                self.transport.repository_url(repository)
            ),
            repository,
            access: Access::Pull,
            headers: Vec::new(),
            body: None,
        }
    }
}

fn upload_exchange(
    step: Step,
    method: Method,
    url: String,
    repository: &Repository,
) -> Exchange<'_> {
    Exchange {
        step,
        method,
        url,
        repository,
        access: Access::Push,
        headers: Vec::new(),
        body: None,
    }
}

/// Reads `source` into chunks and hashes them on its own thread, one chunk ahead of the
/// sender. Two buffers go round: the one being sent and the one being filled.
struct ChunkReader<'scope> {
    empty: SyncSender<Vec<u8>>,
    thread: ScopedJoinHandle<'scope, (Sha256, u64)>,
}

type Filled = Receiver<std::io::Result<Vec<u8>>>;

impl<'scope> ChunkReader<'scope> {
    fn start<'env, R: Read + Send>(
        scope: &'scope Scope<'scope, 'env>,
        source: &'scope mut R,
        chunk_size: usize,
    ) -> (Filled, ChunkReader<'scope>) {
        let (filled_sender, filled) = sync_channel(1);
        let (empty, empty_receiver) = sync_channel::<Vec<u8>>(2);
        for _ in 0..2 {
            empty
                .send(Vec::with_capacity(chunk_size))
                .expect("the receiver is alive");
        }
        let thread = scope.spawn(move || {
            let mut hasher = Sha256::new();
            let mut total: u64 = 0;
            // Ends when the sender stops handing buffers back (done or failed).
            while let Ok(mut buffer) = empty_receiver.recv() {
                buffer.resize(chunk_size, 0);
                let read = match fill(source, &mut buffer) {
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(error) => {
                        let _ = filled_sender.send(Err(error));
                        break;
                    }
                };
                buffer.truncate(read);
                hasher.update(&buffer);
                total += read as u64;
                if filled_sender.send(Ok(buffer)).is_err() {
                    break;
                }
            }
            (hasher, total)
        });
        (filled, ChunkReader { empty, thread })
    }

    fn recycle(&self, buffer: Vec<u8>) {
        // A reader that has ended no longer needs buffers.
        let _ = self.empty.send(buffer);
    }

    /// Stops the reader; returns the digest and size of all it read, read-ahead
    /// included.
    fn finish(self, filled: Filled) -> (Digest, u64) {
        drop(self.empty);
        drop(filled);
        let (hasher, total) = self
            .thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (sha256_digest_of(hasher), total)
    }
}

/// A new session cannot help when our own source failed or does not match.
fn failed_on_our_side(error: &RegistryError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ReadSource(_) | ErrorKind::SourceMismatch { .. }
    )
}

fn read_source_failed(url: &str, error: std::io::Error) -> RegistryError {
    RegistryError::new(Step::UploadChunk, url, ErrorKind::ReadSource(error))
}

fn source_mismatch(
    url: &str,
    digest: &Digest,
    size: u64,
    actual: Digest,
    actual_size: u64,
) -> RegistryError {
    RegistryError::new(
        Step::UploadChunk,
        url,
        ErrorKind::SourceMismatch {
            expected: digest.clone(),
            expected_size: size,
            actual,
            actual_size,
        },
    )
}

/// Reads until `buffer` is full or the source ends, so that every chunk but the last
/// has the configured size.
fn fill(source: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match source.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

pub(crate) fn require_sha256(digest: &Digest) -> Result<(), ErrorKind> {
    if *digest.algorithm() == DigestAlgorithm::Sha256 {
        Ok(())
    } else {
        Err(ErrorKind::UnsupportedDigest {
            algorithm: digest.algorithm().to_string(),
        })
    }
}

/// The sha256 digest of these bytes.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    sha256_digest_of(hasher)
}

fn sha256_digest_of(hasher: Sha256) -> Digest {
    let hex = hex::encode(hasher.finalize());
    crate::reference::parse_sha256_digest(&format!("sha256:{hex}"))
        .expect("64 lowercase hex digits make a sha256 digest")
}
