//! A job's log: everything the build writes to stdout and stderr, in one file, capped.
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The shared end of a job's log file. Bytes past the limit are dropped, and the log
/// ends with a line saying so.
#[derive(Clone)]
pub struct JobLog {
    inner: Arc<Mutex<Capped>>,
}

struct Capped {
    file: File,
    written: u64,
    limit: u64,
    truncated: bool,
}

impl JobLog {
    pub fn open(path: &Path, limit: u64) -> std::io::Result<JobLog> {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(JobLog {
            inner: Arc::new(Mutex::new(Capped {
                file,
                written: 0,
                limit,
                truncated: false,
            })),
        })
    }

    /// Relays a pipe into the log until every writer of the pipe is closed.
    pub fn relay(&self, mut reader: std::io::PipeReader) -> JoinHandle<()> {
        let mut log = self.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        let _ = log.write_all(&buffer[..n]);
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
    }

    /// Appends a line from the daemon itself (not counted against the cap).
    pub fn note(&self, line: &str) {
        let mut capped = self.lock();
        let _ = writeln!(capped.file, "[hermeticd] {line}");
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
            capped.file.write_all(&buf[..keep])?;
            capped.written += keep as u64;
        }
        if keep < buf.len() && !capped.truncated {
            capped.truncated = true;
            let limit = capped.limit;
            let _ = write!(
                capped.file,
                "\n[hermeticd] log truncated: the limit is {limit} bytes\n"
            );
        }
        // The rest is dropped, not refused: a build must not fail because its log is long.
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stops_at_its_limit_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        File::create(&path).unwrap();
        let mut log = JobLog::open(&path, 10).unwrap();
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
}
