//! How the engine's errors read where they end up as text (a report, a job record, a log
//! line). An error's own message never repeats its cause: the cause is its `source()`, and
//! text is made from the whole chain, once each, as anyhow's `{:#}` prints it.
use std::fmt;

/// An error and its causes on one line, `outer: inner: os error`.
pub struct Chain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(out, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(out, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// [`Chain`] as a string.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    Chain(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read {path}")]
    struct ReadFailed {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_named_once() {
        let err = ReadFailed {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            error_chain(&err),
            "failed to read /x: Permission denied (os error 13)"
        );
    }
}
