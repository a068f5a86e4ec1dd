# Catalog row 24: uninitialised struct padding written to a file. The padding holds
# whatever an earlier call left on the stack: here stack addresses, which ASLR moves.
# Expected: nondeterministic, out/record.bin, intrinsic-randomness.
set -eu
mkdir -p out
gcc -O0 -o record record.c
./record out/record.bin
