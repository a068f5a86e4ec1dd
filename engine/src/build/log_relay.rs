//! The canonical run's log on its way to the caller's sink, hashed as it passes.
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

use hermetic_contract::report::LogReport;

/// Copies a run's log to the caller's sink while hashing it. One pipe serves as both
/// stdout and stderr, so the log keeps the order in which the build wrote it.
pub(super) struct LogRelay {
    writer: std::io::PipeWriter,
    thread: JoinHandle<LogReport>,
}

impl LogRelay {
    pub(super) fn start(sink: std::io::Result<Box<dyn Write + Send>>) -> std::io::Result<Self> {
        let mut sink = sink?;
        let (mut reader, writer) = std::io::pipe()?;
        let thread = std::thread::spawn(move || {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            let mut bytes = 0u64;
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                bytes += n as u64;
                // A sink that stops accepting (a closed terminal) must not stop the build.
                let _ = sink.write_all(&buffer[..n]);
            }
            let _ = sink.flush();
            LogReport {
                sha256: hex::encode(hasher.finalize()),
                bytes,
            }
        });
        Ok(LogRelay { writer, thread })
    }

    /// The build's stdout and stderr: both the relay's pipe.
    pub(super) fn streams(&self) -> std::io::Result<(OwnedFd, OwnedFd)> {
        Ok((
            OwnedFd::from(self.writer.try_clone()?),
            OwnedFd::from(self.writer.try_clone()?),
        ))
    }

    /// Waits for the log's end (every copy of the pipe closed) and returns its digest.
    pub(super) fn finish(self) -> LogReport {
        drop(self.writer);
        self.thread.join().unwrap_or_default()
    }
}
