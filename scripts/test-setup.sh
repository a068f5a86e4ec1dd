#!/usr/bin/env bash
# Installs what the test suite uses (Debian 12, as root); quick when it is all there.
# scripts/test.sh runs it before the tests, and .ci/run before its checks.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# gcc/make/python3/tar/gzip/zip: toolchains the real-build tests use inside the sandbox.
# util-linux: setpriv for the rootless test. busybox-static: the rootfs-profile test.
# iproute2/procps: network and process probes. sudo: the setuid-escape test (P3).
# fuse3: fusermount for the FUSE escape probe (F14). strace: the tests that trace a run.
# openssl, python3-nacl, python3-cryptography: the signing interop tests
# (engine/src/signing/interop_tests.rs), with sigstore-js below (npm comes with the
# machine's Node.js).
# docker-registry (distribution 2.8.2) and apache2-utils (htpasswd): the OCI registry
# client's tests (registry/tests/registry/), which start their own registry on a loopback
# port (their HTTPS test makes its CA with the openssl above).
# diffoscope-minimal: the diffoscope path of `hermetic build --explain` (tests/repro).
# umoci and skopeo: the image tests (tests/images/) compare the stored tree with `umoci raw
# unpack --rootless` and convert their fixture layouts (docker-archive, a push to the
# docker-registry above); busybox-static is the fixture's program; mmdebstrap makes their
# Debian toolchain image (scripts/debian-toolchain-image.sh) from the apt sources.
# chromium and libxml2-utils (xmllint): the drill reports' tests (tests/drills/) render the
# HTML report headless and hold the JUnit report to tests/drills/junit.xsd.
packages=(
  ca-certificates gcc libc6-dev make python3 tar gzip zip unzip git zstd
  util-linux iproute2 procps busybox-static sudo fuse3 strace
  openssl python3-nacl python3-cryptography diffoscope-minimal
  docker-registry apache2-utils umoci skopeo mmdebstrap chromium libxml2-utils
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# sigstore-js, pinned in tests/interop's lock file.
if [[ ! -d tests/interop/node_modules/@sigstore/verify ]]; then
  npm ci --prefix tests/interop --no-audit --no-fund
fi
# The tests call the first python3 on PATH, which on these machines may be a pyenv build
# that cannot see Debian's python3-nacl: give that one the modules too.
python3 -c 'import nacl, cryptography' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check pynacl cryptography
