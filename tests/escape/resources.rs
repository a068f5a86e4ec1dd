//! Resources (R1-R8). Per-build cgroup limits (pids, memory + swap, cpu), size-capped
//! tmpfs mounts, RLIMIT_NOFILE, a wall-clock timeout, and a pid namespace whose init kills
//! whatever the build left behind. Tests use small custom profiles so every attempt ends
//! quickly; leftovers are looked for on the host by a unique marker in argv.
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{assert_status, hermetic, require_cgroups, run_in, stderr, stdout, Source};
use crate::{
    expect, host_processes_with, host_processes_with_arg, probe_source, probe_with, unique_digits,
    CustomProfile, PYTHON,
};

#[test]
fn r1_fork_bomb_is_stopped_by_the_pids_limit() {
    require_cgroups();
    let profile = CustomProfile::new("default", &[("pids", "64")]);
    let output = probe_with(
        &profile.args(),
        r#"
from lib import *
read_end, write_end = os.pipe()
forked, stopped = 0, None
for _ in range(1000):
    try:
        pid = os.fork()
    except OSError as ex:
        stopped = ex.errno
        break
    if pid == 0:
        os.close(write_end)
        os.read(read_end, 1)  # parked until the parent closes the pipe
        os._exit(0)
    forked += 1
os.close(write_end)
for _ in range(forked):
    os.wait()
say("stopped_by", errname(stopped) if stopped else "nothing")
say("forked_below_limit", "yes" if 32 < forked < 64 else forked)
"#,
        &[],
    );
    expect(
        &output,
        &[("stopped_by", "EAGAIN"), ("forked_below_limit", "yes")],
    );
}

#[test]
fn r1_shell_fork_bomb_is_contained_and_cleaned_up() {
    require_cgroups();
    let profile = CustomProfile::new("default", &[("pids", "64"), ("timeout_secs", "60")]);
    let marker = unique_digits();
    let started = Instant::now();
    let output = probe_with(
        &profile.args(),
        r#"
from lib import *
import subprocess
# The classic bomb (its argv carries the marker, and so does every forked copy). bash,
# unlike dash, keeps retrying a failed fork, so the bomb holds on to every pid it gets.
subprocess.Popen(["bash", "-c", ":(){ :|:& };: # " + arg(1)], stderr=subprocess.DEVNULL)
# Once it has eaten every pid, this process cannot fork either.
import time
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        pid = os.fork()
    except OSError as ex:
        say("limit_reached", errname(ex.errno))
        break
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"#,
        &[&marker],
    );
    expect(&output, &[("limit_reached", "EAGAIN")]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        host_processes_with(&format!(";: # {marker}")),
        Vec::<String>::new()
    );
}

#[test]
fn r2_memory_exhaustion_is_killed_by_the_memory_limit() {
    require_cgroups();
    let profile = CustomProfile::new("default", &[("memory", "\"256MiB\"")]);
    let output = probe_with(
        &profile.args(),
        r#"
from lib import *
chunks = []
for i in range(1, 65):
    chunks.append(b"\x01" * (16 << 20))  # touched, not just reserved
    print("allocated", i * 16, flush=True)
print("survived", flush=True)
"#,
        &[],
    );
    assert_status(&output, 128 + 9); // the OOM killer's SIGKILL
    let out = stdout(&output);
    assert!(!out.contains("survived"), "{out}");
    let last: u32 = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("allocated ")?.parse().ok())
        .unwrap_or(0);
    assert!(
        (64..=256).contains(&last),
        "allocated {last} MiB under a 256 MiB limit:\n{out}"
    );
}

#[test]
fn r3_disk_fill_stops_with_enospc_at_the_tmpfs_caps() {
    require_cgroups();
    let profile = CustomProfile::new(
        "default",
        &[
            ("build_dir_size", "\"8MiB\""),
            ("tmp_size", "\"8MiB\""),
            ("home_size", "\"4MiB\""),
        ],
    );
    let output = probe_with(
        &profile.args(),
        r#"
from lib import *
chunk = b"\0" * (1 << 20)
for path, cap in [("/build/fill", 8), ("/tmp/fill", 8), ("/home/build/fill", 4), ("/dev/shm/fill", 64)]:
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(4 * cap):
                f.write(chunk)
                f.flush()
                written += 1
        say(path, "no limit")
    except OSError as ex:
        say(path, errname(ex.errno))
    say(path + " within cap", "yes" if written <= cap else written)
    os.unlink(path)
"#,
        &[],
    );
    expect(
        &output,
        &[
            ("/build/fill", "ENOSPC"),
            ("/build/fill within cap", "yes"),
            ("/tmp/fill", "ENOSPC"),
            ("/tmp/fill within cap", "yes"),
            ("/home/build/fill", "ENOSPC"),
            ("/home/build/fill within cap", "yes"),
            ("/dev/shm/fill", "ENOSPC"),
            ("/dev/shm/fill within cap", "yes"),
        ],
    );
}

