//! The zstd side: the archive must be one zstd frame with a content checksum, within a
//! bounded window, with nothing after it; it is decompressed a few chunks ahead on a thread
//! of its own, and once the members are read, what follows them must be the tar end marker
//! and padding only. Read errors keep saying where they came from (the caller's reader, the
//! decoder, the tar parser).
use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc;

use super::error::ExtractError;
use super::{IO_CHUNK, TAR_BLOCK};

/// Largest zstd window accepted (128 MiB), what level 22 can use; bounds decoder memory.
const WINDOW_LOG_MAX: u32 = 27;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bit of the zstd frame header descriptor saying the frame ends with a content checksum.
const ZSTD_CHECKSUM_FLAG: u8 = 0x04;
/// Two zero blocks end a tar archive.
const TAR_END_MARKER: u64 = 2 * TAR_BLOCK;
/// Zero padding accepted after the last entry: one GNU tar record.
const MAX_END_PADDING: u64 = 20 * TAR_BLOCK;

/// Error from the caller's archive reader, kept apart from decoding errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SourceError(io::Error);

/// Error from the zstd decoder (which passes [`SourceError`]s through), kept apart from tar
/// parsing errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DecodeError(io::Error);

/// The caller's reader, with its errors marked as [`SourceError`].
struct SourceReader<R>(R);

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|err| io::Error::new(err.kind(), SourceError(err)))
    }
}

type ZstdInput<R> = BufReader<io::Chain<io::Cursor<[u8; 5]>, SourceReader<R>>>;

/// The decompressed tar stream.
pub(super) struct DecodedStream<R: Read> {
    decoder: zstd::stream::read::Decoder<'static, ZstdInput<R>>,
}

impl<R: Read> DecodedStream<R> {
    /// Starts decoding after checking that the archive is a zstd frame with a content
    /// checksum, so corruption the decoder can detect is always detected.
    pub(super) fn open(mut archive: R) -> Result<Self, ExtractError> {
        let mut frame_start = [0u8; 5];
        archive.read_exact(&mut frame_start).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                ExtractError::Truncated {
                    path: None,
                    detail: "the archive is shorter than a zstd frame header".to_owned(),
                }
            } else {
                ExtractError::ReadArchive { source }
            }
        })?;
        let decompress = |detail: String| ExtractError::Decompress { detail };
        if frame_start[..4] != ZSTD_MAGIC {
            return Err(decompress(
                "the archive does not start with a zstd frame".to_owned(),
            ));
        }
        if frame_start[4] & ZSTD_CHECKSUM_FLAG == 0 {
            return Err(decompress(
                "the zstd frame has no content checksum".to_owned(),
            ));
        }
        let input = BufReader::with_capacity(
            IO_CHUNK,
            io::Cursor::new(frame_start).chain(SourceReader(archive)),
        );
        let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
            .map_err(|err| decompress(err.to_string()))?;
        decoder
            .window_log_max(WINDOW_LOG_MAX)
            .map_err(|err| decompress(err.to_string()))?;
        Ok(Self {
            decoder: decoder.single_frame(),
        })
    }

    /// Once the frame was decoded to its end: requires no byte after it and returns the
    /// caller's reader, read to its end.
    fn finish(self) -> Result<R, ExtractError> {
        let mut input = self.decoder.finish();
        match input.fill_buf() {
            Ok([]) => Ok(input.into_inner().into_inner().1 .0),
            Ok(_) => Err(ExtractError::TrailingData {
                detail: "bytes follow the zstd frame".to_owned(),
            }),
            Err(err) => Err(classify(
                io::Error::new(err.kind(), DecodeError(err)),
                false,
                None,
            )),
        }
    }
}

impl<R: Read> Read for DecodedStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder
            .read(buf)
            .map_err(|err| io::Error::new(err.kind(), DecodeError(err)))
    }
}

/// Decompressed chunks in flight between the decoding thread and the tar reader: enough
/// to ride out a slow file write, little enough that a bomb is never inflated far ahead of
/// the checks.
const AHEAD_CHUNKS: usize = 4;

/// What the decoding thread sends: a chunk (with the length filled), or how the stream
/// stopped (`Ok(())` at the end of the frame).
enum Decoded {
    Chunk(Vec<u8>, usize),
    Stopped(io::Result<()>),
}

