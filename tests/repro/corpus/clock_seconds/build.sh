# Catalog row 1 (second resolution): the epoch in seconds, the way "built at" stamps leak.
# Expected: nondeterministic, out/stamp, timestamp-leak (decimal, offset 0, run a).
set -eu
mkdir -p out
date +%s > out/stamp
echo "hello" > out/hello.txt
