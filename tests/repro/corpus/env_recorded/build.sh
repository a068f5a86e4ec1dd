# Catalog row 16: the whole environment recorded (configure logs, build-info files do).
# The environment is an allowlist and the varied run must not add to it.
# Expected: reproducible.
set -eu
mkdir -p out
env | sort > out/env
python3 -c 'import os; print(sorted(os.environ))' > out/python-environ
