# Catalog rows 2 and 11: __DATE__/__TIME__ (gcc honours SOURCE_DATE_EPOCH), __FILE__
# and DWARF paths (the build path is pinned to /build).
# Expected: reproducible.
set -eu
mkdir -p out
gcc -g -O1 -o out/hello hello.c
./out/hello > out/hello.txt
gcc -g -c hello.c -o out/hello.o
