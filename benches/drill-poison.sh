#!/usr/bin/env bash
# `hermetic drill poison` on a large entry, in one run on this machine (release build):
# a deployment cache holding an entry made from a large tree (by default about 1 GB and
# 10k files, the tree of benches/cache.sh), then `hermetic drill poison --payload` with
# the same tree, so every attack is made against, and restored from, an entry of that size.
# Prints the time of each attack from the drill's report, sorted, and as a ratio to one
# verified restore of the deployment's entry of the same size (`hermetic cache restore`,
# median of RUNS, measured in the same run), and the drill's total time.
#
#   benches/drill-poison.sh [RUNS]      (default 3)
#
# HERMETIC=/path/to/hermetic skips the release build; TREE="dir ..." picks the
# directories copied into the entries. (The determinism drill's part is benches/drill.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
if [ -z "${HERMETIC:-}" ]; then
  cargo build --release -q -p hermetic-cli
  HERMETIC="$PWD/target/x86_64-unknown-linux-gnu/release/hermetic"
fi
tree="${TREE:-/usr/lib/x86_64-linux-gnu /usr/lib/python3.11 /usr/lib/gcc /usr/share/doc}"
exec python3 benches/drill_poison.py "$HERMETIC" "$runs" $tree
