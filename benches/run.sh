#!/usr/bin/env bash
# Sandbox startup + teardown: `hermetic run -- /bin/true` (in-process with --no-daemon, and
# through the daemon) against bubblewrap with hardened
# flags and plain `unshare -Urnpf`, measured in the same run, interleaved in random order,
# on this machine.
# Prints min/median/p90 per variant and the ratio of medians against bwrap.
#
#   benches/run.sh [RUNS]        (default 200; needs bubblewrap: apt-get install bubblewrap)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"
command -v bwrap >/dev/null || { echo "bench needs bwrap: apt-get install -y bubblewrap" >&2; exit 2; }
cargo build --release -q -p hermetic-cli
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
exec python3 benches/startup.py "$runs" "$PWD/target/x86_64-unknown-linux-gnu/release/hermetic" "$src"
