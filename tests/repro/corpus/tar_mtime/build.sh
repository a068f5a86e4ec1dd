# Catalog row 3: tar records the kernel mtimes of files the build created (no --mtime).
# Everything else is normalised, so only the mtimes can differ.
# Expected: nondeterministic, out/gen.tar.
set -eu
mkdir -p out gen
echo one > gen/one
echo two > gen/two
tar --sort=name --owner=0 --group=0 --numeric-owner -cf out/gen.tar gen