/// The decompressed tar stream as the tar reader sees it, decoded by a thread of the
/// caller's scope; counts what was read and whether it ended.
pub(super) struct DecodedAhead<'scope, R: Read> {
    chunks: mpsc::Receiver<Decoded>,
    /// Read chunks go back to the decoding thread, so it allocates no more than a few.
    spent: mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    start: usize,
    end: usize,
    position: u64,
    pub(super) at_end: bool,
    decoder: std::thread::ScopedJoinHandle<'scope, DecodedStream<R>>,
}

impl<'scope, R: Read + Send + 'scope> DecodedAhead<'scope, R> {
    pub(super) fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        stream: DecodedStream<R>,
    ) -> Self {
        let (chunk_tx, chunks) = mpsc::sync_channel(AHEAD_CHUNKS);
        let (spent, spent_rx) = mpsc::sync_channel(AHEAD_CHUNKS + 1);
        let decoder = scope.spawn(move || decode(stream, &chunk_tx, &spent_rx));
        Self {
            chunks,
            spent,
            current: Vec::new(),
            start: 0,
            end: 0,
            position: 0,
            at_end: false,
            decoder,
        }
    }

    /// Requires what follows the last entry to be the end-of-archive marker and zero
    /// padding only, the zstd frame to end there with a valid checksum, and no byte after it.
    /// Returns the caller's reader, read to its end.
    pub(super) fn finish(mut self, entries_end: u64) -> Result<R, ExtractError> {
        let mut block = [0u8; TAR_BLOCK as usize];
        loop {
            let n = match self.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(classify(err, self.at_end, None)),
            };
            if block[..n].iter().any(|&b| b != 0) {
                return Err(ExtractError::TrailingData {
                    detail: "non-zero bytes after the last entry".to_owned(),
                });
            }
            if self.position.saturating_sub(entries_end) > MAX_END_PADDING {
                return Err(ExtractError::TrailingData {
                    detail: format!(
                        "more than {MAX_END_PADDING} bytes of padding after the last entry"
                    ),
                });
            }
        }
        let padding = self.position.saturating_sub(entries_end);
        if padding < TAR_END_MARKER {
            return Err(ExtractError::Truncated {
                path: None,
                detail: "the end-of-archive marker is missing".to_owned(),
            });
        }
        if !padding.is_multiple_of(TAR_BLOCK) {
            return Err(ExtractError::TrailingData {
                detail: "the padding is not a whole number of tar blocks".to_owned(),
            });
        }
        // The thread returned after sending the end of the frame.
        self.decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .finish()
    }
}

impl<R: Read> Read for DecodedAhead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.start == self.end {
            if self.at_end {
                return Ok(0);
            }
            match self.chunks.recv() {
                Ok(Decoded::Chunk(chunk, len)) => {
                    let spent = std::mem::replace(&mut self.current, chunk);
                    if !spent.is_empty() {
                        // The thread may have stopped already; then the chunk is freed.
                        let _ = self.spent.try_send(spent);
                    }
                    (self.start, self.end) = (0, len);
                }
                Ok(Decoded::Stopped(Ok(()))) => self.at_end = true,
                Ok(Decoded::Stopped(Err(err))) => return Err(err),
                Err(mpsc::RecvError) => {
                    return Err(io::Error::other("the decoding thread stopped early"))
                }
            }
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.current[self.start..self.start + n]);
        self.start += n;
        self.position += n as u64;
        Ok(n)
    }
}

