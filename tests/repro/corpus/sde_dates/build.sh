# Catalog rows 2 and 9: dates formatted from SOURCE_DATE_EPOCH instead of the clock.
# Expected: reproducible.
set -eu
mkdir -p out
date -u -d "@$SOURCE_DATE_EPOCH" > out/release-date
date -u -d "@$SOURCE_DATE_EPOCH" '+%Y-%m-%dT%H:%M:%SZ' > out/release-iso
python3 -c 'import os, time; print(time.strftime("%F", time.gmtime(int(os.environ["SOURCE_DATE_EPOCH"]))))' > out/python-date
