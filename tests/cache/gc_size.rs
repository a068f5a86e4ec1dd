//! `hermetic cache gc --max-size` through the real binary, on an entry made without a build.
use std::process::Output;

use serde_json::Value;

use crate::fixture::Fixture;
use crate::support::{assert_status, hermetic, stderr};

fn gc(fixture: &Fixture, max_size: &str) -> Output {
    hermetic()
        .args([
            "cache",
            "gc",
            "--json",
            "--max-size",
            max_size,
            "--cache-dir",
        ])
        .arg(fixture.store.root())
        .output()
        .expect("spawn hermetic")
}

fn report(output: &Output) -> Value {
    assert_status(output, 0);
    serde_json::from_slice(&output.stdout).expect("a JSON gc report")
}

/// The sizes a profile's limits are written in (`10GiB`) were once refused here.
#[test]
fn gc_max_size_takes_sizes_as_profiles_write_them() {
    let fixture = Fixture::new();
    let kept = report(&gc(&fixture, "10GiB"));
    assert_eq!(kept["kept"], 1, "{kept}");
    let entry_bytes = kept["kept_bytes"].as_u64().unwrap();
    let exactly = entry_bytes.to_string();
    let rounded_up = format!("{}KiB", entry_bytes.div_ceil(1024));
    for size in ["10G", "10GB", "10 gib", &exactly, &rounded_up] {
        assert_eq!(report(&gc(&fixture, size))["kept"], 1, "--max-size {size}");
    }

    let refused = gc(&fixture, "10 parsecs");
    assert_status(&refused, 2);
    assert!(
        stderr(&refused).contains("invalid value '10 parsecs' for '--max-size <SIZE>'")
            && stderr(&refused).contains("unknown unit `parsecs`"),
        "{}",
        stderr(&refused)
    );

    // One byte short of the entry, in KiB rounded down, evicts it.
    let below = format!("{}KiB", (entry_bytes - 1) / 1024);
    let evicted = report(&gc(&fixture, &below));
    assert_eq!(evicted["kept"], 0, "--max-size {below}: {evicted}");
    assert_eq!(evicted["evicted_bytes"], entry_bytes, "{evicted}");
}
