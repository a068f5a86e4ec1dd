//! Process and kernel surface (P1-P17). The build is pid 2 of its own pid namespace under
//! a non-dumpable init, has no capabilities, runs with no_new_privs, Landlock scopes its
//! signals, and the seccomp policy answers explicit denials with EPERM and anything not
//! on the allowlist with ENOSYS. Where the kernel alone would answer differently (EACCES,
//! ENOTTY, success), the EPERM shows that seccomp is the layer that stopped it.
use std::process::{Command, Stdio};

use crate::support::{assert_status, sh, stderr, stdout};
use crate::{expect, outcome, probe, probe_with, PYTHON};

#[test]
fn p1_ptrace_and_process_vm_access_are_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
raw("ptrace_attach_init", "ptrace", 16, 1, 0, 0)     # PTRACE_ATTACH
raw("ptrace_seize_init", "ptrace", 0x4206, 1, 0, 0)  # PTRACE_SEIZE
raw("ptrace_traceme", "ptrace", 0, 0, 0, 0)
child = subprocess.Popen(["sleep", "30"])
raw("ptrace_attach_own_child", "ptrace", 16, child.pid, 0, 0)
local = buf(8)
iov_local = (ctypes.c_void_p * 2)(ctypes.cast(local, ctypes.c_void_p), 8)
iov_remote = (ctypes.c_void_p * 2)(0x400000, 8)
raw("process_vm_readv_init", "process_vm_readv", 1, iov_local, 1, iov_remote, 1, 0)
raw("process_vm_writev_child", "process_vm_writev", child.pid, iov_local, 1, iov_remote, 1, 0)
raw("kcmp", "kcmp", 1, os.getpid(), 0, 0, 0)
attempt("proc_mem_init", lambda: open("/proc/1/mem", "rb").read(1))
r = subprocess.run(["strace", "-p", "1"], capture_output=True, text=True)
say("strace", f"{r.returncode} {'Operation not permitted' in r.stderr}")
child.kill()
child.wait()
"#,
    );
    expect(
        &output,
        &[
            ("ptrace_attach_init", "EPERM"),
            ("ptrace_seize_init", "EPERM"),
            ("ptrace_traceme", "EPERM"),
            ("ptrace_attach_own_child", "EPERM"),
            ("process_vm_readv_init", "EPERM"),
            ("process_vm_writev_child", "EPERM"),
            ("kcmp", "EPERM"),
            ("proc_mem_init", "EACCES"),
            ("strace", "1 True"),
        ],
    );
}

#[test]
fn p2_signals_cannot_reach_init_or_host_processes() {
    let host_pid = std::process::id().to_string();
    let output = probe_with(
        &[],
        r#"
from lib import *
import signal
attempt("kill_init", os.kill, 1, signal.SIGKILL)
attempt("kill_init_probe", os.kill, 1, 0)
attempt("kill_host_pid", os.kill, int(arg(1)), signal.SIGKILL)
pidfd = raw("pidfd_open_init", "pidfd_open", 1, 0)
raw("pidfd_send_signal_init", 424, pidfd, signal.SIGKILL, 0, 0)
say("init_alive", "yes" if os.path.exists("/proc/1/status") else "no")
# kill(-1) reaches only this build's own processes (here: none but the caller, which
# it skips), never init and never the host.
attempt("kill_minus_one", os.kill, -1, signal.SIGKILL)
say("still_here", "yes")
"#,
        &[&host_pid],
    );
    expect(
        &output,
        &[
            ("kill_init", "EPERM"), // Landlock signal scope: init is outside the build's domain
            ("kill_init_probe", "EPERM"),
            ("kill_host_pid", "ESRCH"),
            ("pidfd_open_init", "ok"),
            ("pidfd_send_signal_init", "EPERM"),
            ("init_alive", "yes"),
            ("kill_minus_one", "ESRCH"),
            ("still_here", "yes"),
        ],
    );
}

