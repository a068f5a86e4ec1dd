//! The sandbox started by an unprivileged user. On a cgroup v1/hybrid host the user needs
//! a delegated cgroup (what systemd's Delegate=yes gives on v2): the test, as root, makes
//! one per controller, hands it to `nobody`, and starts hermetic inside it as `nobody`.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{assert_status, require_root, stdout, Source};

const NOBODY: u32 = 65534;

struct DelegatedCgroup {
    dirs: Vec<PathBuf>,
}

impl DelegatedCgroup {
    fn create(name: &str) -> DelegatedCgroup {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let mut dirs = Vec::new();
        for controller in ["pids", "memory", "cpu"] {
            let path = own
                .lines()
                .find_map(|line| {
                    let mut parts = line.splitn(3, ':');
                    let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
                    list.split(',')
                        .any(|c| c == controller)
                        .then(|| path.to_string())
                })
                .unwrap_or_else(|| {
                    panic!("this test needs cgroup v1 {controller} (the CI host's layout)")
                });
            let dir = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'))
                .join(name);
            std::fs::create_dir(&dir).unwrap();
            for entry in std::iter::once(dir.clone())
                .chain(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()))
            {
                std::os::unix::fs::chown(&entry, Some(NOBODY), Some(NOBODY)).unwrap();
            }
            dirs.push(dir);
        }
        DelegatedCgroup { dirs }
    }
}

impl Drop for DelegatedCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            if let Err(err) = std::fs::remove_dir(dir) {
                // Not a panic in drop: the test's own assertion says more.
                eprintln!("failed to remove {}: {err}", dir.display());
            }
        }
    }
}

#[test]
fn an_unprivileged_user_gets_the_same_sandbox() {
    require_root("it runs hermetic as another, unprivileged user");
    let cgroup = DelegatedCgroup::create(&format!("hermetic-rootless-test-{}", std::process::id()));
    let (_bin_dir, binary) = binary_for_nobody();
    let src = Source::new(&[("hello.c", "int main(void){return 0;}\n")]);
    std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let join: String = cgroup
        .dirs
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs && ", d.display()))
        .collect();
    let script = format!(
        "{join} exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --reset-env {} --no-daemon run --src {} -- \
         sh -c 'id; cc -o /tmp/h hello.c && /tmp/h && echo compiled; cat /proc/self/status | grep -E \"^(CapEff|NoNewPrivs|Seccomp):\"; \
         touch /usr/x 2>&1 | grep -c Read-only'",
        binary.display(),
        src.path().display()
    );
    // hermetic returns once its build is reaped, while its helper and init may still be
    // tearing their namespaces down (bwrap returns the same way). In a pid namespace of its
    // own, the whole run is over when `unshare` returns: the namespace's end waits for every
    // process in it. Only then can the delegated cgroup be removed.
    let output = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert_eq!(
        stdout(&output),
        "uid=1000(build) gid=1000(build) groups=1000(build)\ncompiled\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n1\n"
    );
}

/// A copy of the binary that nobody may execute (the build's target dir may be private),
/// in a directory removed on drop.
fn binary_for_nobody() -> (tempfile::TempDir, PathBuf) {
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = bin_dir.path().join("hermetic");
    std::fs::copy(env!("CARGO_BIN_EXE_hermetic"), &binary).unwrap();
    (bin_dir, binary)
}

/// Without a cgroup it may use, an unprivileged caller is refused (exit 125, naming the
/// layer) and the build never runs; the launcher has already started the sandbox by then
/// (the cgroup is made while the sandbox is being built), and nothing of it is left. A
/// profile with `limits.cgroup = "optional"` runs without the limits instead, and says so.
/// Run in a pid namespace of its own, which shows every process left behind. hermetic
/// returns while its helper still tears the namespaces down (docs/sandbox.md), and the
/// shell, pid 1 here, reaps it only as it waits for a command: the listing waits (a
/// bounded number of listings) until no helper is seen, so what is left for good shows.
#[test]
fn without_a_usable_cgroup_the_run_is_refused_unless_the_profile_allows_it() {
    require_root("it runs hermetic as a user without a delegated cgroup");
    let (bin_dir, binary) = binary_for_nobody();
    let optional = crate::support::default_profile_text()
        .replace("cgroup = \"required\"", "cgroup = \"optional\"");
    assert!(optional.contains("cgroup = \"optional\""), "{optional}");
    let optional_profile = bin_dir.path().join("optional.toml");
    std::fs::write(&optional_profile, optional).unwrap();
    let src = Source::new(&[]);
    std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let script = format!(
        "for profile in default {profile}; do \
           setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --reset-env {binary} --no-daemon \
             run --profile $profile --src {src} -- sh -c 'echo ran'; echo status=$?; \
         done; \
         for attempt in $(seq 2000); do \
           for process in /proc/[0-9]*; do cat $process/comm 2>/dev/null; done | grep -q -x hermetic-helper || break; \
         done; \
         for process in /proc/[0-9]*; do cat $process/comm; done | grep -v -x -e sh -e cat -e grep; \
         echo end",
        profile = optional_profile.display(),
        binary = binary.display(),
        src = src.path().display(),
    );
    let output = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "status=125\nran\nstatus=0\nend\n");
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.contains("at the cgroup layer"), "{errors}");
    assert!(errors.contains("Delegate=yes"), "{errors}");
    assert!(errors.contains("running without cgroup limits"), "{errors}");
}
