#!/usr/bin/env bash
# The escape suite a second time, as an unprivileged caller: the rootless path, where the
# build's uid maps to the caller's and the cgroup limits come from a cgroup delegated to
# the caller, as on a runner that runs hermetic as its own user. Run as root (it creates
# the user `hermetic-ci` and the delegated cgroup, and removes the cgroup afterwards);
# scripts/test.sh runs it after the suites. Arguments go to the test binary (a filter).
#
# Left out, each because it needs root itself (they run in the root pass):
#   f3, f12, i3, i10  guard a root caller's build, which runs as nobody;
#   i2                reads the memory of the helper and init, which only root may;
#   n9                puts sockets at the host's well-known paths (/run, /nix).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "escape-unprivileged: needs root to create its user and delegate a cgroup" >&2
  exit 2
fi
user=hermetic-ci
id "$user" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh "$user"

# The test binary and hermetic, where the user can reach them (the checkout may be under
# a directory only root may enter).
binary=$(cargo test -p hermetic-cli --test escape --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "escape" and m.get("executable"):
        print(m["executable"])')
hermetic_binary=$(dirname "$binary")/../hermetic
copies=$(mktemp -d /tmp/hermetic-escape-unprivileged.XXXXXX)
chmod 755 "$copies"
install -m 755 "$binary" "$copies/escape"
install -m 755 "$hermetic_binary" "$copies/hermetic"

# A cgroup delegated to the user, holding the suite: one in each v1 hierarchy that
# hermetic limits (a hybrid host such as CI's), or, on a unified host, a parent for
# hermetic's build cgroups (HERMETIC_CGROUP_PARENT: a v2 cgroup that holds a process may
# not have children with controllers) beside the one the suite runs in.
name="hermetic-escape-$$"
created=()
# Where this shell was, to go back before the cgroups it made can be removed.
declare -a return_to=()
cleanup() {
  for procs in "${return_to[@]}"; do
    echo $$ >"$procs" || true
  done
  for dir in "${created[@]}"; do
    # Children first; the suite's processes have ended by now.
    find "$dir" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "$dir" 2>/dev/null || true
  done
  rm -rf "$copies"
}
trap cleanup EXIT
declare -a env_args=()
if [ -d /sys/fs/cgroup/pids ] && grep -q ':pids:' /proc/self/cgroup; then
  for controller in pids memory cpu; do
    was=$(awk -F: -v c="$controller" '{ n = split($2, cs, ","); for (i = 1; i <= n; i++) if (cs[i] == c) print $3 }' /proc/self/cgroup)
    return_to+=("/sys/fs/cgroup/$controller$was/cgroup.procs")
    dir="/sys/fs/cgroup/$controller/$name"
    mkdir "$dir"
    created+=("$dir")
    chown -R "$user:$user" "$dir"
    echo $$ >"$dir/cgroup.procs"
  done
else
  return_to+=("/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/cgroup.procs")
  dir="/sys/fs/cgroup/$name"
  mkdir "$dir"
  created+=("$dir")
  for controller in pids memory cpu; do
    echo "+$controller" >/sys/fs/cgroup/cgroup.subtree_control
  done
  mkdir "$dir/suite" "$dir/builds"
  echo "+pids +memory +cpu" >"$dir/cgroup.subtree_control"
  echo "+pids +memory +cpu" >"$dir/builds/cgroup.subtree_control"
  chown -R "$user:$user" "$dir"
  echo $$ >"$dir/suite/cgroup.procs"
  env_args+=("HERMETIC_CGROUP_PARENT=$dir/builds")
fi

cd "$copies"
runuser -u "$user" -- env HOME="/home/$user" HERMETIC_TEST_BINARY="$copies/hermetic" \
  "${env_args[@]}" "$copies/escape" \
  --skip f3_the_supervisors_proc_entries_are_not_writable \
  --skip f12_host_sysctls_are_not_writable \
  --skip i3_hostname_cannot_be_changed_through_proc_sys \
  --skip i10_root_only_kernel_info_is_unreadable \
  --skip i2_the_helper_and_init_carry_no_host_environment_in_memory \
  --skip n9_well_known_host_sockets_are_not_visible \
  "$@"
