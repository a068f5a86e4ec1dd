//! Per-build cgroups: pids, memory and CPU limits, and a kill switch for whatever the
//! build leaves behind.
//!
//! Hosts differ, so each controller is placed where the host has it:
//! - cgroup v2 (most runners): one cgroup `<parent>/hermetic-<id>` with `pids.max`,
//!   `memory.max`, `memory.swap.max=0`, `memory.oom.group=1`, `cpu.max`, killed with
//!   `cgroup.kill`. The parent is `/sys/fs/cgroup/hermetic.slice` for root; for other
//!   users it is their own cgroup, which must be delegated (systemd `Delegate=yes`) and
//!   hold no other process, or `HERMETIC_CGROUP_PARENT`.
//! - cgroup v1 or hybrid (this project's CI): one directory per controller hierarchy,
//!   nested under the caller's own cgroup there, with `pids.max`,
//!   `memory.limit_in_bytes` (+ `memory.memsw.limit_in_bytes` when swap accounting is
//!   on) and `cpu.cfs_quota_us`. v1 has no `cgroup.kill`; the pid namespace already kills
//!   every process when the build's init exits, and leftovers are killed one by one.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::sandbox::error::{Layer, StepError};

const CONTROLLERS: [&str; 3] = ["pids", "memory", "cpu"];
const CPU_PERIOD_US: u64 = 100_000;

pub use hermetic_contract::report::CgroupReport;

#[derive(Clone, Copy, Debug)]
pub struct CgroupLimits {
    pub pids: u64,
    pub memory_bytes: u64,
    pub cpus: usize,
}

/// The build's cgroup directories; removed on drop (after their processes are gone).
#[derive(Debug)]
pub struct BuildCgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
    pub report: CgroupReport,
}

#[derive(Debug, Default)]
struct Hierarchies {
    /// controller → (v1 hierarchy directory of our own cgroup)
    v1: Vec<(String, PathBuf)>,
    /// (v2 mount point, our own cgroup path below it)
    v2: Option<(PathBuf, String)>,
}

impl BuildCgroup {
    pub fn create(name: &str, limits: CgroupLimits) -> Result<BuildCgroup, StepError> {
        // The cgroup tree is the daemon's, even while a job thread acts for another user.
        crate::sys::creds::as_daemon(|| Self::create_as_daemon(name, limits))
    }

    fn create_as_daemon(name: &str, limits: CgroupLimits) -> Result<BuildCgroup, StepError> {
        let found = discovered().map_err(|err| {
            StepError::new(
                Layer::Cgroup,
                "find the cgroup hierarchies",
                "read",
                Some("/proc/self/mountinfo".into()),
                err,
            )
        })?;
        let mut cgroup = BuildCgroup {
            dirs: Vec::new(),
            v2: false,
            report: CgroupReport::default(),
        };
        let mut missing: Vec<&str> = Vec::new();
        let mut v2_controllers: Vec<&str> = Vec::new();
        for controller in CONTROLLERS {
            if let Some((_, own)) = found.v1.iter().find(|(c, _)| c == controller) {
                remove_stale(own);
                let dir = own.join(name);
                make_dir(&dir)?;
                cgroup.dirs.push(dir.clone());
                cgroup.apply_v1(controller, &dir, limits)?;
            } else if found
                .v2
                .as_ref()
                .is_some_and(|(mount, own)| v2_has(mount, own, controller))
            {
                v2_controllers.push(controller);
            } else {
                missing.push(controller);
            }
        }
        if !missing.is_empty() {
            return Err(StepError::refused(
                Layer::Cgroup,
                "find the controllers",
                format!(
                    "controller(s) {} are neither mounted as cgroup v1 nor available to this process on cgroup v2; \
                     run under a delegated cgroup (e.g. systemd-run --user --scope -p Delegate=yes), \
                     set HERMETIC_CGROUP_PARENT, or set limits.cgroup = \"optional\" in the profile",
                    missing.join(", ")
                ),
            ));
        }
        if !v2_controllers.is_empty() {
            let (mount, own) = found.v2.as_ref().expect("checked above");
            let parent = v2_parent(mount, own)?;
            enable_v2_controllers(&parent, &v2_controllers)?;
            remove_stale(&parent);
            let dir = parent.join(name);
            make_dir(&dir)?;
            cgroup.dirs.push(dir.clone());
            cgroup.v2 = true;
            cgroup.apply_v2(&dir, &v2_controllers, limits)?;
        }
        Ok(cgroup)
    }

