# A build that fails in every run.
# Expected: failed (exit 1), both runs exit 1.
set -eu
mkdir -p out
echo "partial" > out/partial
echo "error: missing dependency" >&2
exit 1
