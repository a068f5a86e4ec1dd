# Catalog rows 3 and 6, fixed: a sorted tar with clamped mtimes and numeric owners,
# compressed with gzip -n, over the source tree (whose order the varied run reverses)
# and generated files.
# Expected: reproducible.
set -eu
mkdir -p out gen
echo generated > gen/file
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -cf out/bundle.tar data gen
gzip -n -k out/bundle.tar
