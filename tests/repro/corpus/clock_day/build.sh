# Catalog row 2: a build date taken from the clock instead of SOURCE_DATE_EPOCH, at day
# resolution. Only a clock shifted by days (the varied run's) shows it.
# Expected: nondeterministic, out/built-on (out/release-date comes from SOURCE_DATE_EPOCH).
set -eu
mkdir -p out
date -u +%F > out/built-on
date -u -d "@$SOURCE_DATE_EPOCH" +%F > out/release-date
