# Catalog row 21: GCC LTO objects name their sections from a random seed unless
# -frandom-seed is given. The seeded object (out/seeded.o) must not differ.
# Expected: nondeterministic, out/unseeded.o, intrinsic-randomness.
set -eu
mkdir -p out
gcc -O2 -flto -c lib.c -o out/unseeded.o
gcc -O2 -flto -frandom-seed=lib.c -c lib.c -o out/seeded.o
