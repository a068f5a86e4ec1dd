#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests use, then runs
# them. As root, like CI: the escape suite creates cgroups and the rootless test
# switches to `nobody`. Arguments go to `cargo test`; without any, the escape suite then
# runs a second time as an unprivileged user in a delegated cgroup
# (scripts/escape-unprivileged.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-setup.sh
cargo test --workspace "$@"
if [ $# -eq 0 ]; then
  scripts/escape-unprivileged.sh
fi
