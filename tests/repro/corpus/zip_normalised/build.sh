# Catalog row 4, fixed: zip with TZ=UTC, files touched to SOURCE_DATE_EPOCH, entries
# added in sorted order, and -X (no extra attributes or unix timestamps).
# Expected: reproducible.
set -eu
mkdir -p out gen
echo one > gen/one
echo two > gen/two
TZ=UTC touch -d "@$SOURCE_DATE_EPOCH" gen/one gen/two
TZ=UTC zip -q -X -D out/gen.zip gen/one gen/two
