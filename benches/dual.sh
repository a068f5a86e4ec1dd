#!/usr/bin/env bash
# Dual-run cost, in one run on this machine (release build):
#   1. time to verdict of `hermetic build` vs `reprotest 'sh build.sh' 'out/*'` on the same
#      trivial build scripts (one reproducible, one not): median of RUNS each, interleaved,
#      and the ratio of medians;
#   2. wall time of a dual run vs a single sandboxed run (`hermetic build --single`) of a
#      CPU-bound single-threaded build of about SECONDS s: median of CPU_RUNS each, the ratio,
#      and whether dual <= 1.1 x single + 1 s.
#
#   benches/dual.sh [RUNS] [CPU_RUNS] [SECONDS]      (defaults 7, 3, 10)
#
# Needs reprotest (Debian 12: apt-get install -y --no-install-recommends reprotest
# diffoscope-minimal disorderfs faketime), gcc and python3. HERMETIC=/path/to/hermetic
# skips the release build and measures that binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-7}"
cpu_runs="${2:-3}"
seconds="${3:-10}"
if ! command -v reprotest >/dev/null; then
  echo "bench needs reprotest: apt-get install -y --no-install-recommends reprotest diffoscope-minimal disorderfs faketime" >&2
  exit 2
fi
command -v gcc >/dev/null || { echo "bench needs gcc: apt-get install -y gcc libc6-dev" >&2; exit 2; }
if [ -z "${HERMETIC:-}" ]; then
  cargo build --release -q -p hermetic-cli
  HERMETIC="$PWD/target/x86_64-unknown-linux-gnu/release/hermetic"
fi
exec python3 benches/dual.py "$HERMETIC" "$runs" "$cpu_runs" "$seconds"
