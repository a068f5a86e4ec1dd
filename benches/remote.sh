#!/usr/bin/env bash
# The remote cache against plain tools, in one run on this machine (release build), with
# its own registry (Debian's docker-registry on a free loopback port, storage in a temp
# dir under /var/tmp). An entry is made from the same large tree as benches/cache.sh (by
# default about 1 GB and 10k files), then, after a sync, interleaved, RUNS times each:
#   remote hit  `hermetic build --single --cache-remote ... --extract DIR` with an empty
#               local cache: lookup, fetch, verify (signature, key, scope, manifest,
#               sha256 + blake3), commit to the local store, the one-pass verified
#               restore into the artifact and DIR;
#     against   `curl` fetching the same blob + `tar --zstd -xf` into DIR + `b3sum`
#               (no signature, no per-file check), on the same filesystem;
#   push        `hermetic cache push KEY` of the stored entry to a fresh registry:
#               HEAD, chunked upload, entry manifest, signature referrer, index, read-back;
#     against   `curl` monolithic upload (POST, then PUT ?digest=) of the same blob to a
#               fresh registry (and, for attribution, `hermetic cache verify KEY` alone);
# and LOOKUPS times: the lookup of a miss (`hermetic cache pull` of a key the registry
# does not have: one process, the tag's 404), and a `--require-cache` build's miss with
# and without a remote configured (the difference is what the remote adds to a build's
# lookup). Prints medians and the ratios measured in this run, against the goals:
# hit <= 1.1x, push <= 1.2x, lookup of a miss <= 20 ms.
#
#   benches/remote.sh [RUNS] [LOOKUPS]      (defaults 5, 20)
#
# Needs docker-registry and curl (scripts/test-setup.sh), b3sum (Debian 12:
# apt-get install -y b3sum) and zstd. HERMETIC=/path/to/hermetic skips the release build;
# TREE="dir ..." picks the directories copied into the entry.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
lookups="${2:-20}"
for tool in b3sum zstd tar curl docker-registry; do
  command -v "$tool" >/dev/null || {
    echo "bench needs $tool: scripts/test-setup.sh, apt-get install -y b3sum" >&2
    exit 2
  }
done
if [ -z "${HERMETIC:-}" ]; then
  cargo build --release -q -p hermetic-cli
  HERMETIC="$PWD/target/x86_64-unknown-linux-gnu/release/hermetic"
fi
tree="${TREE:-/usr/lib/x86_64-linux-gnu /usr/lib/python3.11 /usr/lib/gcc /usr/share/doc}"
exec python3 benches/remote.py "$HERMETIC" "$runs" "$lookups" $tree
