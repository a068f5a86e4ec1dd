# Catalog row 20, pinned: Python set/dict order and str hashes (PYTHONHASHSEED=0).
# Expected: reproducible.
set -eu
mkdir -p out
python3 -c 'print(set("abcdefghijklmnopqrstuvwxyz")); print(hash("hermetic")); print(frozenset({"x", "y", "z", "w"}))' > out/python-hashes