    /// Opens, with the daemon's own credentials (the kernel checks the opener's when a
    /// process writes itself in), the files the build child joins through: on v1 the
    /// `tasks` file, on v2 `cgroup.procs`. Moving a whole process through a v1
    /// `cgroup.procs` write-locks the kernel's threadgroup rwsem, which waits for an RCU
    /// grace period (10-25 ms measured here when no other migration ran just before);
    /// moving the current thread through `tasks` does not. The build child is
    /// single-threaded when it joins, so its one thread is the whole process.
    pub fn open_join_files(&self) -> Result<Vec<(PathBuf, fs::File)>, StepError> {
        crate::sys::creds::as_daemon(|| {
            self.dirs
                .iter()
                .map(|dir| {
                    let tasks = dir.join("tasks");
                    let path = if tasks.exists() {
                        tasks
                    } else {
                        dir.join("cgroup.procs")
                    };
                    let file = fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|err| {
                            StepError::new(
                                Layer::Cgroup,
                                "open the build cgroup",
                                "open",
                                Some(path.clone()),
                                err,
                            )
                        })?;
                    Ok((path, file))
                })
                .collect()
        })
    }

    fn apply_v1(
        &mut self,
        controller: &str,
        dir: &Path,
        limits: CgroupLimits,
    ) -> Result<(), StepError> {
        let label = Some(format!("v1:{}", dir.display()));
        match controller {
            "pids" => {
                write(dir, "pids.max", &limits.pids.to_string())?;
                self.report.pids = label;
            }
            "memory" => {
                write(
                    dir,
                    "memory.limit_in_bytes",
                    &limits.memory_bytes.to_string(),
                )?;
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(
                        dir,
                        "memory.memsw.limit_in_bytes",
                        &limits.memory_bytes.to_string(),
                    )?;
                    self.report.swap_limited = true;
                }
                self.report.memory = label;
            }
            _ => {
                write(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                write(
                    dir,
                    "cpu.cfs_quota_us",
                    &(CPU_PERIOD_US * limits.cpus as u64).to_string(),
                )?;
                self.report.cpu = label;
            }
        }
        Ok(())
    }

    fn apply_v2(
        &mut self,
        dir: &Path,
        controllers: &[&str],
        limits: CgroupLimits,
    ) -> Result<(), StepError> {
        let label = Some(format!("v2:{}", dir.display()));
        for controller in controllers {
            match *controller {
                "pids" => {
                    write(dir, "pids.max", &limits.pids.to_string())?;
                    self.report.pids = label.clone();
                }
                "memory" => {
                    write(dir, "memory.max", &limits.memory_bytes.to_string())?;
                    if dir.join("memory.swap.max").exists() {
                        write(dir, "memory.swap.max", "0")?;
                        self.report.swap_limited = true;
                    }
                    write(dir, "memory.oom.group", "1")?;
                    self.report.memory = label.clone();
                }
                _ => {
                    write(
                        dir,
                        "cpu.max",
                        &format!("{} {CPU_PERIOD_US}", CPU_PERIOD_US * limits.cpus as u64),
                    )?;
                    self.report.cpu = label.clone();
                }
            }
        }
        Ok(())
    }

    /// Kills every process still in the build's cgroups.
    pub fn kill_all(&self) {
        for dir in &self.dirs {
            if self.v2 && dir.join("cgroup.kill").exists() {
                let _ = fs::write(dir.join("cgroup.kill"), "1");
                continue;
            }
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs
                    .lines()
                    .filter_map(|line| line.trim().parse::<i32>().ok())
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        crate::sys::creds::as_daemon(|| self.remove());
    }
}