#[test]
fn p3_setuid_binaries_do_not_elevate() {
    let output = sh(r#"
grep -E '^(NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status
grep -q ' /usr ro,nosuid,' /proc/self/mountinfo && echo "usr: nosuid"
ls -l /usr/bin/sudo | cut -c1-10
sudo -n id -u; echo "sudo: $?"
su -c id root </dev/null; echo "su: $?"
mount -t tmpfs none /tmp 2>&1; echo "mount: $?"
"#);
    assert_status(&output, 0);
    let out = stdout(&output);
    for line in [
        "NoNewPrivs:\t1",
        "CapInh:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "usr: nosuid",
        "-rwsr-xr-x",
        "sudo: 1",
        "su: 1",
        "must be superuser to use mount.",
        "mount: 32",
    ] {
        assert!(
            out.lines().any(|l| l.contains(line)),
            "missing `{line}` in:\n{out}\n{}",
            stderr(&output)
        );
    }
    assert!(
        !out.lines().any(|l| l == "0"),
        "a setuid binary ran as root:\n{out}"
    );
    assert!(
        stderr(&output).contains("\"no new privileges\" flag is set"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn p4_nested_user_namespaces_are_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
NEWUSER = 0x10000000
SIGCHLD = 17
raw("unshare_user", "unshare", NEWUSER)
raw("clone_newuser", "clone", NEWUSER | SIGCHLD, 0, 0, 0, 0)
# Bits above 32 are ignored by the kernel; the masked 32-bit compare must still match.
raw("clone_newuser_high_bits", "clone", 0x1_0000_0000 | NEWUSER | SIGCHLD, 0, 0, 0, 0)
import struct
args = buf(88)
struct.pack_into("=Q", args, 0, NEWUSER)
raw("clone3_newuser", "clone3", args, 88)
r = subprocess.run(["unshare", "-Ur", "true"], capture_output=True, text=True)
say("unshare_cmd", f"{r.returncode} {r.stderr.strip()}")
"#,
    );
    expect(
        &output,
        &[
            ("unshare_user", "EPERM"),
            ("clone_newuser", "EPERM"),
            ("clone_newuser_high_bits", "EPERM"),
            ("clone3_newuser", "ENOSYS"), // clone3 is not allowlisted (its flags can't be filtered)
            (
                "unshare_cmd",
                "1 unshare: unshare failed: Operation not permitted",
            ),
        ],
    );
}

#[test]
fn p4_every_other_namespace_flag_is_denied_too() {
    let output = probe(
        r#"
from lib import *
for name, flag in [("ns", 0x20000), ("cgroup", 0x2000000), ("uts", 0x4000000), ("ipc", 0x8000000),
                   ("pid", 0x20000000), ("net", 0x40000000), ("time", 0x80)]:
    raw("unshare_" + name, "unshare", flag)
    if name != "time":
        raw("clone_" + name, "clone", flag | 17, 0, 0, 0, 0)
"#,
    );
    let mut expected = Vec::new();
    let names = ["ns", "cgroup", "uts", "ipc", "pid", "net", "time"];
    let labels: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("unshare_{n}"), format!("clone_{n}")])
        .filter(|l| l != "clone_time")
        .collect();
    for label in &labels {
        expected.push((label.as_str(), "EPERM"));
    }
    expect(&output, &expected);
}

#[test]
fn p5_kernel_keyrings_are_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
raw("keyctl_session", "keyctl", 0, -3, 1)  # KEYCTL_GET_KEYRING_ID @s, create
raw("keyctl_join", "keyctl", 1, 0)         # KEYCTL_JOIN_SESSION_KEYRING
raw("add_key", "add_key", b"user", b"hermetic", b"secret", 6, -3)
raw("request_key", "request_key", b"user", b"hermetic", 0, 0)
"#,
    );
    expect(
        &output,
        &[
            ("keyctl_session", "EPERM"),
            ("keyctl_join", "EPERM"),
            ("add_key", "EPERM"),
            ("request_key", "EPERM"),
        ],
    );
}

#[test]
fn p6_bpf_is_denied() {
    let output = probe(
        r#"
from lib import *
import struct
attr = buf(128)
struct.pack_into("=IIII", attr, 0, 2, 4, 8, 16)  # BPF_MAP_TYPE_ARRAY, key 4, value 8, 16 entries
raw("bpf_map_create", "bpf", 0, attr, 128)
raw("bpf_prog_load", "bpf", 5, buf(128), 128)
"#,
    );
    expect(
        &output,
        &[("bpf_map_create", "EPERM"), ("bpf_prog_load", "EPERM")],
    );
}

