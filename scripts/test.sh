#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests use, then runs
# them. As root, like CI: the escape suite creates cgroups and the rootless test
# switches to `nobody`. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-setup.sh
exec cargo test --workspace "$@"
