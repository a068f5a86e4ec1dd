//! The signed cache: the poisoning suite (every applicable row of the restore attack
//! catalog, against the library), and end-to-end builds through the `hermetic` binary
//! (hits, misses, quarantine then a fresh build, nondeterministic results, gc).
#[path = "../support/mod.rs"]
mod support;

/// `hermetic build --cache-dir` and `hermetic cache` end to end.
mod builds;
/// kill -9 at each step of store, restore, quarantine and gc.
mod crash;
/// A daemon of the test's own (tests/daemon/fixture.rs), one of the racers.
#[allow(dead_code)] // the daemon suite uses more of it
#[path = "../daemon/fixture.rs"]
mod daemon_fixture;
/// A real entry and the tools to attack it.
mod fixture;
/// `cache gc --max-size` takes sizes as profiles write them.
mod gc_size;
/// Attacks on entries: each refused, quarantined, logged, and nothing touched.
mod poison;
/// Processes storing, restoring, gc-ing and quarantining one key at once.
mod race;
/// The remote cache on a real OCI registry: sharing, poisoning, conflicts, outages.
mod remote;