#[test]
fn p7_perf_event_open_is_denied() {
    let output = probe(
        r#"
from lib import *
import struct
attr = buf(128)
struct.pack_into("=II", attr, 0, 1, 128)  # PERF_TYPE_SOFTWARE, size
raw("perf_self", "perf_event_open", attr, 0, -1, -1, 0)
raw("perf_system_wide", "perf_event_open", attr, -1, 0, -1, 0)
"#,
    );
    // The kernel alone (perf_event_paranoid=2) would say EACCES for the first one.
    expect(
        &output,
        &[("perf_self", "EPERM"), ("perf_system_wide", "EPERM")],
    );
}

#[test]
fn p8_userfaultfd_is_denied() {
    let output = probe(
        r#"
from lib import *
raw("userfaultfd", "userfaultfd", 0)
raw("userfaultfd_user_only", "userfaultfd", 1)  # UFFD_USER_MODE_ONLY
attempt("dev_userfaultfd", os.open, "/dev/userfaultfd", os.O_RDWR)
"#,
    );
    expect(
        &output,
        &[
            ("userfaultfd", "EPERM"),
            ("userfaultfd_user_only", "EPERM"),
            ("dev_userfaultfd", "ENOENT"),
        ],
    );
}

#[test]
fn p9_io_uring_setup_is_denied() {
    let output = probe(
        r#"
from lib import *
raw("io_uring_setup", "io_uring_setup", 8, buf(120))
raw("io_uring_enter", "io_uring_enter", 0, 1, 1, 0, 0, 0)
raw("io_uring_register", "io_uring_register", 0, 0, 0, 0)
"#,
    );
    // kernel.io_uring_disabled is 0 on this host: only seccomp stands in the way.
    expect(
        &output,
        &[
            ("io_uring_setup", "EPERM"),
            ("io_uring_enter", "EPERM"),
            ("io_uring_register", "EPERM"),
        ],
    );
}

const TTY_PROBE: &str = r#"
from lib import *
import stat
raw("tiocsti_fd0", 16, 0, 0x5412, b"x")
raw("tiocsti_fd1", 16, 1, 0x5412, b"x")
raw("tiocsti_fd2", 16, 2, 0x5412, b"x")
raw("tiocsti_high_bits", 16, 1, 0x1_0000_5412, b"x")  # CVE-2019-10063
raw("tioclinux", 16, 1, 0x541c, b"\x02")
raw("other_tty_ioctl", 16, 1, 0x5413, buf(8))            # TIOCGWINSZ: not denied, just no tty
attempt("dev_tty", os.open, "/dev/tty", os.O_RDWR)
say("isatty", [os.isatty(fd) for fd in (0, 1, 2)])
say("stdout_kind", "fifo" if stat.S_ISFIFO(os.fstat(1).st_mode) else "other")
fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
say("tty_nr", fields[4])
say("session_leader_is_build", os.getsid(0) == os.getsid(os.getppid()) and os.getsid(0) != 1)
"#;

#[test]
fn p10_tiocsti_and_tioclinux_are_denied() {
    expect(
        &probe(TTY_PROBE),
        &[
            ("tiocsti_fd0", "EPERM"),
            ("tiocsti_fd1", "EPERM"),
            ("tiocsti_fd2", "EPERM"),
            ("tiocsti_high_bits", "EPERM"),
            ("tioclinux", "EPERM"),
            ("other_tty_ioctl", "ENOTTY"),
            ("dev_tty", "ENOENT"),
            ("tty_nr", "0"),
        ],
    );
}

