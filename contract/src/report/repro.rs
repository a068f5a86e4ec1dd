//! What a dual build found: what the second run varied, how the outputs differ, and why
//! they are suspected to.
use serde::{Deserialize, Serialize};

use super::build::RunName;
use crate::names::named_values;

/// One thing the second run varied.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Varied {
    /// `clock`, `directory-order`, `inode-numbers`, `pids`, `cpu-placement` or `aslr`.
    pub what: String,
    pub how: String,
}

/// How one path differs between the canonical run (a) and another run (b).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Difference {
    pub path: String,
    pub kind: DifferenceKind,
    /// BLAKE3 of the file in run a (None when not a regular file there).
    pub digest_a: Option<String>,
    pub digest_b: Option<String>,
}

named_values! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
    pub enum DifferenceKind {
        /// Both are regular files with different bytes.
        Content = "content",
        /// Same content, different normalised mode (exec bit).
        Mode = "mode",
        /// A file in one run, a directory or symlink in the other.
        Type = "type",
        /// Both are symlinks with different targets.
        Symlink = "symlink",
        /// Present in a, absent in b.
        Missing = "missing",
        /// Absent in a, present in b.
        Extra = "extra",
    }
}

/// Why a differing path is suspected to differ.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct SuspectedCause {
    pub path: String,
    #[serde(flatten)]
    pub suspect: Suspect,
}

/// A suspected cause, named by its `cause` field.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Suspect {
    /// The file holds a value from its run's time window.
    TimestampLeak {
        run: RunName,
        encoding: TimestampEncoding,
        offset: usize,
    },
    /// It also differs between two identical canonical runs.
    IntrinsicRandomness,
    /// Identical canonical runs agree, so it depends on something b varied.
    VariationSensitive,
}

impl Suspect {
    /// The `cause` it is written with.
    pub fn cause(&self) -> &'static str {
        match self {
            Suspect::TimestampLeak { .. } => "timestamp-leak",
            Suspect::IntrinsicRandomness => "intrinsic-randomness",
            Suspect::VariationSensitive => "variation-sensitive",
        }
    }
}

named_values! {
    /// How a timestamp from the build's time window was written into a file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
    pub enum TimestampEncoding {
        Decimal = "decimal",
        U32LittleEndian = "u32-little-endian",
        U32BigEndian = "u32-big-endian",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::written_names;

    #[test]
    fn every_named_value_is_written_as_documented_and_reads_back() {
        assert_eq!(
            written_names(DifferenceKind::ALL, DifferenceKind::as_str),
            ["content", "mode", "type", "symlink", "missing", "extra"]
        );
        assert_eq!(
            written_names(TimestampEncoding::ALL, TimestampEncoding::as_str),
            ["decimal", "u32-little-endian", "u32-big-endian"]
        );
    }

    #[test]
    fn each_suspected_cause_is_written_flat_under_its_cause_and_reads_back() {
        let leak = Suspect::TimestampLeak {
            run: RunName::B,
            encoding: TimestampEncoding::U32BigEndian,
            offset: 7,
        };
        for suspect in [
            leak,
            Suspect::IntrinsicRandomness,
            Suspect::VariationSensitive,
        ] {
            let cause = SuspectedCause {
                path: "out/a".into(),
                suspect,
            };
            let json = serde_json::to_value(&cause).unwrap();
            assert_eq!(json["cause"], cause.suspect.cause(), "{json}");
            assert_eq!(json["path"], "out/a", "{json}");
            assert_eq!(
                serde_json::from_value::<SuspectedCause>(json).unwrap(),
                cause
            );
        }
        let leak = serde_json::to_string(&SuspectedCause {
            path: "out/a".into(),
            suspect: Suspect::TimestampLeak {
                run: RunName::A,
                encoding: TimestampEncoding::Decimal,
                offset: 3,
            },
        })
        .unwrap();
        assert_eq!(
            leak,
            r#"{"path":"out/a","cause":"timestamp-leak","run":"a","encoding":"decimal","offset":3}"#
        );
    }
}
