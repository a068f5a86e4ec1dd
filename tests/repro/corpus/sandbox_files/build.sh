# The variation mechanism must not show as a difference in the sandbox's files: both runs
# preload the same-sized shim through the same /etc/ld.so.preload, and every library a
# process maps is the same path in both runs (configure scripts and build-info tools list
# /etc, /run and their own mappings).
# Expected: reproducible.
set -eu
mkdir -p out
ls -a / /etc /run > out/listing
stat -c '%n %s %a' /etc/* /run/* > out/sizes-and-modes
cat /etc/ld.so.preload > out/preload
awk '$6 ~ /^\// { print $6 }' /proc/self/maps | sort -u > out/mapped-files