/// Runs `hermetic run --src SRC -- CMD...` with a fresh pty as its controlling terminal,
/// stdout and stderr (through the host's python, which std lacks the calls for). Prints
/// what arrived on the pty, then `pending-input: N`, the bytes a TIOCSTI would have
/// queued as input on the terminal.
pub const PTY_RUNNER: &str = r#"
import fcntl, os, struct, subprocess, sys, termios
master, slave = os.openpty()
def controlling_tty():
    os.setsid()
    fcntl.ioctl(1, termios.TIOCSCTTY, 0)
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                     preexec_fn=controlling_tty)
p.wait()
# TIOCSTI queues input synchronously: anything injected is waiting on the slave now.
pending = struct.unpack("i", fcntl.ioctl(slave, termios.FIONREAD, b"\0" * 4))[0]
os.close(slave)
out = b""
while True:  # with the slave closed, the master reads what is left, then EIO
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
print(f"pending-input: {pending}")
print(f"exit: {p.returncode}")
"#;

#[test]
fn p10_tiocsti_cannot_inject_into_the_callers_terminal() {
    let src = crate::probe_source(TTY_PROBE, &[]);
    let output = Command::new(PYTHON)
        .args(["-c", PTY_RUNNER])
        .arg(crate::support::hermetic_binary())
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", PYTHON, "probe.py"])
        .env("HERMETIC_NO_DAEMON", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 0);
    expect(
        &output,
        &[
            ("tiocsti_fd1", "EPERM"),
            ("tiocsti_high_bits", "EPERM"),
            ("tioclinux", "EPERM"),
            ("dev_tty", "ENOENT"),
            // The caller's terminal is relayed through a pipe, never handed to the build.
            ("isatty", "[False, False, False]"),
            ("stdout_kind", "fifo"),
            ("tty_nr", "0"),
            ("pending-input", "0"),
            ("exit", "0"),
        ],
    );
}

#[test]
fn p11_personality_flags_are_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
raw("query", "personality", 0xffffffff)
raw("linux", "personality", 0)
raw("addr_no_randomize", "personality", 0x0040000)
raw("read_implies_exec", "personality", 0x0400000)
raw("linux32", "personality", 0x0008)
raw("mmap_page_zero", "personality", 0x0100000)
r = subprocess.run(["setarch", "-R", "true"], capture_output=True, text=True)
say("setarch", f"{r.returncode} {'Operation not permitted' in r.stderr}")
say("aslr", open("/proc/self/personality").read().strip())
"#,
    );
    expect(
        &output,
        &[
            ("query", "ok"),
            ("linux", "ok"),
            ("addr_no_randomize", "EPERM"),
            ("read_implies_exec", "EPERM"),
            ("linux32", "EPERM"),
            ("mmap_page_zero", "EPERM"),
            ("setarch", "1 True"),
            ("aslr", "00000000"),
        ],
    );
}

#[test]
fn p12_kernel_modules_cannot_be_loaded() {
    let output = probe(
        r#"
from lib import *
image = open("/usr/bin/true", "rb").read()
raw("init_module", "init_module", image, len(image), b"")
fd = os.open("/usr/bin/true", os.O_RDONLY)
raw("finit_module", "finit_module", fd, b"", 0)
raw("delete_module", "delete_module", b"ext4", 0)
# Module autoload through a socket family: refused before the kernel looks for a module.
attempt("autoload_af_tipc", socket.socket, 30, socket.SOCK_RDM, 0)
"#,
    );
    expect(
        &output,
        &[
            ("init_module", "EPERM"),
            ("finit_module", "EPERM"),
            ("delete_module", "EPERM"),
            ("autoload_af_tipc", "EPERM"),
        ],
    );
}

#[test]
fn p13_the_clock_cannot_be_set() {
    let output = probe(
        r#"
from lib import *
import subprocess, struct, time
now = buf(16)
struct.pack_into("=qq", now, 0, int(time.time()) + 86400, 0)
raw("clock_settime_realtime", "clock_settime", 0, now)
raw("clock_settime_tai", "clock_settime", 11, now)
raw("settimeofday", "settimeofday", now, 0)
raw("adjtimex", "adjtimex", buf(256))
raw("clock_adjtime", "clock_adjtime", 0, buf(256))
r = subprocess.run(["date", "-s", "@0"], capture_output=True, text=True)
say("date_s", f"{r.returncode} {r.stderr.strip()}")
say("unix_time", int(time.time()))
"#,
    );
    expect(
        &output,
        &[
            ("clock_settime_realtime", "EPERM"),
            ("clock_settime_tai", "EPERM"),
            ("settimeofday", "EPERM"),
            ("adjtimex", "EPERM"),
            ("clock_adjtime", "EPERM"),
            ("date_s", "1 date: cannot set date: Operation not permitted"),
        ],
    );
    let inside: i64 = outcome(&output, "unix_time").unwrap().parse().unwrap();
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (host - inside).abs() < 60,
        "the wall clock moved: inside {inside}, host {host}"
    );
}

