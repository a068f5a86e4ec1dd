# Catalog row 29: inode numbers recorded (a tar --format=posix or cpio would too). The
# inode numbers follow the order of creation on the tmpfs; the varied run uses up a
# thousand or more first. Link counts (out/links) are stable.
# Expected: nondeterministic, out/inodes, variation-sensitive.
set -eu
mkdir -p out
stat -c '%n %i' data/* > out/inodes
stat -c '%n %h' data/* > out/links