impl BuildCgroup {
    fn remove(&self) {
        // After a build that ended normally the cgroup is already empty (init reaped every
        // process in it): the directories go at once, and nothing is read or killed.
        if self.dirs.iter().all(|dir| fs::remove_dir(dir).is_ok()) {
            return;
        }
        self.kill_all();
        for dir in &self.dirs {
            // A killed process leaves its cgroup asynchronously; a few quick retries cover
            // the window without a fixed sleep.
            for _ in 0..100 {
                match fs::remove_dir(dir) {
                    Err(err) if err.raw_os_error() == Some(libc::EBUSY) => std::thread::yield_now(),
                    _ => break,
                }
            }
        }
    }
}

/// Removes empty build cgroups (`hermetic-<pid>-...`) whose launcher is gone: one killed
/// before it could clean up (SIGKILL, a crash) leaves its cgroups behind. Once per
/// directory and process: a daemon need not list them again for every build, and every
/// CLI run and daemon start sweeps anew.
fn remove_stale(parent: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if swept.iter().any(|dir| dir == parent) {
            return;
        }
        swept.push(parent.to_owned());
    }
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let launcher = name
            .to_str()
            .and_then(|name| name.strip_prefix("hermetic-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = launcher {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                // Fails, harmlessly, while anything is still in it.
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

fn make_dir(dir: &Path) -> Result<(), StepError> {
    fs::create_dir(dir).map_err(|err| {
        // Not allowed to make cgroups here: say what would allow it.
        let step = if err.kind() == io::ErrorKind::PermissionDenied {
            "create the build cgroup (this user may not create cgroups here: run under a \
             delegated cgroup, e.g. systemd-run --user --scope -p Delegate=yes, set \
             HERMETIC_CGROUP_PARENT, or set limits.cgroup = \"optional\" in the profile)"
        } else {
            "create the build cgroup"
        };
        StepError::new(Layer::Cgroup, step, "mkdir", Some(dir.into()), err)
    })
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), StepError> {
    let path = dir.join(file);
    fs::write(&path, value)
        .map_err(|err| StepError::new(Layer::Cgroup, "set a limit", "write", Some(path), err))
}

fn v2_has(mount: &Path, own: &str, controller: &str) -> bool {
    let own_dir = mount.join(own.trim_start_matches('/'));
    let candidates = [
        own_dir.join("cgroup.controllers"),
        mount.join("cgroup.controllers"),
    ];
    candidates.iter().any(|file| {
        fs::read_to_string(file).is_ok_and(|list| list.split_whitespace().any(|c| c == controller))
    })
}

fn v2_parent(mount: &Path, own: &str) -> Result<PathBuf, StepError> {
    if let Some(parent) = std::env::var_os("HERMETIC_CGROUP_PARENT") {
        return Ok(PathBuf::from(parent));
    }
    if nix::unistd::geteuid().is_root() {
        let slice = mount.join("hermetic.slice");
        match fs::create_dir(&slice) {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                return Err(StepError::new(
                    Layer::Cgroup,
                    "create hermetic.slice",
                    "mkdir",
                    Some(slice),
                    err,
                ))
            }
            _ => {}
        }
        return Ok(slice);
    }
    Ok(mount.join(own.trim_start_matches('/')))
}

fn enable_v2_controllers(parent: &Path, controllers: &[&str]) -> Result<(), StepError> {
    let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let wanted: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    if let Some(grand) = parent.parent() {
        if grand.join("cgroup.subtree_control").exists() && grand != parent {
            let _ = fs::write(grand.join("cgroup.subtree_control"), wanted.join(" "));
        }
    }
    write(parent, "cgroup.subtree_control", &wanted.join(" ")).map_err(|mut err| {
        err.step = "enable controllers for build cgroups (the parent must be delegated and hold no process)";
        err
    })
}

/// [`discover`], once per process: a daemon would otherwise read both files for every
/// build, and neither the mounts nor its own cgroup change under it (a daemon moved to
/// another cgroup goes on nesting its builds under the one it started in).
fn discovered() -> io::Result<&'static Hierarchies> {
    static FOUND: std::sync::OnceLock<Hierarchies> = std::sync::OnceLock::new();
    if let Some(found) = FOUND.get() {
        return Ok(found);
    }
    let found = discover()?;
    Ok(FOUND.get_or_init(|| found))
}

