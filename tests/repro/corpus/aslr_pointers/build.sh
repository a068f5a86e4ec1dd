# Catalog row 23: pointer values depend on address-space randomisation.
# Expected: nondeterministic, out/py-id, out/stack-address, intrinsic-randomness.
set -eu
mkdir -p out
python3 -c 'print(id(object()))' > out/py-id
gcc -O0 -o stack-address stack-address.c
./stack-address > out/stack-address
