//! Information leaks (I1-I12). The environment is built from scratch, init keeps nothing
//! readable, identity, hostname, CPU count, boot id, uptime, time zone, locale and umask
//! are pinned whatever the caller's values, no host descriptor or terminal reaches the
//! build, and host paths and users stay out of /proc and /etc.
use std::process::{Command, Stdio};

use crate::support::{
    assert_status, descendants, hermetic, require_cgroups, require_root, run_in, stderr, stdout,
    Source,
};
use crate::{assert_absent, expect, outcome, probe, probe_source, probe_with, unique, PYTHON};

const SECRET_VAR: &str = "HERMETIC_ESCAPE_SECRET";

#[test]
fn i1_host_environment_is_not_inherited() {
    let secret = unique("i1-secret");
    let output = hermetic()
        .env(SECRET_VAR, &secret)
        .env("TZ", "Asia/Tokyo")
        .env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("LD_PRELOAD", "/nonexistent/evil.so")
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
        .args(["run", "--src"])
        .arg(Source::new(&[]).path())
        .args(["--", "env"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 0);
    let mut env: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    env.sort();
    assert_eq!(
        env,
        [
            "HOME=/home/build",
            "HOSTNAME=hermetic",
            "LANG=C.UTF-8",
            "LC_ALL=C.UTF-8",
            "LOGNAME=build",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "PWD=/build",
            "PYTHONHASHSEED=0",
            "SHELL=/bin/sh",
            "SOURCE_DATE_EPOCH=315532800",
            "TMPDIR=/tmp",
            "TZ=UTC",
            "USER=build",
        ]
    );
    assert_absent(&output, &secret);
}

#[test]
fn i2_no_visible_process_carries_the_host_secret_in_environ_or_cmdline() {
    let secret = unique("i2-secret");
    let src = probe_source(
        r#"
from lib import *
import subprocess
helper = subprocess.Popen(["sleep", "30"])  # one more process to look at
seen, unreadable = [], []
for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
    tids = os.listdir(f"/proc/{pid}/task")
    for path in [f"/proc/{pid}/environ", f"/proc/{pid}/cmdline"] + [f"/proc/{pid}/task/{t}/environ" for t in tids]:
        try:
            data = open(path, "rb").read()
        except OSError as ex:
            unreadable.append(f"{path}={errname(ex.errno)}")
            continue
        seen.append(path)
        if b"HERMETIC_ESCAPE" in data or b"i2-secret" in data:
            say("LEAK", path)
say("pids", len(os.listdir("/proc/1/task")) and sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
say("unreadable", " ".join(unreadable))
say("read_own_environ", "yes" if f"/proc/{os.getpid()}/environ" in seen else "no")
helper.kill()
"#,
        &[],
    );
    let output = hermetic()
        .env(SECRET_VAR, &secret)
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", PYTHON, "probe.py"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    expect(
        &output,
        &[
            (
                "unreadable",
                "/proc/1/environ=EACCES /proc/1/task/1/environ=EACCES",
            ),
            ("read_own_environ", "yes"),
        ],
    );
    assert!(outcome(&output, "LEAK").is_none(), "{}", stdout(&output));
    assert_absent(&output, &secret);
}

/// The processes that build the sandbox (the helper, forked from the CLI, and init) keep
/// nothing of the caller's environment, not even in memory only root could read: seen
/// from the host, as root, while the build runs.
#[test]
fn i2_the_helper_and_init_carry_no_host_environment_in_memory() {
    require_root("it reads the memory of the helper and init, which only root may");
    let secret = unique("i2-memory-secret");
    let src = Source::new(&[]);
    let mut cli = hermetic()
        .env(SECRET_VAR, &secret)
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", "sh", "-c", "echo ready; exec sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(cli.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready, "ready\n");
    let sandbox = descendants(cli.id());
    let environments: Vec<(u32, Vec<u8>)> = sandbox
        .iter()
        .map(|&pid| (pid, std::fs::read(format!("/proc/{pid}/environ")).unwrap()))
        .collect();
    cli.kill().unwrap();
    cli.wait().unwrap();
    // The helper, init and the build.
    assert_eq!(sandbox.len(), 3, "processes under the CLI: {sandbox:?}");
    for (pid, environ) in environments {
        assert!(
            !String::from_utf8_lossy(&environ).contains(&secret),
            "process {pid} holds the caller's secret in its environment block"
        );
    }
}

const HOSTNAME_PROBE: &str = r#"
from lib import *
import subprocess
say("uname_n", os.uname().nodename)
say("gethostname", socket.gethostname())
say("proc_hostname", open("/proc/sys/kernel/hostname").read().strip())
say("proc_domainname", open("/proc/sys/kernel/domainname").read().strip())
say("etc_hostname", open("/etc/hostname").read().strip())
say("hostname_cmd", subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip())
raw("sethostname", "sethostname", b"evil", 4)
raw("setdomainname", "setdomainname", b"evil", 4)
say("resolves_to", socket.gethostbyname(socket.gethostname()))
"#;

#[test]
fn i3_hostname_and_domainname_are_pinned() {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let output = probe(HOSTNAME_PROBE);
    expect(
        &output,
        &[
            ("uname_n", "hermetic"),
            ("gethostname", "hermetic"),
            ("proc_hostname", "hermetic"),
            ("proc_domainname", "(none)"),
            ("etc_hostname", "hermetic"),
            ("hostname_cmd", "hermetic"),
            ("sethostname", "EPERM"),
            ("setdomainname", "EPERM"),
            ("resolves_to", "127.0.0.1"),
        ],
    );
    if host_name != "hermetic" {
        for line in stdout(&output).lines() {
            assert!(
                !line.ends_with(&format!(": {host_name}")),
                "host name leaked: {line}"
            );
        }
    }
}

#[test]
fn i3_hostname_cannot_be_changed_through_proc_sys() {
    require_root("it guards a root caller's build, which runs as nobody");
    let output = probe(
        r#"
from lib import *
attempt("write_hostname", lambda: open("/proc/sys/kernel/hostname", "w").write("renamed"))
attempt("write_domainname", lambda: open("/proc/sys/kernel/domainname", "w").write("renamed"))
say("uname_n", os.uname().nodename)
"#,
    );
    expect(
        &output,
        &[
            ("write_hostname", "EACCES"),
            ("write_domainname", "EACCES"),
            ("uname_n", "hermetic"),
        ],
    );
}

const CPU_PROBE: &str = r#"
from lib import *
import subprocess
say("cpu_count", os.cpu_count())
say("affinity", len(os.sched_getaffinity(0)))
say("nproc", subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
say("getconf", subprocess.run(["getconf", "_NPROCESSORS_ONLN"], capture_output=True, text=True).stdout.strip())
say("online", open("/sys/devices/system/cpu/online").read().strip())
say("sysconf_conf", os.sysconf("SC_NPROCESSORS_CONF"))
"#;

#[test]
fn i4_cpu_count_is_pinned_by_the_profile() {
    require_cgroups();
    expect(
        &probe(CPU_PROBE),
        &[
            ("cpu_count", "2"),
            ("affinity", "2"),
            ("nproc", "2"),
            ("getconf", "2"),
            ("online", "0-1"),
            ("sysconf_conf", "2"),
        ],
    );
    expect(
        &probe_with(&["--profile", "strict"], CPU_PROBE, &[]),
        &[
            ("cpu_count", "1"),
            ("affinity", "1"),
            ("nproc", "1"),
            ("getconf", "1"),
            ("online", "0"),
            ("sysconf_conf", "1"),
        ],
    );
}

const MACHINE_ID_PROBE: &str = r#"
from lib import *
say("boot_id", open("/proc/sys/kernel/random/boot_id").read().strip())
attempt("write_boot_id", lambda: open("/proc/sys/kernel/random/boot_id", "w").write("x"))
for path in ["/etc/machine-id", "/var/lib/dbus/machine-id", "/sys/class/dmi/id/product_uuid",
             "/sys/class/dmi/id/board_serial", "/sys/firmware/dmi", "/etc/hostid"]:
    attempt(path, os.stat, path)
"#;

#[test]
fn i5_boot_id_is_pinned_and_machine_ids_are_absent() {
    let host_boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let first = probe(MACHINE_ID_PROBE);
    let second = probe(MACHINE_ID_PROBE);
    let expected = [
        ("boot_id", "00000000-0000-4000-8000-000000000000"),
        ("write_boot_id", "EROFS"),
        ("/etc/machine-id", "ENOENT"),
        ("/var/lib/dbus/machine-id", "ENOENT"),
        ("/sys/class/dmi/id/product_uuid", "ENOENT"),
        ("/sys/class/dmi/id/board_serial", "ENOENT"),
        ("/sys/firmware/dmi", "ENOENT"),
        ("/etc/hostid", "ENOENT"),
    ];
    expect(&first, &expected);
    expect(&second, &expected);
    assert_absent(&first, host_boot_id.trim());
}

#[test]
fn i6_host_users_and_pids_are_hidden() {
    let host_users: Vec<String> = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(':').next().map(str::to_string))
        .filter(|u| !["root", "build", "nobody"].contains(&u.as_str()))
        .collect();
    let output = probe(
        r#"
from lib import *
import pwd, grp, subprocess
say("users", " ".join(p.pw_name for p in pwd.getpwall()))
say("groups", " ".join(g.gr_name for g in grp.getgrall()))
say("id", subprocess.run(["id"], capture_output=True, text=True).stdout.strip())
say("getent_passwd_lines", len(subprocess.run(["getent", "passwd"], capture_output=True, text=True).stdout.splitlines()))
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
say("pids", " ".join(map(str, pids)))
say("ppid", os.getppid())
say("own_pid", os.getpid())
"#,
    );
    expect(
        &output,
        &[
            ("users", "root build nobody"),
            ("groups", "root build nogroup"),
            ("id", "uid=1000(build) gid=1000(build) groups=1000(build)"),
            ("getent_passwd_lines", "3"),
            ("ppid", "1"),
            ("own_pid", "2"),
        ],
    );
    // Only init, the probe and its short-lived children.
    let pids = outcome(&output, "pids").unwrap();
    assert!(pids.starts_with("1 2"), "{pids}");
    let text = stdout(&output);
    for user in host_users {
        assert!(
            !text
                .split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
                .any(|w| w == user),
            "host user {user} visible:\n{text}"
        );
    }
}

#[test]
fn i7_inherited_descriptors_are_closed() {
    let dir = tempfile::Builder::new()
        .prefix("hermetic-escape-i7")
        .tempdir()
        .unwrap();
    let file = dir.path().join("host-file");
    std::fs::write(&file, "host data\n").unwrap();
    let src = probe_source(
        r#"
from lib import *
say("own_fds", " ".join(sorted(os.listdir("/proc/self/fd"), key=int)))
attempt("fstat_7", os.fstat, 7)
attempt("write_8", os.write, 8, b"pwned")
attempt("read_9", os.read, 9, 1)
# The caller's fds do reach the sandbox's init (std's Command does not close them), but
# init is non-dumpable: the build cannot open them through /proc.
for fd in ("7", "8", "9"):
    attempt("init_fd_" + fd, lambda: os.close(os.open("/proc/1/fd/" + fd, os.O_RDONLY)))
"#,
        &[],
    );
    // The caller (a shell here) leaves fds 7, 8 and 9 open without close-on-exec.
    let output = Command::new("sh")
        .args([
            "-c",
            "exec 7<\"$1\" 8>>\"$1\" 9<\"$1\"; shift; exec \"$@\"",
            "sh",
        ])
        .arg(&file)
        .arg(crate::support::hermetic_binary())
        .env("HERMETIC_NO_DAEMON", "1")
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", PYTHON, "probe.py"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    expect(
        &output,
        &[
            // 3 is the directory listdir had open while reading /proc/self/fd.
            ("own_fds", "0 1 2 3"),
            ("fstat_7", "EBADF"),
            ("write_8", "EBADF"),
            ("read_9", "EBADF"),
        ],
    );
    for fd in ["7", "8", "9"] {
        let got = outcome(&output, &format!("init_fd_{fd}"));
        // EACCES while init inherits them; ENOENT once the helper closes strays itself.
        assert!(
            matches!(got.as_deref(), Some("EACCES") | Some("ENOENT")),
            "init fd {fd}: {got:?}\n{}",
            stdout(&output)
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "host data\n");
}

#[test]
fn i8_host_paths_stay_out_of_mountinfo_and_cgroup() {
    let src = probe_source(
        r#"
from lib import *
say("cgroup_paths", " ".join(sorted({line.strip().split(":", 2)[2] for line in open("/proc/self/cgroup")})))
mountinfo = open("/proc/self/mountinfo").read() + open("/proc/1/mountinfo").read()
for needle in [arg(1), "hermetic-test-src", "oldroot", "newroot", "/root", "/work"]:
    say("mountinfo_has " + (needle if needle != arg(1) else "SRC"), "yes" if needle in mountinfo else "no")
say("init_cmdline_has_src", "yes" if arg(1).encode() in open("/proc/1/cmdline", "rb").read() else "no")
say("cwd", os.getcwd())
"#,
        &[],
    );
    let host_src = src.path().to_str().unwrap().to_string();
    let output = run_in(&src, &[], &[PYTHON, "probe.py", &host_src]);
    expect(
        &output,
        &[
            ("cgroup_paths", "/"),
            ("mountinfo_has SRC", "no"),
            ("mountinfo_has hermetic-test-src", "no"),
            ("mountinfo_has oldroot", "no"),
            ("mountinfo_has newroot", "no"),
            ("mountinfo_has /root", "no"),
            ("mountinfo_has /work", "no"),
            ("init_cmdline_has_src", "no"),
            ("cwd", "/build"),
        ],
    );
}

#[test]
fn i9_uptime_and_boot_time_come_from_the_time_namespace() {
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let output = probe(
        r#"
from lib import *
import time
uptime = float(open("/proc/uptime").read().split()[0])
btime = int([l for l in open("/proc/stat") if l.startswith("btime")][0].split()[1])
say("uptime_below_30s", "yes" if uptime < 30 else uptime)
say("monotonic_below_30s", "yes" if time.clock_gettime(time.CLOCK_MONOTONIC) < 30 else "no")
say("boottime_below_30s", "yes" if time.clock_gettime(time.CLOCK_BOOTTIME) < 30 else "no")
say("btime_is_sandbox_start", "yes" if abs(time.time() - uptime - btime) < 30 else btime)
say("uptime", uptime)
"#,
    );
    expect(
        &output,
        &[
            ("uptime_below_30s", "yes"),
            ("monotonic_below_30s", "yes"),
            ("boottime_below_30s", "yes"),
            ("btime_is_sandbox_start", "yes"),
        ],
    );
    if host_uptime > 60.0 {
        let inside: f64 = outcome(&output, "uptime").unwrap().parse().unwrap();
        assert!(
            inside < host_uptime - 30.0,
            "inside {inside}, host {host_uptime}"
        );
    }
}

#[test]
fn i10_kernel_pointers_and_the_kernel_log_are_hidden() {
    let output = probe(
        r#"
from lib import *
import subprocess
addresses = {line.split()[0] for line in open("/proc/kallsyms")}
say("kallsyms_addresses", " ".join(sorted(addresses)))
attempt("proc_kmsg", lambda: open("/proc/kmsg", "rb").read(1))
raw("syslog_read", "syslog", 3, buf(4096), 4096)
r = subprocess.run(["dmesg"], capture_output=True, text=True)
say("dmesg", f"{r.returncode} {'Operation not permitted' in r.stderr}")
iomem = {line.split(":")[0].strip() for line in open("/proc/iomem")}
say("iomem_addresses", " ".join(sorted(iomem)))
"#,
    );
    expect(
        &output,
        &[
            ("kallsyms_addresses", "0000000000000000"),
            ("proc_kmsg", "EACCES"),
            ("syslog_read", "EPERM"),
            ("dmesg", "1 True"),
            ("iomem_addresses", "00000000-00000000"),
        ],
    );
}

#[test]
fn i10_root_only_kernel_info_is_unreadable() {
    require_root("it guards a root caller's build, which runs as nobody");
    let output = probe(
        r#"
from lib import *
for path in ["/proc/slabinfo", "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup",
             "/proc/pagetypeinfo", "/proc/vmallocinfo", "/proc/timer_list"]:
    attempt(path, lambda p=path: open(p, "rb").read(8))
"#,
    );
    expect(
        &output,
        &[
            ("/proc/slabinfo", "EACCES"),
            ("/proc/kpageflags", "EACCES"),
            ("/proc/kpagecount", "EACCES"),
            ("/proc/kpagecgroup", "EACCES"),
            ("/proc/pagetypeinfo", "EACCES"),
            ("/proc/vmallocinfo", "EACCES"),
        ],
    );
}

#[test]
fn i11_time_zone_locale_umask_and_user_are_pinned_whatever_the_caller_sets() {
    let src = probe_source(
        r#"
from lib import *
import locale, subprocess, time
say("tz", time.strftime("%Z"))
say("locale", locale.setlocale(locale.LC_ALL, ""))
umask = os.umask(0); os.umask(umask)
say("umask", oct(umask))
open("/build/new", "w").close()
st = os.stat("/build/new")
say("new_file", f"{oct(st.st_mode & 0o777)} {st.st_uid}:{st.st_gid}")
say("user", subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip())
say("sort", subprocess.run(["sort"], input="b\nB\na\nA\n", capture_output=True, text=True).stdout.replace("\n", " ").strip())
say("date", subprocess.run(["date", "-d", "@0", "+%H:%M %Z"], capture_output=True, text=True).stdout.strip())
"#,
        &[],
    );
    let output = Command::new("sh")
        .args(["-c", "umask 077; exec \"$@\"", "sh"])
        .arg(crate::support::hermetic_binary())
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", PYTHON, "probe.py"])
        .env("HERMETIC_NO_DAEMON", "1")
        .env("TZ", "Asia/Tokyo")
        .env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .env("USER", "root")
        .env("LOGNAME", "root")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    expect(
        &output,
        &[
            ("tz", "UTC"),
            ("locale", "C.UTF-8"),
            ("umask", "0o22"),
            ("new_file", "0o644 1000:1000"),
            ("user", "build"),
            ("sort", "A B a b"),
            ("date", "00:00 UTC"),
        ],
    );
}

#[test]
fn i12_no_controlling_terminal_even_when_the_caller_has_one() {
    let script = "tty; echo tty=$?; stty size; echo stty=$?; [ -t 0 ] || [ -t 1 ] || [ -t 2 ] || echo no-tty-fds; \
                  ps -o tty= -p $$ 2>/dev/null || awk '{print \"tty_nr=\" $7}' /proc/$$/stat";
    let output = Command::new(PYTHON)
        .args(["-c", crate::process::PTY_RUNNER])
        .arg(crate::support::hermetic_binary())
        .args(["run", "--src"])
        .arg(Source::new(&[]).path())
        .args(["--", "sh", "-c", script])
        .env("HERMETIC_NO_DAEMON", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 0);
    let out = stdout(&output);
    for line in [
        "not a tty",
        "tty=1",
        "stty=1",
        "no-tty-fds",
        "exit: 0",
        "pending-input: 0",
    ] {
        assert!(
            out.lines().any(|l| l.contains(line)),
            "missing `{line}`:\n{out}\n{}",
            stderr(&output)
        );
    }
    assert!(
        out.lines().any(|l| l.trim() == "?" || l == "tty_nr=0"),
        "the build has a terminal:\n{out}"
    );
}
