#!/usr/bin/env bash
# Builds the real toolchain image the image tests and benches/image.sh use: a minimal
# Debian bookworm root with gcc, make and libc6-dev, made by mmdebstrap from the apt
# sources this machine is configured with (no registry, no network beyond apt), written as
# an OCI image layout with one uncompressed layer, tagged `bookworm-toolchain`.
#
#   scripts/debian-toolchain-image.sh DEST
#
# DEST appears whole (built beside it, then renamed) and is left alone when it exists, so
# callers may cache it between runs (the tests keep it under the target directory).
# The root holds no device nodes (--skip=output/dev: the sandbox brings its own /dev);
# its setuid programs (su, passwd, ...) need `hermetic image import --allow-setuid`.
set -euo pipefail

dest=${1:?usage: $0 DEST}
[[ -e $dest/index.json ]] && exit 0
command -v mmdebstrap >/dev/null ||
  { echo "mmdebstrap is not installed: run scripts/test-setup.sh (as root)" >&2; exit 1; }

mkdir -p "$(dirname "$dest")"
# One builder at a time (tests run in parallel); a later one finds it made.
exec 9>"${dest%/}.lock"
flock 9
[[ -e $dest/index.json ]] && exit 0
work=$(mktemp -d "${dest%/}.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layout/blobs/sha256"

# A fixed epoch: the same package versions give the same tar.
SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --variant=apt \
  --include=gcc,make,libc6-dev --skip=output/dev --format=tar \
  bookworm "$work/root.tar"

blob() { # FILE MEDIA_TYPE -> prints a descriptor, moves FILE into the blobs
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$work/layout/blobs/sha256/$digest"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$digest" "$size"
}

layer=$(blob "$work/root.tar" application/vnd.oci.image.layer.v1.tar)
# An uncompressed layer's diff_id is its blob digest: the tar is hashed once.
diff_id=$(printf '%s' "$layer" | sed 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/')
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" >"$work/config.json"
config=$(blob "$work/config.json" application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
  "$config" "$layer" >"$work/manifest.json"
manifest=$(blob "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
printf '{"schemaVersion":2,"manifests":[%s]}' \
  "${manifest%\}},\"annotations\":{\"org.opencontainers.image.ref.name\":\"bookworm-toolchain\"}}" \
  >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

mv -T "$work/layout" "$dest"