#[test]
fn r3_every_writable_mount_is_a_size_capped_tmpfs() {
    let output = probe_with(
        &[],
        r#"
from lib import *
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    mountpoint, options = fields[4], fields[5].split(",")
    dash = fields.index("-")
    fstype, super_options = fields[dash + 1], fields[dash + 3].split(",")
    if "rw" in options and not mountpoint.startswith("/dev/") or mountpoint == "/dev/shm":
        size = [o for o in super_options if o.startswith("size=")]
        say(mountpoint, fstype + " " + (size[0] if size else "no size"))
"#,
        &[],
    );
    expect(
        &output,
        &[
            ("/dev", "tmpfs size=64k"),
            ("/dev/shm", "tmpfs size=65536k"),
            ("/proc", "proc no size"),
            ("/build", "tmpfs size=4194304k"),
            ("/home/build", "tmpfs size=262144k"),
            ("/tmp", "tmpfs size=1048576k"),
        ],
    );
    let writable = stdout(&output).lines().count();
    assert_eq!(
        writable,
        6,
        "unexpected writable mounts:\n{}",
        stdout(&output)
    );
}

#[test]
fn r4_never_ending_build_is_killed_at_the_timeout() {
    require_cgroups();
    let profile = CustomProfile::new("default", &[("timeout_secs", "2")]);
    let marker = unique_digits();
    let started = Instant::now();
    let output = run_in(
        &Source::new(&[]),
        &profile.args(),
        &[
            "sh",
            "-c",
            &format!("trap '' TERM HUP INT; sleep 86400.{marker} & setsid sleep 86401.{marker} & sleep 86402.{marker}; wait"),
        ],
    );
    let elapsed = started.elapsed();
    assert_status(&output, 124);
    assert!(
        stderr(&output).contains("exceeded the profile's timeout"),
        "{}",
        stderr(&output)
    );
    assert!(
        elapsed >= Duration::from_secs(2),
        "ended after {elapsed:?}, before the timeout"
    );
    assert!(elapsed < Duration::from_secs(15), "ended after {elapsed:?}");
    assert_eq!(
        host_processes_with(&format!(".{marker}")),
        Vec::<String>::new()
    );
}

/// Waits (bounded) until processes with exactly these argv exist; prints `running: yes`.
const WAIT_FOR_ARGV: &str = r#"
def wait_for(*argvs, seconds=20):
    import time
    wanted = {b"\0".join(a.encode() for a in argv) + b"\0" for argv in argvs}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                seen.add(open(f"/proc/{pid}/cmdline", "rb").read())
            except OSError:
                pass
        if wanted <= seen:
            say("running", "yes")
            return
    say("running", "no")
"#;

