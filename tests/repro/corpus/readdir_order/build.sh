# Catalog row 6: readdir order of the source tree (the varied run copies it in reverse).
# Unsorted listings and an unsorted tar differ; the sorted listing (out/sorted.txt) must not.
# Expected: nondeterministic, out/data.tar, out/find.txt, out/listdir.txt, out/ls-U.txt,
# variation-sensitive.
set -eu
mkdir -p out
ls -U data > out/ls-U.txt
find data > out/find.txt
python3 -c 'import os; print("\n".join(os.listdir("data")))' > out/listdir.txt
tar --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf out/data.tar data
ls data > out/sorted.txt
