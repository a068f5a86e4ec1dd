# Catalog row 27: a build that would fetch "latest" if it could. The network is denied in
# both runs, so it always takes the offline path.
# Expected: reproducible.
set -eu
mkdir -p out
if python3 -c 'import urllib.request; urllib.request.urlopen("http://example.com/", timeout=2)' 2>/dev/null; then
  echo "fetched" > out/source
else
  echo "offline" > out/source
fi
