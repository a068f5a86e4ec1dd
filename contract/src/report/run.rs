//! How `hermetic run` ended, in process or as a daemon job.
use serde::{Deserialize, Serialize};

use crate::names::named_values;

named_values! {
    /// How a `hermetic run` command ended; the last three mean it never ran.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
    pub enum RunVerdict {
        /// It exited (with its own status, 0 or not).
        Exited = "exited",
        /// A signal killed it.
        Signaled = "signaled",
        /// It exceeded the profile's timeout and was killed.
        TimedOut = "timed-out",
        /// The command was not found in the sandbox.
        NotFound = "not-found",
        /// The command exists but could not be executed.
        CannotExecute = "cannot-execute",
        /// The sandbox could not be set up (configuration included).
        SandboxFailed = "sandbox-failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::written_names;

    #[test]
    fn every_verdict_is_written_as_documented_and_reads_back() {
        assert_eq!(
            written_names(RunVerdict::ALL, RunVerdict::as_str),
            [
                "exited",
                "signaled",
                "timed-out",
                "not-found",
                "cannot-execute",
                "sandbox-failed"
            ]
        );
    }
}
