# Catalog row 20: hash-table order. Perl randomises it per process (nothing pins
# PERL_HASH_SEED); Python's is pinned by PYTHONHASHSEED=0, so out/python-set must not differ.
# Expected: nondeterministic, out/perl-keys, intrinsic-randomness.
set -eu
mkdir -p out
perl -e 'my %h = map { $_ => 1 } ("a" .. "z"); print join(",", keys %h), "\n"' > out/perl-keys
python3 -c 'print(set("abcdefghijklmnopqrstuvwxyz"))' > out/python-set
