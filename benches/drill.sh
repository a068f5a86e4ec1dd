#!/usr/bin/env bash
# What a drill costs over the builds it runs, on this machine, in one run: a drill of N
# trivial cases (`hermetic drill run`, each case a dual build through the daemon, the
# history queried and the drill recorded) against N sequential `hermetic build` calls of
# the same cases through the same daemon, rounds interleaved (goal: overhead <= 5%, i.e.
# median ratio <= 1.05).
#
#   benches/drill.sh [N] [ROUNDS]        (default 20 cases, 5 rounds)
#
# HERMETIC=path/to/hermetic measures that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-20}"
rounds="${2:-5}"
if [[ -z "${HERMETIC:-}" ]]; then
  cargo build --release -q -p hermetic-cli
  HERMETIC="$PWD/target/x86_64-unknown-linux-gnu/release/hermetic"
fi
work="$(mktemp -d)"
export HERMETIC_CONFIG="$work/config.toml"
cat >"$HERMETIC_CONFIG" <<TOML
version = 1
socket = "$work/run/hermeticd.sock"
state_dir = "$work/state"
max_concurrent = 2
TOML
trap '"$HERMETIC" daemon stop >/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/src"
echo input >"$work/src/input.txt"
plan="$work/plan.toml"
echo "version = 1" >"$plan"
for i in $(seq 1 "$cases"); do
  cat >>"$plan" <<TOML
[[case]]
name = "case-$i"
src = "src"
command = ["sh", "-c", "mkdir -p out && echo $i > out/n"]
TOML
done

now() { date +%s%N; }
# The daemon is started, and its first build paid for, before anything is timed.
"$HERMETIC" build --src "$work/src" --artifact "$work/warm.tar.zst" -- sh -c 'mkdir -p out && echo warm > out/n' 2>/dev/null >/dev/null

ratios=()
for round in $(seq 1 "$rounds"); do
  start=$(now)
  for i in $(seq 1 "$cases"); do
    "$HERMETIC" build --src "$work/src" --artifact "$work/b-$i.tar.zst" \
      -- sh -c "mkdir -p out && echo $i > out/n" >/dev/null 2>&1
  done
  builds=$(( $(now) - start ))
  start=$(now)
  "$HERMETIC" drill run "$plan" --runner bench >/dev/null 2>&1
  drill=$(( $(now) - start ))
  ratio=$(python3 -c "print(f'{$drill / $builds:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: %d builds %.2f s, drill of %d cases %.2f s, ratio %s\n' \
    "$round" "$cases" "$(python3 -c "print($builds / 1e9)")" "$cases" \
    "$(python3 -c "print($drill / 1e9)")" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c 'import sys; v=[float(l) for l in sys.stdin]; print(f"{sorted(v)[len(v)//2]:.3f}")')
echo "drill / sequential builds, median of $rounds rounds: $median (goal <= 1.05)"
