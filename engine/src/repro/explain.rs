//! Why outputs differ: the evidence a human needs, never part of the verdict itself.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

pub use hermetic_contract::report::TimestampEncoding;

/// A run's wall-clock window as the build saw it (seconds since 1970, shift included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TimeWindow {
    pub start: u64,
    pub end: u64,
}

impl TimeWindow {
    /// Seconds a timestamp may fall outside the window and still count (clock reads
    /// happen a little before the process we time starts, and rounding).
    const SLACK: u64 = 2;

    fn contains(&self, value: u64) -> bool {
        value + Self::SLACK >= self.start && value <= self.end + Self::SLACK
    }
}

/// Where a value from `window` occurs in `bytes`: each encoding found, with its first offset.
pub fn find_timestamps(bytes: &[u8], window: TimeWindow) -> Vec<(TimestampEncoding, usize)> {
    let mut found = Vec::new();
    if let Some(offset) = find_decimal(bytes, window) {
        found.push((TimestampEncoding::Decimal, offset));
    }
    for (encoding, read) in [
        (
            TimestampEncoding::U32LittleEndian,
            u32::from_le_bytes as fn([u8; 4]) -> u32,
        ),
        (
            TimestampEncoding::U32BigEndian,
            u32::from_be_bytes as fn([u8; 4]) -> u32,
        ),
    ] {
        let hit = bytes
            .windows(4)
            .position(|w| window.contains(u64::from(read([w[0], w[1], w[2], w[3]]))));
        if let Some(offset) = hit {
            found.push((encoding, offset));
        }
    }
    found
}

/// A run of 9 to 11 ASCII digits (not part of a longer number) whose value is in the window.
fn find_decimal(bytes: &[u8], window: TimeWindow) -> Option<usize> {
    let mut start = None;
    for (index, byte) in bytes
        .iter()
        .copied()
        .chain(std::iter::once(b' '))
        .enumerate()
    {
        match (byte.is_ascii_digit(), start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                start = None;
                let digits = &bytes[begin..index];
                if (9..=11).contains(&digits.len()) {
                    let value: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
                    if window.contains(value) {
                        return Some(begin);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Reads the content of the `wanted` regular files from one of our output archives
/// (at most `cap` bytes per file).
pub fn read_archived_files(
    archive: &Path,
    wanted: &BTreeSet<String>,
    cap: u64,
) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let file = std::fs::File::open(archive)?;
    let mut reader = tar::Archive::new(zstd::Decoder::new(file)?);
    let mut found = BTreeMap::new();
    for entry in reader.entries()? {
        let entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        if wanted.contains(&path) {
            let mut content = Vec::new();
            entry.take(cap).read_to_end(&mut content)?;
            found.insert(path, content);
            if found.len() == wanted.len() {
                break;
            }
        }
    }
    Ok(found)
}

/// The built-in explanation of one differing file: sizes, the first differing byte, and a
/// line diff for small text files.
pub fn summarise_file(path: &str, a: &[u8], b: &[u8]) -> String {
    let mut text = format!(
        "== {path}\n   size a: {} bytes, size b: {} bytes\n",
        a.len(),
        b.len()
    );
    let first = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let _ = writeln!(text, "   first difference at byte {first}");
    const TEXT_LIMIT: usize = 64 * 1024;
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(ta), Ok(tb)) if a.len() <= TEXT_LIMIT && b.len() <= TEXT_LIMIT => {
            let (la, lb): (Vec<&str>, Vec<&str>) = (ta.lines().collect(), tb.lines().collect());
            let mut shown = 0;
            for index in 0..la.len().max(lb.len()) {
                let (x, y) = (la.get(index), lb.get(index));
                if x == y {
                    continue;
                }
                if let Some(x) = x {
                    let _ = writeln!(text, "   line {}: - {x}", index + 1);
                }
                if let Some(y) = y {
                    let _ = writeln!(text, "   line {}: + {y}", index + 1);
                }
                shown += 1;
                if shown == 20 {
                    let _ = writeln!(text, "   ...");
                    break;
                }
            }
        }
        _ => {
            let context = |bytes: &[u8]| hex_window(bytes, first);
            let _ = writeln!(text, "   a: {}\n   b: {}", context(a), context(b));
        }
    }
    text
}

fn hex_window(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(8);
    let end = (at + 24).min(bytes.len());
    if start >= end {
        return "(end of file)".into();
    }
    hex::encode(&bytes[start..end])
}

/// Runs diffoscope on two directories when it is installed; None when it is not.
/// Bounded by `timeout` and `max_report_bytes` (a report is cut, never allowed to grow).
pub fn run_diffoscope(
    a: &Path,
    b: &Path,
    report: &Path,
    timeout: Duration,
    max_report_bytes: u64,
) -> Option<std::io::Result<()>> {
    let program = find_on_path("diffoscope")?;
    let run = || -> std::io::Result<()> {
        let mut child = crate::sys::creds::as_caller(&mut Command::new("timeout"))
            .arg(format!("{}s", timeout.as_secs().max(1)))
            .arg(program)
            .arg("--text")
            .arg(report)
            .arg("--max-report-size")
            .arg(max_report_bytes.to_string())
            .arg("--no-default-limits")
            .arg(a)
            .arg(b)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        child.wait()?;
        Ok(())
    };
    Some(run())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: TimeWindow = TimeWindow {
        start: 1_700_000_000,
        end: 1_700_000_010,
    };

    #[test]
    fn finds_a_decimal_timestamp() {
        let found = find_timestamps(b"built at 1700000005 by make", WINDOW);
        assert_eq!(found, [(TimestampEncoding::Decimal, 9)]);
    }

    #[test]
    fn ignores_numbers_outside_the_window_and_longer_digit_runs() {
        assert!(find_timestamps(b"1600000000 and 17000000050", WINDOW).is_empty());
    }

    #[test]
    fn finds_binary_timestamps_in_both_byte_orders() {
        let mut bytes = vec![0u8; 8];
        bytes.extend_from_slice(&1_700_000_003u32.to_le_bytes());
        assert_eq!(
            find_timestamps(&bytes, WINDOW),
            [(TimestampEncoding::U32LittleEndian, 8)]
        );
        let mut bytes = vec![0u8; 3];
        bytes.extend_from_slice(&1_700_000_003u32.to_be_bytes());
        assert_eq!(
            find_timestamps(&bytes, WINDOW),
            [(TimestampEncoding::U32BigEndian, 3)]
        );
    }

    #[test]
    fn summary_shows_the_changed_lines_of_text() {
        let text = summarise_file("out/a", b"same\nold\n", b"same\nnew\n");
        assert!(text.contains("first difference at byte 5"), "{text}");
        assert!(
            text.contains("line 2: - old") && text.contains("line 2: + new"),
            "{text}"
        );
    }

    #[test]
    fn summary_shows_bytes_around_a_binary_difference() {
        let text = summarise_file("out/b", &[0, 1, 2, 0xff], &[0, 1, 3, 0xff]);
        assert!(text.contains("first difference at byte 2"), "{text}");
        assert!(
            text.contains("a: 000102ff") && text.contains("b: 000103ff"),
            "{text}"
        );
    }
}
