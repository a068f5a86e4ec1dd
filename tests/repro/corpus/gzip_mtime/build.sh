# Catalog row 3: gzip copies the input's kernel mtime into its header (no -n).
# Expected: nondeterministic, out/notes.txt.gz, timestamp-leak (u32 little-endian at 4).
set -eu
mkdir -p out
printf 'release notes\n' > out/notes.txt
gzip out/notes.txt
