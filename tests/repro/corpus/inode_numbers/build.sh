# Catalog row 29: inode numbers recorded (a tar --format=posix or cpio would too). The
# source tree's inodes follow the copy order, which the varied run reverses. Link counts
# (out/links) are stable.
# Expected: nondeterministic, out/inodes, variation-sensitive.
set -eu
mkdir -p out
stat -c '%n %i' data/* > out/inodes
stat -c '%n %h' data/* > out/links
