#!/usr/bin/env bash
# Fuzzes one target (or every one) with libFuzzer for SECONDS each, through cargo-fuzz:
#
#   benches/fuzz.sh NAME|all [SECONDS]        (default 600: the ten minutes a release asks)
#
# The targets are fuzz/targets/fuzz_targets/*.rs; what each does with its input, and
# what it checks, is in fuzz/harness/src/lib.rs. A run starts from the committed seeds
# (fuzz/corpus/NAME, only read) and keeps what it grows in target/fuzz/corpus/NAME, so
# later runs go on from there. A crash or a hang stops the run; its input is kept under
# fuzz/targets/artifacts/NAME/: copy it into fuzz/regressions/NAME/ (the corpus test
# replays every file there), fix the bug, and commit both.
#
# Built without a sanitizer (-s none): hermetic's own code is safe Rust, where a bug is a
# panic, which libFuzzer catches either way, and a sanitizer halves the executions.
# cargo-fuzz needs nightly compiler flags: RUSTC_BOOTSTRAP lets the pinned stable
# toolchain take them. Installs cargo-fuzz on first use (crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: benches/fuzz.sh NAME|all [SECONDS]}"
seconds="${2:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
fuzz_dir=(--fuzz-dir fuzz/targets)
if [ "$name" = all ]; then
  targets=$(cargo fuzz list "${fuzz_dir[@]}")
else
  targets="$name"
fi
for target in $targets; do
  cargo fuzz build "${fuzz_dir[@]}" -s none "$target" >&2
done
printf '%-16s %10s %12s %8s %s\n' target seconds executions exec/s result
for target in $targets; do
  work="target/fuzz/corpus/$target"
  mkdir -p "$work"
  log="target/fuzz/$target.log"
  result=ok
  started=$SECONDS
  cargo fuzz run "${fuzz_dir[@]}" -s none "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    >"$log" 2>&1 || result="FAILED: see $log and fuzz/targets/artifacts/$target/"
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  printf '%-16s %10s %12s %8s %s\n' "$target" "$((SECONDS - started))" "${executions:-?}" "${rate:-?}" "$result"
done
