# Catalog row 3: a listing with the kernel mtimes of generated files (nanoseconds).
# Expected: nondeterministic, out/listing.
set -eu
mkdir -p out gen
echo one > gen/one
echo two > gen/two
ls -l --full-time gen | sed 1d > out/listing
