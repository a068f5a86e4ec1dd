# Files written in a random order, stamped with the (varied) clock: the output archive
# sorts entries and clamps mtimes, so none of this reaches the compared outputs.
# Expected: reproducible.
set -eu
mkdir -p out/parts
for n in $(seq 1 20 | shuf); do
  echo "part $n" > "out/parts/$n"
  touch -d "@$(date +%s)" "out/parts/$n"
done
