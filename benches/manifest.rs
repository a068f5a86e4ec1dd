//! Manifest hashing throughput: `hermetic::archive::pack::manifest_of_tree` (path, type,
//! mode, size and BLAKE3 of every file, as the packer computes them) against `b3sum` over
//! the same regular files, in one run, interleaved, page cache warm for both.
//!
//!   cargo bench -p hermetic --bench manifest -- PARENT CHILD [RUNS]
//!
//! hashes PARENT/CHILD (e.g. /usr/lib x86_64-linux-gnu) and prints the medians and the
//! throughput ratio (goal: hermetic >= 0.9x b3sum). Run by benches/manifest.sh.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hermetic::archive::outpath::OutputPath;
use hermetic::archive::pack::manifest_of_tree;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (parent, child) = match args.as_slice() {
        [parent, child, ..] => (PathBuf::from(parent), child.clone()),
        _ => {
            eprintln!("usage: manifest PARENT CHILD [RUNS]");
            std::process::exit(2);
        }
    };
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
    let output = OutputPath::parse(&child).expect("CHILD is a relative path");

    let manifest = manifest_of_tree(&parent, std::slice::from_ref(&output)).expect("hash the tree");
    let files: Vec<PathBuf> = manifest
        .files
        .iter()
        .filter(|entry| entry.blake3.is_some())
        .map(|entry| parent.join(&entry.path))
        .collect();
    let bytes: u64 = manifest.files.iter().map(|entry| entry.size).sum();
    println!(
        "tree: {} ({} files, {:.0} MB)",
        parent.join(&child).display(),
        files.len(),
        bytes as f64 / 1e6
    );

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        manifest_of_tree(&parent, std::slice::from_ref(&output)).expect("hash the tree");
        ours.push(started.elapsed());
        theirs.push(b3sum(&files));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let throughput = |took: Duration| bytes as f64 / 1e6 / took.as_secs_f64();
    println!(
        "hermetic manifest  median {:.3} s  ({:.0} MB/s)",
        ours.as_secs_f64(),
        throughput(ours)
    );
    println!(
        "b3sum              median {:.3} s  ({:.0} MB/s)",
        theirs.as_secs_f64(),
        throughput(theirs)
    );
    println!(
        "throughput hermetic / b3sum: {:.2}x (goal >= 0.9x)",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

/// `b3sum` over `files`, in batches that fit a command line.
fn b3sum(files: &[PathBuf]) -> Duration {
    let started = Instant::now();
    for batch in files.chunks(2000) {
        let status = Command::new("b3sum")
            .args(batch.iter().map(|path| path.as_os_str()))
            .stdout(Stdio::null())
            .status()
            .expect("run b3sum (apt-get install b3sum)");
        assert!(status.success(), "b3sum failed");
    }
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
