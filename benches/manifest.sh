#!/usr/bin/env bash
# Manifest hashing throughput against b3sum over the same files, in one run (release
# build): see benches/manifest.rs.
#
#   benches/manifest.sh [PARENT CHILD [RUNS]]     (default: /usr/lib x86_64-linux-gnu 5)
#
# Needs b3sum (Debian 12: apt-get install -y b3sum).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v b3sum >/dev/null || { echo "bench needs b3sum: apt-get install -y b3sum" >&2; exit 2; }
exec cargo bench -q -p hermetic --bench manifest -- "${1:-/usr/lib}" "${2:-x86_64-linux-gnu}" "${3:-5}"