#[test]
fn r5_orphaned_and_daemonised_children_do_not_survive_the_build() {
    let marker = unique_digits();
    let script = format!(
        r#"
from lib import *
import signal, subprocess
{WAIT_FOR_ARGV}
m = arg(1)
subprocess.run(["setsid", "-f", "sleep", "86400." + m], stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
if os.fork() == 0:  # a classic double-fork daemon that ignores SIGTERM and SIGHUP
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.closerange(0, 3)
        os.execvp("sleep", ["sleep", "86401." + m])
    os._exit(0)
os.wait()
subprocess.Popen(["nohup", "sleep", "86402." + m], stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
wait_for(["sleep", "86400." + m], ["sleep", "86401." + m], ["sleep", "86402." + m])
"#
    );
    let started = Instant::now();
    let output = probe_with(&[], &script, &[&marker]);
    expect(&output, &[("running", "yes")]);
    // The build returned as soon as its main process exited: nothing waited for the daemons.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    for n in 0..3 {
        assert_eq!(
            host_processes_with_arg(&format!("8640{n}.{marker}")),
            Vec::<String>::new()
        );
    }
}

#[test]
fn r5_killing_the_launcher_takes_the_whole_sandbox_down() {
    let marker = unique_digits();
    let src = probe_source(
        &format!(
            r#"
from lib import *
import subprocess
{WAIT_FOR_ARGV}
child = subprocess.Popen(["sleep", "86400." + arg(1)])
wait_for(["sleep", "86400." + arg(1)])
child.wait()
"#
        ),
        &[],
    );
    let mut child = hermetic()
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", PYTHON, "probe.py", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "running: yes\n");
    // The scan does see sandboxed processes while they live...
    let sleep_arg = format!("86400.{marker}");
    assert_eq!(host_processes_with_arg(&sleep_arg).len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // ...and EOF on the build's stdout means every process holding it has exited.
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(host_processes_with_arg(&sleep_arg), Vec::<String>::new());
}

#[test]
fn r6_cpu_hog_gets_only_the_profiles_cpu_time() {
    require_cgroups();
    // Strict profile: one CPU. Three spinning processes, each also widening its affinity
    // (there is no cpuset cgroup to stop that), get about one CPU-second per second.
    let output = probe_with(
        &["--profile", "strict"],
        r#"
from lib import *
import time
say("nproc", os.cpu_count())
pids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            os.sched_setaffinity(0, {0, 1})
        except OSError:
            pass
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pass
        os._exit(0)
    pids.append(pid)
start = time.monotonic()
for pid in pids:
    os.waitpid(pid, 0)
wall = time.monotonic() - start
t = os.times()
cpu = t.children_user + t.children_system
say("cpu_per_wall", f"{cpu / wall:.2f}")
say("within_one_cpu", "yes" if cpu / wall <= 1.25 else "no")
"#,
        &[],
    );
    expect(&output, &[("nproc", "1"), ("within_one_cpu", "yes")]);
}

#[test]
fn r7_descriptor_and_inotify_exhaustion_hit_per_sandbox_limits() {
    let output = probe_with(
        &[],
        r#"
from lib import *
import resource
say("nofile", resource.getrlimit(resource.RLIMIT_NOFILE))
fds = []
try:
    while len(fds) < 100000:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    say("open", "no limit")
except OSError as ex:
    say("open", errname(ex.errno))
say("open_count_at_most_4096", "yes" if len(fds) <= 4096 else len(fds))
for fd in fds:
    os.close(fd)
import struct
limit = buf(16)
struct.pack_into("=QQ", limit, 0, 1 << 20, 1 << 20)
raw("raise_hard_limit", 302, 0, resource.RLIMIT_NOFILE, limit, 0)  # prlimit64
libc.inotify_init1.restype = ctypes.c_int
instances = []
while len(instances) < 10000:
    fd = libc.inotify_init1(0)
    if fd < 0:
        say("inotify", errname(ctypes.get_errno()))
        break
    instances.append(fd)
say("inotify_count_at_most_128", "yes" if len(instances) <= 128 else len(instances))
"#,
        &[],
    );
    expect(
        &output,
        &[
            ("nofile", "(4096, 4096)"),
            ("open", "EMFILE"),
            ("open_count_at_most_4096", "yes"),
            ("raise_hard_limit", "EPERM"),
            ("inotify", "EMFILE"),
            ("inotify_count_at_most_128", "yes"),
        ],
    );
}

#[test]
fn r8_builds_cannot_create_namespaces_and_leave_no_cgroups_behind() {
    require_cgroups();
    let output = probe_with(
        &[],
        r#"
from lib import *
raw("unshare_net", "unshare", 0x40000000)
raw("clone_net", "clone", 0x40000000 | 17, 0, 0, 0, 0)
raw("unshare_user_net", "unshare", 0x50000000)
"#,
        &[],
    );
    expect(
        &output,
        &[
            ("unshare_net", "EPERM"),
            ("clone_net", "EPERM"),
            ("unshare_user_net", "EPERM"),
        ],
    );

    // Back-to-back builds: every per-build cgroup is gone when its build returns.
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let output = hermetic()
            .args(["build", "--single", "--json", "--src"])
            .arg(Source::new(&[]).path())
            .arg("--artifact")
            .arg(dir.path().join("a.tar.zst"))
            .args(["--", "sh", "-c", "mkdir out && echo x > out/x"])
            .output()
            .unwrap();
        assert_status(&output, 0);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let cgroups = report["sandbox"]["cgroup"]
            .as_object()
            .expect("a cgroup report");
        for controller in ["pids", "memory", "cpu"] {
            let path = cgroups[controller].as_str().unwrap();
            let path = path.split_once(':').map(|(_, p)| p).unwrap_or(path);
            assert!(
                !std::path::Path::new(path).exists(),
                "round {round}: {path} left behind"
            );
        }
    }
}
