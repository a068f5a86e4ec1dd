#!/usr/bin/env bash
# Images, against a baseline measured in the same run on this machine (release build):
#   import   `hermetic image import --allow-setuid` of the Debian toolchain image (an OCI
#            layout, one uncompressed 377 MB layer, ~10k members: blob and diff_id hashed,
#            every member checked, the tree hashed into tree.json, published by rename)
#            against `umoci raw unpack` of the same layout into the same filesystem;
#            goal: <= 1.0x.
#   run      `hermetic run --no-daemon --image REF@DIGEST -- /bin/true` against the host
#            profile's `hermetic run --no-daemon -- /bin/true`, interleaved in random
#            order; goal: <= 1.1x (the image is bound, not copied).
# Each import starts from an empty state dir (and umoci from an absent dir), after a sync;
# the outputs are removed between runs, outside the timing.
#
#   benches/image.sh [IMPORTS] [RUNS]      (default 5 and 200)
#
# Needs umoci and mmdebstrap (scripts/test-setup.sh); the image is built once by
# scripts/debian-toolchain-image.sh into target/images/ (LAYOUT=DIR names another).
# HERMETIC=/path/to/hermetic skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
imports="${1:-5}"
runs="${2:-200}"
command -v umoci >/dev/null || { echo "bench needs umoci: apt-get install -y umoci" >&2; exit 2; }
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${HERMETIC:-}" ]; then
  cargo build --release -q -p hermetic-cli
  HERMETIC="$target/x86_64-unknown-linux-gnu/release/hermetic"
fi
layout="${LAYOUT:-$target/images/debian-toolchain}"
scripts/debian-toolchain-image.sh "$layout"
scratch="$(mktemp -d "$target/image-bench.XXXXXX")"
trap 'chmod -R u+rwx "$scratch"; rm -rf "$scratch"' EXIT
exec python3 benches/image.py "$HERMETIC" "$layout" "$scratch" "$imports" "$runs"