#[test]
fn p14_setns_into_other_namespaces_is_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
for ns in ["net", "mnt", "pid", "user", "uts", "ipc", "cgroup", "time"]:
    attempt("open_init_" + ns, os.open, "/proc/1/ns/" + ns, os.O_RDONLY)
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
raw("setns_own_net", "setns", fd, 0)
pidfd = raw("pidfd_open_init", "pidfd_open", 1, 0)
raw("setns_pidfd_init", "setns", pidfd, 0x40000000)
r = subprocess.run(["nsenter", "-t", "1", "-n", "true"], capture_output=True, text=True)
say("nsenter", f"{r.returncode} {'Permission denied' in r.stderr or 'Operation not permitted' in r.stderr}")
"#,
    );
    let mut expected: Vec<(String, &str)> =
        ["net", "mnt", "pid", "user", "uts", "ipc", "cgroup", "time"]
            .iter()
            .map(|ns| (format!("open_init_{ns}"), "EACCES"))
            .collect();
    expected.push(("setns_own_net".into(), "EPERM"));
    expected.push(("pidfd_open_init".into(), "ok"));
    expected.push(("setns_pidfd_init".into(), "EPERM"));
    expected.push(("nsenter".into(), "1 True"));
    let expected: Vec<(&str, &str)> = expected.iter().map(|(l, o)| (l.as_str(), *o)).collect();
    expect(&output, &expected);
}

/// Removes a SysV shared memory segment created with ipcmk.
struct ShmSegment(String);

impl Drop for ShmSegment {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm").args(["-m", &self.0]).status();
    }
}

#[test]
fn p15_sysv_ipc_and_posix_shm_are_not_shared_with_the_host() {
    let created = Command::new("ipcmk").args(["-M", "4096"]).output().unwrap();
    assert!(
        created.status.success(),
        "ipcmk: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let id = String::from_utf8_lossy(&created.stdout)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let _segment = ShmSegment(id.clone());
    let shm_name = crate::unique("p15");
    let host_shm = std::path::Path::new("/dev/shm").join(&shm_name);
    std::fs::write(&host_shm, "host shm").unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(host_shm.clone());

    let output = probe_with(
        &[],
        r#"
from lib import *
raw("shmat_host_segment", 30, int(arg(1)), 0, 0)
raw("shmctl_host_segment", 31, int(arg(1)), 2, buf(128))  # IPC_STAT
say("sysvipc_shm_entries", len(open("/proc/sysvipc/shm").read().splitlines()) - 1)
attempt("host_posix_shm", os.stat, "/dev/shm/" + arg(2))
open("/dev/shm/" + arg(2) + "-inside", "w").write("x")
key = 0x4845524d
seg = raw("own_segment", 29, key, 4096, 0o1000 | 0o600)  # IPC_CREAT
"#,
        &[&id, &shm_name],
    );
    expect(
        &output,
        &[
            ("shmat_host_segment", "EINVAL"),
            ("shmctl_host_segment", "EINVAL"),
            ("sysvipc_shm_entries", "0"),
            ("host_posix_shm", "ENOENT"),
            ("own_segment", "ok"),
        ],
    );
    assert!(!std::path::Path::new("/dev/shm")
        .join(format!("{shm_name}-inside"))
        .exists());
    assert_eq!(std::fs::read_to_string(&host_shm).unwrap(), "host shm");
    // The build's own segment (key 0x4845524d) died with its IPC namespace.
    let ipcs = Command::new("ipcs").args(["-m"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ipcs.stdout).contains("0x4845524d"),
        "{}",
        String::from_utf8_lossy(&ipcs.stdout)
    );
}

#[test]
fn p16_i386_and_x32_syscall_abis_are_denied() {
    let output = probe(
        r#"
from lib import *
import mmap
code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
# mov eax, 20 (i386 getpid); int 0x80; ret
code.write(b"\xb8\x14\x00\x00\x00\xcd\x80\xc3")
i386_getpid = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))
r = i386_getpid()
say("i386_getpid", "ok" if r >= 0 else errname(-r))
code.seek(0)
# mov eax, 26 (i386 ptrace); int 0x80; ret: a denied call in the other table
code.write(b"\xb8\x1a\x00\x00\x00\xcd\x80\xc3")
r = i386_getpid()
say("i386_ptrace", "ok" if r >= 0 else errname(-r))
raw("x32_getpid", 0x40000000 | 39)
raw("x32_unshare", 0x40000000 | 272, 0x10000000)
raw("native_getpid", "getpid")
"#,
    );
    expect(
        &output,
        &[
            ("i386_getpid", "EPERM"),
            ("i386_ptrace", "EPERM"),
            ("x32_getpid", "EPERM"),
            ("x32_unshare", "EPERM"),
            ("native_getpid", "ok"),
        ],
    );
}

