# Catalog row 22: the shell's pid. A fresh pid namespace makes it the same in both
# canonical runs; the varied run's pids are offset.
# Expected: nondeterministic, out/pid, variation-sensitive.
set -eu
mkdir -p out
echo "$$" > out/pid
