//! Sending the spec to a helper that reads it from its pipe (exec'd, or forked by the
//! zygote or before the spec existed).
use std::fs::File;
use std::io::Write;

use crate::sandbox::error::SandboxError;
use crate::sandbox::message::pipe_capacity;
use crate::sandbox::spec::SandboxSpec;

/// The spec for a helper that reads it from its pipe: written before the helper starts
/// when the pipe holds it all, so that the helper finds it waiting instead of waiting for
/// the launcher's reply from the zygote and the encoding; otherwise written after.
pub(super) struct SpecSender {
    pipe: File,
    unsent: Option<Vec<u8>>,
}

impl SpecSender {
    pub(super) fn start(spec: &SandboxSpec, mut pipe: File) -> Result<SpecSender, SandboxError> {
        let json = serde_json::to_vec(spec).map_err(|err| SandboxError::Protocol {
            step: "encode the spec",
            source: std::io::Error::other(err),
        })?;
        let fits = pipe_capacity(&pipe).is_some_and(|capacity| json.len() <= capacity);
        if !fits {
            return Ok(SpecSender {
                pipe,
                unsent: Some(json),
            });
        }
        pipe.write_all(&json)
            .map_err(|source| SandboxError::Protocol {
                step: "send the spec",
                source,
            })?;
        Ok(SpecSender { pipe, unsent: None })
    }

    /// Sends what did not fit, now that a helper reads; then closes the pipe.
    pub(super) fn finish(mut self) {
        if let Some(json) = self.unsent.take() {
            // A helper that failed early closes its end; its report explains why.
            let _ = self.pipe.write_all(&json);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::sandbox::launch::start::pipe;
    use crate::sandbox::launch::tests::default_spec;

    /// A spec the pipe cannot hold is not written ahead (that would block before any
    /// helper reads), and arrives whole once a reader is there.
    #[test]
    fn a_spec_larger_than_the_pipe_is_sent_once_the_helper_reads() {
        let mut spec = default_spec();
        spec.command.push("x".repeat(8192));
        let json = serde_json::to_vec(&spec).unwrap();
        let (read_end, write_end) = pipe().unwrap();
        let capacity =
            nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
        assert!(json.len() > capacity as usize, "{} bytes", json.len());

        let sender = SpecSender::start(&spec, File::from(write_end)).unwrap();
        assert!(sender.unsent.is_some());
        let reader = std::thread::spawn(move || {
            let mut received = Vec::new();
            File::from(read_end).read_to_end(&mut received).unwrap();
            received
        });
        sender.finish();
        assert_eq!(reader.join().unwrap(), json);
    }

    /// One that fits is waiting in the pipe before the helper starts.
    #[test]
    fn a_spec_the_pipe_holds_is_written_before_the_helper_starts() {
        let spec = default_spec();
        let (read_end, write_end) = pipe().unwrap();
        let sender = SpecSender::start(&spec, File::from(write_end)).unwrap();
        assert!(sender.unsent.is_none());
        sender.finish();
        let mut received = Vec::new();
        File::from(read_end).read_to_end(&mut received).unwrap();
        assert_eq!(received, serde_json::to_vec(&spec).unwrap());
    }
}