#[test]
fn p17_reboot_kexec_swap_acct_quota_syslog_are_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
raw("reboot", "reboot", 0xfee1dead, 672274793, 0x4321fedc, 0)  # LINUX_REBOOT_CMD_POWER_OFF
raw("kexec_load", "kexec_load", 0, 0, 0, 0)
raw("kexec_file_load", "kexec_file_load", -1, -1, 0, b"", 0)
raw("swapon", "swapon", b"/build/swap", 0)
raw("swapoff", "swapoff", b"/build/swap")
raw("acct", "acct", b"/build/acct")
raw("quotactl", "quotactl", 0x800002, b"/dev/null", 0, 0)
raw("syslog_read_all", "syslog", 3, buf(1024), 1024)
raw("syslog_size", "syslog", 10, 0, 0)
raw("vhangup", "vhangup")
raw("iopl", "iopl", 3)
raw("ioperm", "ioperm", 0x80, 1, 1)
raw("sethostname", "sethostname", b"evil", 4)
raw("fanotify_init", "fanotify_init", 0, 0)
attempt("proc_kmsg", lambda: open("/proc/kmsg", "rb").read(1))
r = subprocess.run(["dmesg"], capture_output=True, text=True)
say("dmesg", f"{r.returncode} {'Operation not permitted' in r.stderr}")
"#,
    );
    expect(
        &output,
        &[
            ("reboot", "EPERM"),
            ("kexec_load", "EPERM"),
            ("kexec_file_load", "EPERM"),
            ("swapon", "EPERM"),
            ("swapoff", "EPERM"),
            ("acct", "EPERM"),
            ("quotactl", "EPERM"),
            ("syslog_read_all", "EPERM"),
            ("syslog_size", "EPERM"),
            ("vhangup", "EPERM"),
            ("iopl", "EPERM"),
            ("ioperm", "EPERM"),
            ("sethostname", "EPERM"),
            ("fanotify_init", "EPERM"),
            ("proc_kmsg", "EACCES"),
            ("dmesg", "1 True"),
        ],
    );
}

#[test]
fn seccomp_unlisted_syscalls_return_enosys() {
    // The allowlist's default: anything unknown fails as "not implemented", which tools
    // handle by falling back, instead of EPERM or a kill.
    let output = probe(
        r#"
from lib import *
raw("process_madvise", "process_madvise", 0, 0, 0, 0, 0)
raw("name_to_handle_at", "name_to_handle_at", -100, b"/", 0, 0, 0)
raw("clone3", "clone3", buf(88), 88)
raw("nr_999", 999)
raw("lsm_get_self_attr", 459, 0, 0, 0, 0)
"#,
    );
    expect(
        &output,
        &[
            ("process_madvise", "ENOSYS"),
            ("name_to_handle_at", "ENOSYS"),
            ("clone3", "ENOSYS"),
            ("nr_999", "ENOSYS"),
            ("lsm_get_self_attr", "ENOSYS"),
        ],
    );
}
