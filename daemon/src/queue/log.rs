//! A job's log: everything the build writes to stdout and stderr, in one file, capped.
//! Beside it, an index records which stream wrote each stretch of the log (5-byte
//! records: the `Stream` byte, then the length as u32 big-endian), so a client can give
//! a `run`'s stdout and stderr back separately (`GET /v1/jobs/{id}/log?framed=true`).
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use hermetic::background::Background;

/// Who wrote a stretch of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
    /// The daemon's own notes about the job (`[hermeticd] ...` lines).
    Daemon = 3,
}

impl Stream {
    pub fn from_byte(byte: u8) -> Option<Stream> {
        match byte {
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            3 => Some(Stream::Daemon),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Daemon => "daemon",
        }
    }
}

/// Size of one index record.
pub const INDEX_RECORD: usize = 5;

/// The index that goes with the log at `log`.
pub fn index_path(log: &Path) -> PathBuf {
    log.with_extension("streams")
}

/// The shared end of a job's log file. Bytes past the limit are dropped, and the log
/// ends with a line saying so. Each clone writes as one stream (stderr unless `tagged`).
///
/// The files are created at the first write ([`JobLog::create_files`] makes them sooner),
/// not when the job is submitted: creating a file is a journalled metadata update, 0.2-0.4
/// ms on an ext4 that has been idle, and two of them were a third of the daemon's cost
/// per job. Until then a reader finds no log, which reads as an empty one.
#[derive(Clone)]
pub struct JobLog {
    inner: Arc<Mutex<Capped>>,
    stream: Stream,
}

struct Capped {
    path: PathBuf,
    /// The log and its index once created, or why they could not be (every later write
    /// fails with that).
    files: Option<Result<(File, File), (std::io::ErrorKind, String)>>,
    written: u64,
    limit: u64,
    truncated: bool,
}

impl Capped {
    /// The log and its index, created on first use.
    fn files(&mut self) -> std::io::Result<(&mut File, &mut File)> {
        let path = &self.path;
        match self
            .files
            .get_or_insert_with(|| create_pair(path).map_err(|err| (err.kind(), err.to_string())))
        {
            Ok((log, index)) => Ok((log, index)),
            Err((kind, message)) => Err(std::io::Error::new(*kind, message.clone())),
        }
    }

    /// Appends `bytes` to the log, then their record to the index: a reader that sees a
    /// record finds its bytes already in the log.
    fn append(&mut self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let (log, index) = self.files()?;
        // Records are u32-sized; a larger write is split.
        for part in bytes.chunks(u32::MAX as usize) {
            log.write_all(part)?;
            let mut record = [0u8; INDEX_RECORD];
            record[0] = stream as u8;
            record[1..].copy_from_slice(&(part.len() as u32).to_be_bytes());
            index.write_all(&record)?;
        }
        Ok(())
    }
}

/// Creates (or empties) the log at `path` and its index, the index first: a reader that
/// finds the log finds its index too.
fn create_pair(path: &Path) -> std::io::Result<(File, File)> {
    let create = |path: &Path| {
        std::fs::File::create(path).map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("failed to create the job's log {}: {err}", path.display()),
            )
        })
    };
    let index = create(&index_path(path))?;
    Ok((create(path)?, index))
}

impl JobLog {
    /// The log of a job, at `path`; nothing is written to disk yet.
    pub fn new(path: &Path, limit: u64) -> JobLog {
        JobLog {
            inner: Arc::new(Mutex::new(Capped {
                path: path.to_owned(),
                files: None,
                written: 0,
                limit,
                truncated: false,
            })),
            stream: Stream::Stderr,
        }
    }

    /// Creates the log's files now if they are not yet.
    pub fn create_files(&self) -> std::io::Result<()> {
        self.lock().files().map(drop)
    }

    /// The same log, written as `stream`.
    pub fn tagged(&self, stream: Stream) -> JobLog {
        JobLog {
            inner: self.inner.clone(),
            stream,
        }
    }

