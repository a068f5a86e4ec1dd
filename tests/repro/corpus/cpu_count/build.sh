# Catalog row 18: the CPU count recorded. Run with the strict profile, where the varied
# run is placed on another core: the count stays pinned.
# Expected: reproducible.
set -eu
mkdir -p out
{
  nproc
  getconf _NPROCESSORS_ONLN
  cat /sys/devices/system/cpu/online
  python3 -c 'import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))'
} > out/cpus
