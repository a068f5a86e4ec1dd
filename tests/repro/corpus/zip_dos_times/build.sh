# Catalog rows 3-4: zip of build-created files without SOURCE_DATE_EPOCH handling: the
# kernel mtime goes into the DOS time fields (2-second resolution) and the "UT" extra field.
# Expected: nondeterministic, out/gen.zip.
set -eu
mkdir -p out gen
echo one > gen/one
zip -q out/gen.zip gen/one
