# Catalog row 1: a sub-second clock read. No pin can fix it; two canonical runs differ.
# Expected: nondeterministic, out/stamp, intrinsic-randomness.
set -eu
mkdir -p out
date +%s%N > out/stamp
echo "hello" > out/hello.txt
