#!/usr/bin/env bash
# Verified cache restore against plain tools, in one run on this machine (release build):
# an entry is made from a large tree (by default about 1 GB and 10k files: copies of
# /usr/lib/x86_64-linux-gnu, /usr/lib/python3.11, /usr/lib/gcc and /usr/share/doc without
# their symlinks), then, after a sync, interleaved, RUNS times each:
#   hermetic  `hermetic cache restore KEY --dest DIR`: signature, key and scope checks, one
#             pass hashing the archive (sha256 + blake3) while decompressing and matching
#             every entry, extraction into a staging dir, rename;
#   baseline  `tar --zstd -xf ARCHIVE -C DIR` then `b3sum ARCHIVE` (no signature, no
#             per-file check, two passes);
#   tar       `tar --zstd -xf ARCHIVE -C DIR` alone.
# Prints the median of each and the ratios hermetic/baseline and hermetic/tar. Then cache
# save: a single build copying the tree into out/ and storing the entry, against the same
# copy into a tmpfs dir plus `tar --sort=name -cf - out | zstd -T0 -3`; prints the ratio.
#
#   benches/cache.sh [RUNS]      (default 5)
#
# Needs b3sum (Debian 12: apt-get install -y b3sum) and zstd. HERMETIC=/path/to/hermetic
# skips the release build; TREE="dir ..." picks the directories copied into the entry.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
for tool in b3sum zstd tar; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool: apt-get install -y $tool" >&2; exit 2; }
done
if [ -z "${HERMETIC:-}" ]; then
  cargo build --release -q -p hermetic-cli
  HERMETIC="$PWD/target/x86_64-unknown-linux-gnu/release/hermetic"
fi
tree="${TREE:-/usr/lib/x86_64-linux-gnu /usr/lib/python3.11 /usr/lib/gcc /usr/share/doc}"
exec python3 benches/cache.py "$HERMETIC" "$runs" $tree
