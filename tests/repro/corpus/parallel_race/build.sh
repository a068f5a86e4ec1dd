# Catalog row 19: two concurrent writers appending to one file; the interleaving is a race.
# Expected: nondeterministic, out/log, intrinsic-randomness.
set -eu
mkdir -p out
writer() {
  i=0
  while [ "$i" -lt 2000 ]; do
    echo "$1 $i" >> out/log
    i=$((i + 1))
  done
}
writer a &
writer b &
wait
