# Monotonic time at a coarse resolution: hours since boot. The time namespace starts the
# build's monotonic clock near zero in every run, so this is 0 each time.
# Expected: reproducible.
set -eu
mkdir -p out
python3 -c 'import time; print(int(time.monotonic()) // 3600)' > out/uptime-hours