/// The decoding thread: fills chunks from `stream` and sends them until the frame ends, a
/// read fails, or the reader hung up; returns the stream for [`DecodedStream::finish`].
fn decode<R: Read>(
    mut stream: DecodedStream<R>,
    chunks: &mpsc::SyncSender<Decoded>,
    spent: &mpsc::Receiver<Vec<u8>>,
) -> DecodedStream<R> {
    loop {
        let mut chunk = spent.try_recv().unwrap_or_else(|_| vec![0; IO_CHUNK]);
        let mut len = 0;
        let stopped = loop {
            match stream.read(&mut chunk[len..]) {
                Ok(0) => break Some(Ok(())),
                Ok(n) => {
                    len += n;
                    if len == chunk.len() {
                        break None;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => break Some(Err(err)),
            }
        };
        if len > 0 && chunks.send(Decoded::Chunk(chunk, len)).is_err() {
            return stream;
        }
        if let Some(stopped) = stopped {
            let _ = chunks.send(Decoded::Stopped(stopped));
            return stream;
        }
    }
}

/// Takes the marker error `M` out of `error` if that is what it carries.
fn take_marker<M: std::error::Error + Send + Sync + 'static>(
    error: io::Error,
) -> Result<M, io::Error> {
    if !error.get_ref().is_some_and(|inner| inner.is::<M>()) {
        return Err(error);
    }
    let kind = error.kind();
    let inner = error
        .into_inner()
        .expect("get_ref returned the inner error");
    inner
        .downcast::<M>()
        .map(|marker| *marker)
        .map_err(|other| io::Error::new(kind, other))
}

/// Names a failed read of the tar stream after where it came from: the caller's reader, the
/// zstd decoder, or the tar parser (which fails on a short stream too).
pub(super) fn classify(error: io::Error, stream_ended: bool, path: Option<String>) -> ExtractError {
    match take_marker::<DecodeError>(error) {
        Ok(DecodeError(inner)) => match take_marker::<SourceError>(inner) {
            Ok(SourceError(source)) => ExtractError::ReadArchive { source },
            Err(inner) if inner.kind() == io::ErrorKind::UnexpectedEof => ExtractError::Truncated {
                path,
                detail: format!("the compressed stream ends inside the zstd frame ({inner})"),
            },
            Err(inner) => ExtractError::Decompress {
                detail: inner.to_string(),
            },
        },
        Err(error) if stream_ended => ExtractError::Truncated {
            path,
            detail: error.to_string(),
        },
        Err(error) => ExtractError::HeaderInvalid {
            path,
            detail: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};

    use crate::archive::extract::test_archives::{
        assert_refused, base_manifest, base_tar, compress, names, RawTar, Sandbox,
    };
    use crate::archive::extract::{extract_verified, ExtractLimits};

    #[test]
    fn truncated_streams_are_refused() {
        let archive = base_tar().archive();
        for cut in [3, archive.len() / 2, archive.len() - 4, archive.len() - 1] {
            assert_refused(&archive[..cut], &base_manifest(), "truncated");
        }
        let mut no_end_marker = base_tar().0;
        no_end_marker.resize(no_end_marker.len() + 512, 0);
        assert_refused(&compress(&no_end_marker), &base_manifest(), "truncated");
        let mut cut_inside_file = base_tar().0;
        cut_inside_file.truncate(512 * 4 + 2);
        assert_refused(&compress(&cut_inside_file), &base_manifest(), "truncated");
    }

    #[test]
    fn trailing_data_is_refused() {
        let mut garbage = base_tar().archive();
        garbage.extend_from_slice(b"garbage");
        assert_refused(&garbage, &base_manifest(), "trailing_data");

        let mut second_frame = base_tar().archive();
        second_frame.extend_from_slice(&RawTar::new().dir("evil").archive());
        assert_refused(&second_frame, &base_manifest(), "trailing_data");

        let mut after_end = base_tar().end();
        after_end.extend_from_slice(b"smuggled");
        assert_refused(&compress(&after_end), &base_manifest(), "trailing_data");

        let mut long_padding = base_tar().end();
        long_padding.resize(long_padding.len() + 64 * 512, 0);
        assert_refused(&compress(&long_padding), &base_manifest(), "trailing_data");

        let mut gnu_tar_record = base_tar().end();
        gnu_tar_record.resize(gnu_tar_record.len().next_multiple_of(10240), 0);
        Sandbox::new()
            .extract(
                &compress(&gnu_tar_record),
                &base_manifest(),
                &ExtractLimits::default(),
            )
            .unwrap();
    }

    #[test]
    fn zstd_frames_must_be_valid_and_checksummed() {
        assert_refused(&base_tar().end(), &base_manifest(), "decompress");
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(false).unwrap();
        encoder.write_all(&base_tar().end()).unwrap();
        let unchecked = encoder.finish().unwrap();
        assert_refused(&unchecked, &base_manifest(), "decompress");
        let mut bad_checksum = base_tar().archive();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 0xff;
        assert_refused(&bad_checksum, &base_manifest(), "decompress");
    }

    #[test]
    fn reader_failures_are_not_blamed_on_the_archive() {
        struct FailingAfter(Vec<u8>);
        impl Read for FailingAfter {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let archive = base_tar().archive();
        let sandbox = Sandbox::new();
        let err = extract_verified(
            FailingAfter(archive[..archive.len() / 2].to_vec()),
            &base_manifest(),
            &sandbox.dest(),
            &ExtractLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "read_archive", "{err}");
        assert!(!err.is_archive_fault());
        assert!(err.record().message.contains("disk on fire"), "{err}");
        assert_eq!(names(&sandbox.cache()), Vec::<String>::new());
    }
}
