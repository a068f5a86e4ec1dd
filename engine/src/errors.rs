//! How the engine's errors read where they end up as text (a report, a job record).

/// An error and its causes on one line (as `{:#}` prints an anyhow error): the top error
/// alone would drop the OS error underneath.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
