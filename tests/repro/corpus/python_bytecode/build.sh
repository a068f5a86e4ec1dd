# Catalog row 5, pinned: with SOURCE_DATE_EPOCH set, compileall writes checked-hash .pyc
# files (no source mtime in the header); an explicit checked-hash build too.
# Expected: reproducible.
set -eu
mkdir -p out
cp -r pkg out/default
cp -r pkg out/checked
python3 -m compileall -q -b out/default > /dev/null
python3 -m compileall -q -b --invalidation-mode checked-hash out/checked > /dev/null
