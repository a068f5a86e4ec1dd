# Catalog row 21: random bytes, a UUID and a mktemp name recorded in the output.
# Expected: nondeterministic, out/random, out/tmpname, out/uuid, intrinsic-randomness.
set -eu
mkdir -p out
head -c 16 /dev/urandom | od -An -tx1 > out/random
python3 -c 'import uuid; print(uuid.uuid4())' > out/uuid
basename "$(mktemp)" > out/tmpname
