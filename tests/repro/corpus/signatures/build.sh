# Catalog row 30: signatures. ECDSA draws a random nonce per signature; Ed25519 is
# deterministic for a fixed key (out/ed25519.sig must not differ). The keys are fixed
# test-only scalars, built here so no private key file sits in the repository.
# Expected: nondeterministic, out/ecdsa.sig, intrinsic-randomness.
set -eu
mkdir -p out
python3 - <<'PY'
ed25519 = bytes.fromhex("302e020100300506032b657004220420") + bytes(range(1, 33))
p256 = (bytes.fromhex("30310201010420") + bytes(range(33, 65))
        + bytes.fromhex("a00a06082a8648ce3d030107"))
open("ed25519.der", "wb").write(ed25519)
open("p256.der", "wb").write(p256)
PY
openssl pkey -inform DER -in ed25519.der -out ed25519.pem
openssl ec -inform DER -in p256.der -out p256.pem 2>/dev/null
echo "release 1.0" > out/payload
openssl pkeyutl -sign -inkey ed25519.pem -rawin -in out/payload -out out/ed25519.sig
openssl dgst -sha256 -sign p256.pem -out out/ecdsa.sig out/payload
