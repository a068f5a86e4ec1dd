# Catalog rows 11-15, 17: build path, HOME, TMPDIR, PATH, user and group, host and domain
# name, kernel name: all pinned (or not varied), so recording them is reproducible.
# Expected: reproducible.
set -eu
mkdir -p out
{
  pwd
  echo "HOME=$HOME TMPDIR=$TMPDIR PATH=$PATH"
  id
  whoami
  hostname
  domainname
  uname -n
  uname -srm
  command -v sh gcc python3
} > out/identity
python3 -c 'import os, socket, getpass; print(os.getcwd(), getpass.getuser(), socket.gethostname(), os.path.expanduser("~"))' > out/python-identity
