# Catalog row 18 (placement, not count): the cores the build runs on. Run with the
# strict profile (1 CPU) so the varied run gets another core. The CPU count (out/nproc)
# is pinned and must not differ.
# Expected: nondeterministic, out/cpus-allowed, out/affinity, variation-sensitive.
set -eu
mkdir -p out
grep Cpus_allowed_list /proc/self/status > out/cpus-allowed
taskset -p $$ | sed 's/.*: //' > out/affinity
nproc > out/nproc
