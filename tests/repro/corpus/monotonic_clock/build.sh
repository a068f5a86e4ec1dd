# Monotonic time (the sandbox's time namespace starts it near zero, but a nanosecond read
# still differs between runs).
# Expected: nondeterministic, out/monotonic, intrinsic-randomness.
set -eu
mkdir -p out
python3 -c 'import time; print(time.monotonic_ns())' > out/monotonic