    /// Relays a command's stdout and stderr pipes into the log, tagged, until every writer
    /// of both is closed. One thread reads both, stdout first when both are ready, so
    /// writes that are not simultaneous keep their order; two pipes cannot tell the order
    /// of writes closer together than the relay wakes up.
    pub fn relay_streams(
        &self,
        stdout: std::io::PipeReader,
        stderr: std::io::PipeReader,
    ) -> std::io::Result<Background<()>> {
        let mut open = vec![
            (self.tagged(Stream::Stdout), stdout),
            (self.tagged(Stream::Stderr), stderr),
        ];
        hermetic::background::spawn("hermetic-log-relay", move || {
            let mut buffer = [0u8; 16 * 1024];
            while !open.is_empty() {
                let mut ready = {
                    let mut fds: Vec<PollFd<'_>> = open
                        .iter()
                        .map(|(_, reader)| PollFd::new(reader.as_fd(), PollFlags::POLLIN))
                        .collect();
                    match poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) => fds
                            .iter()
                            .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()))
                            .collect::<Vec<bool>>(),
                        Err(Errno::EINTR) => continue,
                        Err(_) => return,
                    }
                }
                .into_iter();
                open.retain_mut(|(log, reader)| {
                    if !ready.next().unwrap_or(false) {
                        return true;
                    }
                    match reader.read(&mut buffer) {
                        Ok(0) => false,
                        Ok(n) => {
                            let _ = log.write_all(&buffer[..n]);
                            true
                        }
                        Err(err) => err.kind() == std::io::ErrorKind::Interrupted,
                    }
                });
            }
        })
    }

    /// Why the log's files could not be created, if they could not.
    pub fn failure(&self) -> Option<String> {
        match &self.lock().files {
            Some(Err((_, message))) => Some(message.clone()),
            None | Some(Ok(_)) => None,
        }
    }

    /// Appends a line from the daemon itself (not counted against the cap).
    pub fn note(&self, line: &str) {
        let _ = self
            .lock()
            .append(Stream::Daemon, format!("[hermeticd] {line}\n").as_bytes());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Capped> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Write for JobLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut capped = self.lock();
        let room = capped.limit.saturating_sub(capped.written);
        let keep = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if keep > 0 {
            capped.append(self.stream, &buf[..keep])?;
            capped.written += keep as u64;
        }
        if keep < buf.len() && !capped.truncated {
            capped.truncated = true;
            let note = format!(
                "\n[hermeticd] log truncated: the limit is {} bytes\n",
                capped.limit
            );
            let _ = capped.append(Stream::Daemon, note.as_bytes());
        }
        // The rest is dropped, not refused: a build must not fail because its log is long.
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.lock().files {
            Some(Ok((log, _))) => log.flush(),
            None | Some(Err(_)) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stops_at_its_limit_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = JobLog::new(&path, 10);
        log.write_all(b"0123456").unwrap();
        log.write_all(b"789abcdef").unwrap();
        log.write_all(b"more").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("0123456789\n[hermeticd] log truncated"),
            "{text}"
        );
        assert_eq!(text.matches("truncated").count(), 1);
    }

    #[test]
    fn the_files_are_created_at_the_first_write_and_a_failure_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = JobLog::new(&path, 1024);
        assert!(!path.exists() && !index_path(&path).exists());
        log.note("first");
        assert!(path.is_file() && index_path(&path).is_file());
        assert_eq!(log.failure(), None);

        let missing = JobLog::new(&dir.path().join("no/such/dir/log"), 1024);
        assert!(missing.create_files().is_err());
        let failure = missing.failure().unwrap();
        assert!(
            failure.contains("failed to create the job's log"),
            "{failure}"
        );
        assert!(missing.tagged(Stream::Stdout).write_all(b"lost").is_err());
    }

    #[test]
    fn the_relay_tags_each_pipe_and_ends_when_both_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = JobLog::new(&path, 1024);
        let (out_reader, mut out) = std::io::pipe().unwrap();
        let (err_reader, mut err) = std::io::pipe().unwrap();
        let relay = log.relay_streams(out_reader, err_reader).unwrap();
        out.write_all(b"out").unwrap();
        drop(out);
        err.write_all(b"err!").unwrap();
        drop(err);
        relay.join().unwrap();
        let index = std::fs::read(index_path(&path)).unwrap();
        let mut records: Vec<(u8, u32)> = index
            .chunks(INDEX_RECORD)
            .map(|r| (r[0], u32::from_be_bytes(r[1..].try_into().unwrap())))
            .collect();
        records.sort();
        assert_eq!(records, [(1, 3), (2, 4)]);
    }

    #[test]
    fn the_index_tells_which_stream_wrote_what() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = JobLog::new(&path, 1024);
        log.tagged(Stream::Stdout).write_all(b"out").unwrap();
        log.tagged(Stream::Stderr).write_all(b"err!").unwrap();
        log.note("done");
        let index = std::fs::read(index_path(&path)).unwrap();
        let records: Vec<(u8, u32)> = index
            .chunks(INDEX_RECORD)
            .map(|r| (r[0], u32::from_be_bytes(r[1..].try_into().unwrap())))
            .collect();
        assert_eq!(records, [(1, 3), (2, 4), (3, 17)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "outerr![hermeticd] done\n");
    }
}
