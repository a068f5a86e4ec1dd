#!/usr/bin/env bash
# The daemon's cost and capacity, on this machine, in one run:
#   - `hermetic run -- /bin/true` through the daemon against `--no-daemon`, interleaved
#     (goal: median ratio <= 1.2);
#   - sustained trivial jobs per second with 2 workers, from 8 concurrent clients
#     (goal: >= 50/s);
#   - the daemon's idle RSS with its sandbox zygote's, fresh and after the load (goal: <= 20 MB).
# The daemon is autostarted on a socket and state dir of its own and stopped at the end.
#
#   benches/daemon.sh [RUNS] [JOBS]        (default 200 interleaved runs, 500 jobs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"
jobs="${2:-500}"
cargo build --release -q -p hermetic-cli
work="$(mktemp -d)"
export HERMETIC_CONFIG="$work/config.toml"
cat >"$HERMETIC_CONFIG" <<TOML
version = 1
socket = "$work/run/hermeticd.sock"
state_dir = "$work/state"
max_concurrent = 2
queue_limit = 1000
TOML
trap '"$PWD/target/x86_64-unknown-linux-gnu/release/hermetic" daemon stop >/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/src"
python3 benches/daemon.py "$runs" "$jobs" "$PWD/target/x86_64-unknown-linux-gnu/release/hermetic" "$work/src"
