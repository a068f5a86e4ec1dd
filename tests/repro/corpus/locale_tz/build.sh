# Catalog rows 7-9: locale collation (sort, ls), translated messages and number formats,
# and the time zone in formatted dates. All pinned (LC_ALL=C.UTF-8, TZ=UTC).
# Expected: reproducible.
set -eu
mkdir -p out
printf 'b\nA\na\nB\n_x\n' | sort > out/sorted
ls data > out/ls
ls /nonexistent 2> out/message || true
/usr/bin/printf "%'d\n" 1234567 > out/number
python3 -c 'import locale; locale.setlocale(locale.LC_ALL, ""); print(locale.format_string("%.2f", 1234567.891, grouping=True))' >> out/number
date -d "@$SOURCE_DATE_EPOCH" '+%c %Z' > out/local-date
