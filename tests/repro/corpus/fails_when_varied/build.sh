# A build whose success depends on something the varied run changes: it refuses to run
# unless it gets a low pid. The canonical run's build gets pid 2; the varied run's pids are
# offset by hundreds.
# Expected: failed (exit 1), run a 0, run b 1, "only one run failed".
set -eu
mkdir -p out
echo "built" > out/result
if [ "$$" -gt 100 ]; then
  echo "error: unexpected pid $$" >&2
  exit 1
fi