/// Reads /proc/self/mountinfo and /proc/self/cgroup.
fn discover() -> io::Result<Hierarchies> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let own = fs::read_to_string("/proc/self/cgroup")?;
    Ok(hierarchies(&mountinfo, &own))
}

/// Where each controller is, from the text of /proc/self/mountinfo and /proc/self/cgroup.
fn hierarchies(mountinfo: &str, own: &str) -> Hierarchies {
    let mut found = Hierarchies::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split_whitespace().collect();
        let right: Vec<&str> = right.split_whitespace().collect();
        let (Some(root), Some(mount_point), Some(fstype)) =
            (fields.get(3), fields.get(4), right.first())
        else {
            continue;
        };
        let super_options = right.get(2).copied().unwrap_or("");
        match *fstype {
            "cgroup2" if found.v2.is_none() => {
                let path = own
                    .lines()
                    .find_map(|l| l.strip_prefix("0::"))
                    .unwrap_or("/");
                found.v2 = Some((PathBuf::from(mount_point), strip_root(path, root)));
            }
            "cgroup" => {
                for controller in CONTROLLERS {
                    if !super_options.split(',').any(|o| o == controller) {
                        continue;
                    }
                    let path = own.lines().find_map(|l| {
                        let mut parts = l.splitn(3, ':');
                        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
                        list.split(',').any(|c| c == controller).then_some(path)
                    });
                    if let Some(path) = path {
                        let dir = Path::new(mount_point)
                            .join(strip_root(path, root).trim_start_matches('/'));
                        found.v1.push((controller.to_string(), dir));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// A cgroup path relative to the mount's own root (they differ inside containers).
fn strip_root(path: &str, root: &str) -> String {
    if root == "/" {
        return path.to_string();
    }
    path.strip_prefix(root).unwrap_or(path).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_cgroups_of_gone_launchers_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let gone = parent.path().join("hermetic-999999999-1a-0");
        let gone_busy = parent.path().join("hermetic-999999998-1a-0");
        let alive = parent
            .path()
            .join(format!("hermetic-{}-1a-0", std::process::id()));
        let other = parent.path().join("system.slice");
        for dir in [&gone, &gone_busy, &alive, &other] {
            fs::create_dir(dir).unwrap();
        }
        // Stands for a process still in the cgroup: rmdir fails on a non-empty directory.
        fs::write(gone_busy.join("cgroup.procs"), "42\n").unwrap();
        remove_stale(parent.path());
        assert!(!gone.exists());
        assert!(gone_busy.exists() && alive.exists() && other.exists());
    }

    // The three shapes of host, as their /proc files read. This machine is the hybrid
    // one, so the v2 paths are only ever run against fixtures here (docs/sandbox.md).
    const UNIFIED_MOUNTS: &str = "\
25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
30 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
";
    const HYBRID_MOUNTS: &str = "\
25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
";
    const HYBRID_OWN: &str = "\
5:cpu,cpuacct:/system.slice/runner.service
4:memory:/system.slice/runner.service
3:pids:/system.slice/runner.service
0::/system.slice/runner.service
";

    #[test]
    fn a_unified_host_puts_every_controller_on_v2_under_the_callers_cgroup() {
        let found = hierarchies(
            UNIFIED_MOUNTS,
            "0::/user.slice/user-1000.slice/session-3.scope\n",
        );
        assert!(found.v1.is_empty());
        assert_eq!(
            found.v2,
            Some((
                PathBuf::from("/sys/fs/cgroup"),
                "/user.slice/user-1000.slice/session-3.scope".to_owned()
            ))
        );
    }

    #[test]
    fn a_hybrid_host_finds_each_v1_controller_in_its_own_hierarchy() {
        let found = hierarchies(HYBRID_MOUNTS, HYBRID_OWN);
        let v1: Vec<(&str, &Path)> = found
            .v1
            .iter()
            .map(|(controller, dir)| (controller.as_str(), dir.as_path()))
            .collect();
        assert_eq!(
            v1,
            [
                (
                    "pids",
                    Path::new("/sys/fs/cgroup/pids/system.slice/runner.service")
                ),
                (
                    "memory",
                    Path::new("/sys/fs/cgroup/memory/system.slice/runner.service")
                ),
                (
                    "cpu",
                    Path::new("/sys/fs/cgroup/cpu,cpuacct/system.slice/runner.service")
                ),
            ]
        );
        assert_eq!(
            found.v2,
            Some((
                PathBuf::from("/sys/fs/cgroup/unified"),
                "/system.slice/runner.service".to_owned()
            ))
        );
    }

    #[test]
    fn inside_a_container_the_cgroup_is_relative_to_the_mounts_own_root() {
        let mounts = "\
40 35 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw,nsdelegate
";
        let found = hierarchies(mounts, "0::/docker/abc/build\n");
        assert_eq!(
            found.v2,
            Some((PathBuf::from("/sys/fs/cgroup"), "/build".to_owned()))
        );
    }

    #[test]
    fn a_v2_controller_is_available_when_the_cgroup_or_the_root_lists_it() {
        let mount = tempfile::tempdir().unwrap();
        let own = mount.path().join("runner.service");
        fs::create_dir(&own).unwrap();
        fs::write(
            mount.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(own.join("cgroup.controllers"), "memory\n").unwrap();
        assert!(v2_has(mount.path(), "/runner.service", "memory"));
        assert!(v2_has(mount.path(), "/runner.service", "pids"));
        assert!(!v2_has(mount.path(), "/runner.service", "hugetlb"));
        // A v2 hierarchy with no controllers at all (the unified mount of a hybrid host).
        let empty = tempfile::tempdir().unwrap();
        fs::write(empty.path().join("cgroup.controllers"), "").unwrap();
        assert!(!v2_has(empty.path(), "/", "pids"));
    }

    #[test]
    fn only_the_v2_controllers_not_yet_enabled_are_asked_for() {
        let parent = tempfile::tempdir().unwrap();
        fs::write(parent.path().join("cgroup.subtree_control"), "memory\n").unwrap();
        enable_v2_controllers(parent.path(), &["pids", "memory", "cpu"]).unwrap();
        assert_eq!(
            fs::read_to_string(parent.path().join("cgroup.subtree_control")).unwrap(),
            "+pids +cpu"
        );
        fs::write(
            parent.path().join("cgroup.subtree_control"),
            "cpu memory pids\n",
        )
        .unwrap();
        enable_v2_controllers(parent.path(), &["pids", "memory", "cpu"]).unwrap();
        assert_eq!(
            fs::read_to_string(parent.path().join("cgroup.subtree_control")).unwrap(),
            "cpu memory pids\n",
            "nothing is written when every controller is on"
        );
    }

    #[test]
    fn a_v2_cgroup_is_killed_through_cgroup_kill_and_without_it_process_by_process() {
        let with_kill = tempfile::tempdir().unwrap();
        fs::write(with_kill.path().join("cgroup.kill"), "").unwrap();
        let cgroup = BuildCgroup {
            dirs: vec![with_kill.path().to_owned()],
            v2: true,
            report: CgroupReport::default(),
        };
        cgroup.kill_all();
        assert_eq!(
            fs::read_to_string(with_kill.path().join("cgroup.kill")).unwrap(),
            "1"
        );
        std::mem::forget(cgroup);

        // Kernels before 5.14 have no cgroup.kill: every listed process is killed.
        let without_kill = tempfile::tempdir().unwrap();
        let mut member = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        fs::write(
            without_kill.path().join("cgroup.procs"),
            format!("{}\n", member.id()),
        )
        .unwrap();
        let cgroup = BuildCgroup {
            dirs: vec![without_kill.path().to_owned()],
            v2: true,
            report: CgroupReport::default(),
        };
        cgroup.kill_all();
        std::mem::forget(cgroup);
        let status = member.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }
}
