# Catalog row 10: the umask leaks into file modes, which end up in text and archives.
# Expected: reproducible (umask pinned to 022).
set -eu
mkdir -p out gen
umask > out/umask
echo x > gen/file
mkdir gen/dir
stat -c '%n %a' gen/file gen/dir > out/modes
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf out/gen.tar gen
