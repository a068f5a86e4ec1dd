# Catalog row 19, done right: make -j with independent targets and a concatenation in
# a fixed order.
# Expected: reproducible.
set -eu
make -s -j4
