# Catalog row 5: timestamp-based .pyc files store the source file's mtime in the header;
# the source file's mtime is when the sandbox copied it in.
# Expected: nondeterministic, out/pkg/geometry.pyc.
set -eu
mkdir -p out
cp -r pkg out/
python3 -m compileall -q -b --invalidation-mode timestamp out/pkg > /dev/null
rm out/pkg/*.py
