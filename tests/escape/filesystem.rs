//! Filesystem (F1-F15). The root is a read-only tmpfs, /usr and the few /etc files are
//! read-only binds, only /build, /home/build, /tmp and /dev/shm are writable (size-capped
//! tmpfs, Landlock), the source is a copy, /proc is fresh and init is non-dumpable,
//! /dev holds five devices, /sys is a synthetic read-only stub, and seccomp refuses
//! mount, chroot, open_by_handle_at and setuid/setgid modes. Write attempts also check
//! that the host data is unchanged afterwards.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::{assert_status, hermetic, run_in, stderr, stdout, Source};
use crate::{assert_absent, expect, probe, probe_source, probe_with, run_probe, unique};

fn digest(path: &Path) -> (Vec<u8>, u64, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (std::fs::read(path).unwrap(), meta.nlink(), meta.mode())
}

#[test]
fn f1_writes_outside_the_writable_dirs_are_refused() {
    let marker = unique("f1");
    let passwd_before = digest(Path::new("/etc/passwd"));
    let python_before = digest(Path::new("/usr/bin/python3.11"));
    let output = probe_with(
        &[],
        r#"
from lib import *
m = arg(1)
for path in ["/usr/" + m, "/usr/bin/" + m, "/etc/" + m, "/" + m, "/run/" + m, "/home/" + m,
             "/sys/" + m, "/dev/" + m, "/proc/" + m, "/etc/ld.so.conf.d/" + m]:
    attempt("create " + path.replace(m, "M"), lambda p=path: open(p, "x").close())
for path in ["/etc/passwd", "/etc/hosts", "/etc/ld.so.cache", "/usr/bin/env"]:
    attempt("append " + path, lambda p=path: open(p, "a").close())
attempt("unlink /usr/bin/python3.11", os.unlink, "/usr/bin/python3.11")
attempt("chmod /usr/bin/python3.11", os.chmod, "/usr/bin/python3.11", 0o777)
attempt("mkdir /usr/lib/M", os.mkdir, "/usr/lib/" + m)
attempt("truncate /etc/ld.so.cache", os.truncate, "/etc/ld.so.cache", 0)
for path in ["/build/" + m, "/tmp/" + m, "/home/build/" + m, "/dev/shm/" + m]:
    attempt("create " + path.replace(m, "M"), lambda p=path: open(p, "x").close())
"#,
        &[&marker],
    );
    expect(
        &output,
        &[
            ("create /usr/M", "EROFS"),
            ("create /usr/bin/M", "EROFS"),
            ("create /etc/M", "EROFS"),
            ("create /M", "EROFS"),
            ("create /run/M", "EROFS"),
            ("create /home/M", "EROFS"),
            ("create /sys/M", "EROFS"),
            ("create /dev/M", "EACCES"), // /dev is a tmpfs; Landlock allows only device files
            ("create /proc/M", "ENOENT"),
            ("create /etc/ld.so.conf.d/M", "EROFS"),
            ("append /etc/passwd", "EROFS"),
            ("append /etc/hosts", "EROFS"),
            ("append /etc/ld.so.cache", "EACCES"),
            ("append /usr/bin/env", "EACCES"), // (python3.11 itself would be ETXTBSY: it is running)
            ("unlink /usr/bin/python3.11", "EROFS"),
            ("chmod /usr/bin/python3.11", "EROFS"),
            ("mkdir /usr/lib/M", "EROFS"),
            ("truncate /etc/ld.so.cache", "EACCES"),
            ("create /build/M", "ok"),
            ("create /tmp/M", "ok"),
            ("create /home/build/M", "ok"),
            ("create /dev/shm/M", "ok"),
        ],
    );
    for dir in [
        "/usr", "/usr/bin", "/etc", "/", "/run", "/home", "/tmp", "/dev/shm", "/usr/lib",
    ] {
        assert!(
            !Path::new(dir).join(&marker).exists(),
            "{dir}/{marker} appeared on the host"
        );
    }
    assert_eq!(digest(Path::new("/etc/passwd")), passwd_before);
    assert_eq!(digest(Path::new("/usr/bin/python3.11")), python_before);
}

#[test]
fn f1_the_host_source_tree_is_never_modified() {
    let src = probe_source(
        r#"
from lib import *
import shutil
attempt("append", lambda: open("/build/data.txt", "a").write("tampered"))
attempt("chmod", os.chmod, "/build/data.txt", 0o777)
attempt("rmtree", shutil.rmtree, "/build/sub")
attempt("create", lambda: open("/build/new-file", "w").write("x"))
attempt("symlink", os.symlink, "/etc/hosts", "/build/link")
"#,
        &[("data.txt", "original\n"), ("sub/inner.txt", "inner\n")],
    );
    let listing = |dir: &Path| {
        let mut entries: Vec<String> = walk(dir);
        entries.sort();
        entries
    };
    let before = listing(src.path());
    let data_before = digest(&src.join("data.txt"));
    let output = run_probe(&src, &[], &[]);
    expect(
        &output,
        &[
            ("append", "ok"),
            ("chmod", "ok"),
            ("rmtree", "ok"),
            ("create", "ok"),
            ("symlink", "ok"),
        ],
    );
    assert_eq!(listing(src.path()), before);
    assert_eq!(digest(&src.join("data.txt")), data_before);
    assert_eq!(
        std::fs::read_to_string(src.join("sub/inner.txt")).unwrap(),
        "inner\n"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push(path.display().to_string());
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

#[test]
fn f1_writing_through_a_source_symlink_does_not_reach_the_host() {
    let host_dir = tempfile::Builder::new()
        .prefix("hermetic-escape-f1-victim")
        .tempdir()
        .unwrap();
    let victim = host_dir.path().join("victim.txt");
    std::fs::write(&victim, "host data\n").unwrap();
    let src = probe_source(
        r#"
from lib import *
attempt("write_through_file_link", lambda: open("/build/to-file", "w").write("pwned"))
attempt("create_through_dir_link", lambda: open("/build/to-dir/new.txt", "w").write("pwned"))
"#,
        &[],
    );
    std::os::unix::fs::symlink(&victim, src.join("to-file")).unwrap();
    std::os::unix::fs::symlink(host_dir.path(), src.join("to-dir")).unwrap();
    let output = run_probe(&src, &[], &[]);
    expect(
        &output,
        &[
            ("write_through_file_link", "ENOENT"),
            ("create_through_dir_link", "ENOENT"),
        ],
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host data\n");
    assert_eq!(std::fs::read_dir(host_dir.path()).unwrap().count(), 1);
}

#[test]
fn f2_host_secrets_are_not_visible() {
    let host_dir = tempfile::Builder::new()
        .prefix("hermetic-escape-f2")
        .tempdir()
        .unwrap();
    let secret = host_dir.path().join("credentials");
    std::fs::write(&secret, "aws_secret_access_key=hermetic-escape-f2\n").unwrap();
    let output = probe_with(
        &[],
        r#"
from lib import *
for path in ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/etc/machine-id",
             "/root", "/root/.ssh/id_ed25519", "/home/build/.ssh", "/var", "/var/lib",
             "/etc/ssl/private", "/boot", "/mnt", "/media", "/srv", "/opt", arg(1)]:
    attempt("stat " + (path if path != arg(1) else "host-secret"), os.stat, path)
say("etc", " ".join(sorted(os.listdir("/etc"))))
say("home", " ".join(sorted(os.listdir("/home"))))
say("root", " ".join(sorted(os.listdir("/"))))
"#,
        &[secret.to_str().unwrap()],
    );
    let mut expected: Vec<(&str, &str)> = [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/ssh",
        "/etc/machine-id",
        "/root",
        "/root/.ssh/id_ed25519",
        "/home/build/.ssh",
        "/var",
        "/var/lib",
        "/etc/ssl/private",
        "/boot",
        "/mnt",
        "/media",
        "/srv",
        "/opt",
        "host-secret",
    ]
    .iter()
    .map(|path| (*path, "ENOENT"))
    .collect();
    let labels: Vec<String> = expected.iter().map(|(p, _)| format!("stat {p}")).collect();
    expected = labels.iter().map(|l| (l.as_str(), "ENOENT")).collect();
    expected.push((
        "etc",
        "alternatives group hostname hosts ld.so.cache ld.so.conf ld.so.conf.d nsswitch.conf passwd perl python3.11 resolv.conf",
    ));
    expected.push(("home", "build"));
    expected.push((
        "root",
        "bin build dev etc home lib lib64 proc run sbin sys tmp usr",
    ));
    expect(&output, &expected);
    assert_absent(&output, "hermetic-escape-f2");
}

#[test]
fn f3_host_processes_are_invisible_in_proc() {
    let host_pid = std::process::id().to_string();
    let output = probe_with(
        &[],
        r#"
from lib import *
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
say("max_pid_below_100", "yes" if max(pids) < 100 else pids)
say("pid_1_and_self", "yes" if pids[0] == 1 and os.getpid() in pids else pids)
attempt("host_pid", os.stat, "/proc/" + arg(1))
attempt("init_root", os.readlink, "/proc/1/root")
attempt("init_cwd", os.readlink, "/proc/1/cwd")
attempt("init_exe", os.readlink, "/proc/1/exe")
attempt("init_root_ls", os.listdir, "/proc/1/root/")
attempt("init_maps", lambda: open("/proc/1/maps").read())
attempt("init_mem", lambda: open("/proc/1/mem", "rb").read(1))
say("own_root", "same" if sorted(os.listdir("/proc/self/root/")) == sorted(os.listdir("/")) else "different")
say("comm_1", open("/proc/1/comm").read().strip())
"#,
        &[&host_pid],
    );
    expect(
        &output,
        &[
            ("max_pid_below_100", "yes"),
            ("pid_1_and_self", "yes"),
            ("host_pid", "ENOENT"),
            ("init_root", "EACCES"),
            ("init_cwd", "EACCES"),
            ("init_exe", "EACCES"),
            ("init_root_ls", "EACCES"),
            ("init_maps", "EACCES"),
            ("init_mem", "EACCES"),
            ("own_root", "same"),
            ("comm_1", "hermetic-helper"),
        ],
    );
}

/// init is non-dumpable, so its /proc entries belong to GLOBAL_ROOT_UID. /proc/1/autogroup
/// is the host caller's session autogroup: writing it would renice host processes. (This
/// was a hole while a root caller's build ran as host root; it now runs as nobody.)
/// timerslack_ns is mode 0666 and checked at write time, so it is written, not just opened.
#[test]
fn f3_the_supervisors_proc_entries_are_not_writable() {
    crate::support::require_root("it guards a root caller's build, which runs as nobody");
    let output = probe(
        r#"
from lib import *
for name in ["autogroup", "oom_score_adj", "oom_adj", "clear_refs", "coredump_filter", "sched", "comm",
             "loginuid"]:
    attempt(name, lambda p="/proc/1/" + name: os.close(os.open(p, os.O_WRONLY)))
def write_timerslack():
    fd = os.open("/proc/1/timerslack_ns", os.O_WRONLY)
    try:
        os.write(fd, b"50000")
    finally:
        os.close(fd)
attempt("timerslack_ns", write_timerslack)
"#,
    );
    expect(
        &output,
        &[
            ("autogroup", "EACCES"),
            ("oom_score_adj", "EACCES"),
            ("oom_adj", "EACCES"),
            ("clear_refs", "EACCES"),
            ("coredump_filter", "EACCES"),
            ("sched", "EACCES"),
            ("comm", "EACCES"),
            ("timerslack_ns", "EPERM"),
            ("loginuid", "EACCES"),
        ],
    );
}

#[test]
fn f4_the_supervisors_environ_is_unreadable_and_its_cmdline_clean() {
    let secret = unique("f4-secret");
    let src = probe_source(
        r#"
from lib import *
attempt("init_environ", lambda: open("/proc/1/environ", "rb").read())
say("init_cmdline", open("/proc/1/cmdline", "rb").read().replace(b"\0", b" ").decode().strip())
attempt("init_auxv", lambda: open("/proc/1/auxv", "rb").read())
say("own_environ_has_secret", "yes" if b"HERMETIC_ESCAPE" in open("/proc/self/environ", "rb").read() else "no")
"#,
        &[],
    );
    let output = hermetic()
        .env("HERMETIC_ESCAPE_SECRET", &secret)
        .args(["run", "--src"])
        .arg(src.path())
        .args(["--", crate::PYTHON, "probe.py"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    expect(
        &output,
        &[
            ("init_environ", "EACCES"),
            ("init_cmdline", "hermetic-helper"),
            ("init_auxv", "EACCES"),
            ("own_environ_has_secret", "no"),
        ],
    );
    assert_absent(&output, &secret);
}

#[test]
fn f5_symlinks_in_outputs_are_archived_as_symlinks_never_followed() {
    let host_dir = tempfile::Builder::new()
        .prefix("hermetic-escape-f5")
        .tempdir()
        .unwrap();
    let target = host_dir.path().join("target-dir");
    let extract = host_dir.path().join("extracted");
    let artifact = host_dir.path().join("out.tar.zst");
    let src = Source::new(&[]);
    let script = format!(
        "mkdir out && ln -s /etc/passwd out/passwd && ln -s /etc/shadow out/shadow && \
         ln -s {} out/host-dir && ln -s /proc/self/environ out/environ && echo data > out/file",
        target.display()
    );
    let output = hermetic()
        .args(["build", "--single", "--json", "--src"])
        .arg(src.path())
        .arg("--artifact")
        .arg(&artifact)
        .arg("--extract")
        .arg(&extract)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let files = report["output"]["files"].as_array().unwrap();
    let kind = |path: &str| {
        let entry = files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} not archived"));
        (
            entry["type"].as_str().unwrap().to_string(),
            entry["target"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        kind("out/passwd"),
        ("symlink".into(), Some("/etc/passwd".into()))
    );
    assert_eq!(
        kind("out/shadow"),
        ("symlink".into(), Some("/etc/shadow".into()))
    );
    assert_eq!(
        kind("out/environ"),
        ("symlink".into(), Some("/proc/self/environ".into()))
    );
    assert_eq!(
        kind("out/host-dir"),
        ("symlink".into(), Some(target.display().to_string()))
    );
    assert_eq!(kind("out/file").0, "file");
    // The archive holds link targets, not what they point to.
    let tar = zstd::decode_all(std::fs::File::open(&artifact).unwrap()).unwrap();
    let tar = String::from_utf8_lossy(&tar);
    assert!(
        !tar.contains("root:x:0:0"),
        "the content of /etc/passwd was archived"
    );
    assert!(
        !tar.contains("SOURCE_DATE_EPOCH="),
        "the content of /proc/self/environ was archived"
    );
    for name in ["passwd", "shadow", "environ", "host-dir"] {
        let meta = std::fs::symlink_metadata(extract.join("out").join(name)).unwrap();
        assert!(
            meta.file_type().is_symlink(),
            "extracted out/{name} is not a symlink"
        );
    }
    assert!(
        !target.exists(),
        "extraction created the symlink's host target"
    );
}

#[test]
fn f5_an_output_path_through_a_symlink_is_refused() {
    let host_dir = tempfile::Builder::new()
        .prefix("hermetic-escape-f5b")
        .tempdir()
        .unwrap();
    let artifact = host_dir.path().join("out.tar.zst");
    let extract = host_dir.path().join("extracted");
    let src = Source::new(&[]);
    let output = hermetic()
        .args(["build", "--single", "--json", "--src"])
        .arg(src.path())
        .arg("--artifact")
        .arg(&artifact)
        .arg("--extract")
        .arg(&extract)
        .args([
            "--output",
            "out/etc/passwd",
            "--",
            "sh",
            "-c",
            "mkdir out && ln -s /etc out/etc",
        ])
        .output()
        .unwrap();
    assert_status(&output, 1);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "failed", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap_or("")
            .contains("is a symlink"),
        "{report}"
    );
    assert!(!extract.exists());
    assert!(!String::from_utf8_lossy(&output.stdout).contains("root:x:0:0"));
}

#[test]
fn f6_hardlinks_to_files_outside_the_build_dir_are_refused() {
    let before = digest(Path::new("/usr/bin/python3.11"));
    let output = probe(
        r#"
from lib import *
attempt("etc_passwd", os.link, "/etc/passwd", "/build/passwd")
attempt("usr_binary", os.link, "/usr/bin/python3.11", "/tmp/python")
attempt("ld_so_cache", os.link, "/etc/ld.so.cache", "/home/build/cache")
attempt("proc_file", os.link, "/proc/self/environ", "/build/environ")
attempt("device", os.link, "/dev/null", "/build/null")
attempt("inside_build", os.link, "/build/probe.py", "/build/probe-link.py")
"#,
    );
    expect(
        &output,
        &[
            ("etc_passwd", "EXDEV"),
            ("usr_binary", "EXDEV"),
            ("ld_so_cache", "EXDEV"),
            ("proc_file", "EXDEV"),
            ("device", "EXDEV"),
            ("inside_build", "ok"),
        ],
    );
    assert_eq!(digest(Path::new("/usr/bin/python3.11")), before);
}

#[test]
fn f7_renames_and_dotdot_do_not_leave_the_sandbox_root() {
    let output = probe(
        r#"
from lib import *
os.mkdir("/build/sub")
attempt("rename_build", os.rename, "/build", "/build2")
attempt("rename_home", os.rename, "/home/build", "/home/other")
attempt("rename_usr_bin", os.rename, "/usr/bin", "/usr/bin2")
attempt("rename_etc_into_build", os.rename, "/etc/passwd", "/build/passwd")
attempt("rename_out_of_build", os.rename, "/build/sub", "/tmp/sub")
attempt("dotdot_shadow", os.stat, "/build/../../../../etc/shadow")
os.chdir("/build/sub")
for _ in range(20):
    os.chdir("..")
say("cwd_after_dotdot", os.getcwd())
say("proc_root_dotdot", sorted(os.listdir("/proc/self/root/../..")) == sorted(os.listdir("/")))
attempt("cwd_link_escape", os.stat, "/proc/self/cwd/../../oldroot")
"#,
    );
    expect(
        &output,
        &[
            ("rename_build", "EROFS"),
            ("rename_home", "EROFS"),
            ("rename_usr_bin", "EROFS"),
            ("rename_etc_into_build", "EXDEV"),
            ("rename_out_of_build", "EXDEV"),
            ("dotdot_shadow", "ENOENT"),
            ("cwd_after_dotdot", "/"),
            ("proc_root_dotdot", "True"),
            ("cwd_link_escape", "ENOENT"),
        ],
    );
}

#[test]
fn f8_overmounted_paths_cannot_be_unmasked() {
    let output = probe(
        r#"
from lib import *
target = b"/proc/sys/kernel/random/boot_id"
raw("umount_boot_id", "umount2", target, 2)  # MNT_DETACH
raw("umount_build", "umount2", b"/build", 2)
raw("umount_root", "umount2", b"/", 2)
raw("mount_tmpfs", "mount", b"none", b"/tmp", b"tmpfs", 0, 0)
raw("bind_remount_rw", "mount", b"/usr", b"/usr", 0, 0x1000 | 0x20 | 0x4000, 0)  # BIND|REMOUNT|REC
raw("fsopen", "fsopen", b"tmpfs", 0)
raw("fspick", "fspick", -100, b"/usr", 0)
raw("open_tree", "open_tree", -100, b"/usr", 1)  # OPEN_TREE_CLONE
raw("move_mount", "move_mount", -100, b"/build", -100, b"/tmp", 0)
raw("mount_setattr", "mount_setattr", -100, b"/usr", 0, buf(32), 32)
say("boot_id", open(target).read().strip())
say("mounts_unchanged", open("/proc/self/mountinfo").read().count("\n"))
"#,
    );
    expect(
        &output,
        &[
            ("umount_boot_id", "EPERM"),
            ("umount_build", "EPERM"),
            ("umount_root", "EPERM"),
            ("mount_tmpfs", "EPERM"),
            ("bind_remount_rw", "EPERM"),
            ("fsopen", "EPERM"),
            ("fspick", "EPERM"),
            ("open_tree", "EPERM"),
            ("move_mount", "EPERM"),
            ("mount_setattr", "EPERM"),
            ("boot_id", "00000000-0000-4000-8000-000000000000"),
        ],
    );
}

#[test]
fn f9_chroot_and_pivot_root_are_denied() {
    let output = probe(
        r#"
from lib import *
import subprocess
os.mkdir("/build/jail")
attempt("chroot", os.chroot, "/build/jail")
raw("pivot_root", "pivot_root", b"/build", b"/build/jail")
r = subprocess.run(["/usr/sbin/chroot", "/build/jail", "true"], capture_output=True, text=True)
say("chroot_cmd", f"{r.returncode} {r.stderr.strip()}")
say("root_unchanged", "yes" if os.path.exists("/usr/bin/python3") else "no")
"#,
    );
    expect(
        &output,
        &[
            ("chroot", "EPERM"),
            ("pivot_root", "EPERM"),
            ("chroot_cmd", "125 /usr/sbin/chroot: cannot change root directory to '/build/jail': Operation not permitted"),
            ("root_unchanged", "yes"),
        ],
    );
}

#[test]
fn f10_open_by_handle_at_is_denied() {
    let output = probe(
        r#"
from lib import *
import struct
fd = os.open("/usr", os.O_RDONLY)
handle = buf(8 + 128)
struct.pack_into("=Ii", handle, 0, 128, 0)
mount_id = ctypes.c_int(0)
raw("name_to_handle_at", "name_to_handle_at", fd, b"bin", handle, ctypes.byref(mount_id), 0)
# The classic "shocker" handle: inode 2 (the fs root) of an ext4 file system.
struct.pack_into("=IiQ", handle, 0, 8, 1, 2)
raw("open_by_handle_at", "open_by_handle_at", fd, handle, os.O_RDONLY)
"#,
    );
    // name_to_handle_at is not on the allowlist (ENOSYS); open_by_handle_at is an
    // explicit denial (EPERM).
    expect(
        &output,
        &[
            ("name_to_handle_at", "ENOSYS"),
            ("open_by_handle_at", "EPERM"),
        ],
    );
}

#[test]
fn f11_dev_is_minimal_and_device_nodes_cannot_be_made() {
    let output = probe(
        r#"
from lib import *
say("dev", " ".join(sorted(os.listdir("/dev"))))
for name in ["mem", "kmem", "port", "kmsg", "sda", "vda", "nvme0n1", "fuse", "kvm", "tty", "console",
             "ptmx", "pts", "net", "userfaultfd", "vsock", "vhost-vsock", "loop0", "loop-control", "mapper"]:
    attempt("/dev/" + name, os.stat, "/dev/" + name)
attempt("mknod_mem_build", os.mknod, "/build/mem", 0o600 | 0o020000, os.makedev(1, 1))
attempt("mknod_disk_tmp", os.mknod, "/tmp/vda", 0o600 | 0o060000, os.makedev(254, 0))
attempt("mknod_in_dev", os.mknod, "/dev/mem", 0o600 | 0o020000, os.makedev(1, 1))
attempt("mkfifo_build", os.mkfifo, "/build/fifo")
attempt("replace_dev_null", os.unlink, "/dev/null")
attempt("rewrite_dev_link", os.symlink, "/build/x", "/dev/stdin2")
"#,
    );
    expect(
        &output,
        &[
            (
                "dev",
                "fd full null random shm stderr stdin stdout urandom zero",
            ),
            ("/dev/mem", "ENOENT"),
            ("/dev/kmem", "ENOENT"),
            ("/dev/port", "ENOENT"),
            ("/dev/kmsg", "ENOENT"),
            ("/dev/sda", "ENOENT"),
            ("/dev/vda", "ENOENT"),
            ("/dev/nvme0n1", "ENOENT"),
            ("/dev/fuse", "ENOENT"),
            ("/dev/kvm", "ENOENT"),
            ("/dev/tty", "ENOENT"),
            ("/dev/console", "ENOENT"),
            ("/dev/ptmx", "ENOENT"),
            ("/dev/pts", "ENOENT"),
            ("/dev/net", "ENOENT"),
            ("/dev/userfaultfd", "ENOENT"),
            ("/dev/vsock", "ENOENT"),
            ("/dev/vhost-vsock", "ENOENT"),
            ("/dev/loop0", "ENOENT"),
            ("/dev/loop-control", "ENOENT"),
            ("/dev/mapper", "ENOENT"),
            ("mknod_mem_build", "EPERM"), // no CAP_MKNOD
            ("mknod_disk_tmp", "EPERM"),
            ("mknod_in_dev", "EACCES"), // Landlock: /dev grants no MakeChar
            ("mkfifo_build", "ok"),
            ("replace_dev_null", "EACCES"),
            ("rewrite_dev_link", "EACCES"),
        ],
    );
}

#[test]
fn f12_sys_is_a_read_only_stub() {
    let output = probe(
        r#"
from lib import *
found = []
for root, dirs, files in os.walk("/sys"):
    found.extend(os.path.join(root, f) for f in files)
say("sys_files", " ".join(sorted(found)))
attempt("write_online", lambda: open("/sys/devices/system/cpu/online", "w").write("0-63"))
attempt("mkdir_sys", os.mkdir, "/sys/fs")
for path in ["/sys/fs/cgroup", "/sys/kernel", "/sys/class/net", "/sys/firmware", "/sys/module", "/sys/block"]:
    attempt(path, os.stat, path)
attempt("sysrq_trigger", os.open, "/proc/sysrq-trigger", os.O_WRONLY)
"#,
    );
    expect(
        &output,
        &[
            (
                "sys_files",
                "/sys/devices/system/cpu/online /sys/devices/system/cpu/possible /sys/devices/system/cpu/present",
            ),
            ("write_online", "EROFS"),
            ("mkdir_sys", "EROFS"),
            ("/sys/fs/cgroup", "ENOENT"),
            ("/sys/kernel", "ENOENT"),
            ("/sys/class/net", "ENOENT"),
            ("/sys/firmware", "ENOENT"),
            ("/sys/module", "ENOENT"),
            ("/sys/block", "ENOENT"),
            ("sysrq_trigger", "ENOENT"), // this kernel has no CONFIG_MAGIC_SYSRQ
        ],
    );
}

/// Host-global sysctls a build must never write (opening them for writing is enough to
/// show the permission; the test never writes). kernel.core_pattern alone is a host root
/// escape: a `|/proc/%P/root/build/x` pattern runs a build-written program as host root.
const HOST_SYSCTLS: &[&str] = &[
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/poweroff_cmd",
    "/proc/sys/kernel/panic_on_oops",
    "/proc/sys/kernel/randomize_va_space",
    "/proc/sys/kernel/io_uring_disabled",
    "/proc/sys/fs/protected_hardlinks",
    "/proc/sys/fs/suid_dumpable",
    "/proc/sys/vm/drop_caches",
    "/proc/sys/vm/nr_hugepages",
    "/proc/sys/vm/panic_on_oom",
];

/// A writable core_pattern is a full escape (the kernel runs the named program as host
/// root). It once was: the build's uid was mapped to a root caller's uid, and root-owned
/// sysctl files pass the kernel's owner check. A root caller's build now runs as nobody.
#[test]
fn f12_host_sysctls_are_not_writable() {
    crate::support::require_root("it guards a root caller's build, which runs as nobody");
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let script = format!(
        "from lib import *\nfor path in {HOST_SYSCTLS:?}:\n    attempt(path, lambda p=path: os.close(os.open(p, os.O_WRONLY)))\n"
    );
    let output = probe(&script);
    assert_status(&output, 0);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    let writable: Vec<String> = HOST_SYSCTLS
        .iter()
        .filter_map(|path| {
            let got = crate::outcome(&output, path);
            (!matches!(
                got.as_deref(),
                Some("EACCES") | Some("EROFS") | Some("EPERM") | Some("ENOENT")
            ))
            .then(|| format!("{path}: {got:?}"))
        })
        .collect();
    assert!(
        writable.is_empty(),
        "host sysctls the build can open for writing:\n{}",
        writable.join("\n")
    );
}

#[test]
fn f13_setuid_and_setgid_bits_and_capability_xattrs_are_refused() {
    let output = probe(
        r#"
from lib import *
import shutil
shutil.copy("/usr/bin/true", "/build/tool")
fd = os.open("/build/tool", os.O_RDONLY)
attempt("chmod_u+s", os.chmod, "/build/tool", 0o4755)
attempt("chmod_g+s", os.chmod, "/build/tool", 0o2755)
attempt("fchmod_u+s", os.fchmod, fd, 0o4755)
raw("chmod_syscall", 90, b"/build/tool", 0o6755)
raw("fchmodat2", 452, -100, b"/build/tool", 0o4755, 0)
attempt("create_setuid", os.open, "/build/new-tool", os.O_CREAT | os.O_WRONLY, 0o4755)
raw("mknod_setuid", 133, b"/build/node", 0o100000 | 0o4755, 0)
attempt("setxattr_capability", os.setxattr, "/build/tool", "security.capability",
        b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
attempt("setxattr_trusted", os.setxattr, "/build/tool", "trusted.overlay.opaque", b"y")
attempt("chmod_plain", os.chmod, "/build/tool", 0o755)
say("mode", oct(os.stat("/build/tool").st_mode & 0o7777))
"#,
    );
    expect(
        &output,
        &[
            ("chmod_u+s", "EPERM"),
            ("chmod_g+s", "EPERM"),
            ("fchmod_u+s", "EPERM"),
            ("chmod_syscall", "EPERM"),
            ("fchmodat2", "EPERM"),
            ("create_setuid", "EPERM"),
            ("mknod_setuid", "EPERM"),
            ("setxattr_capability", "EPERM"),
            ("setxattr_trusted", "EPERM"),
            ("chmod_plain", "ok"),
            ("mode", "0o755"),
        ],
    );
}

#[test]
fn f14_fuse_is_unavailable() {
    let output = probe(
        r#"
from lib import *
import subprocess
attempt("dev_fuse", os.open, "/dev/fuse", os.O_RDWR)
raw("fsopen_fuse", "fsopen", b"fuse", 0)
raw("mount_fuse", "mount", b"x", b"/tmp", b"fuse", 0, b"fd=0,rootmode=40000,user_id=1000,group_id=1000")
os.mkdir("/tmp/m")
r = subprocess.run(["fusermount", "-u", "/tmp/m"], capture_output=True, text=True)
say("fusermount", r.returncode)
"#,
    );
    expect(
        &output,
        &[
            ("dev_fuse", "ENOENT"),
            ("fsopen_fuse", "EPERM"),
            ("mount_fuse", "EPERM"),
            ("fusermount", "1"),
        ],
    );
}

#[test]
fn f15_exec_from_memfd_keeps_every_confinement_layer() {
    let output = probe(
        r#"
from lib import *
fd = os.memfd_create("payload", 0)
with open("/usr/bin/cat", "rb") as f:
    os.write(fd, f.read())
pid = os.fork()
if pid == 0:
    try:
        os.execve(fd, ["payload", "/proc/self/status"], {})
    except OSError as ex:
        print("exec:", errname(ex.errno), flush=True)
        os._exit(1)
_, status = os.waitpid(pid, 0)
say("exit", os.waitstatus_to_exitcode(status))
"#,
    );
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(
        text.contains("exit: 0"),
        "the memfd did not run:\n{text}\n{}",
        stderr(&output)
    );
    for line in [
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
    ] {
        assert!(
            text.contains(line),
            "`{line}` missing in the memfd program's status:\n{text}"
        );
    }
    // ... and it is still confined by the same filters: run a denied syscall from it.
    let denied = run_in(
        &probe_source("", &[]),
        &[],
        &[
            crate::PYTHON,
            "-c",
            "import os; fd = os.memfd_create('p', 0); os.write(fd, open('/usr/bin/unshare', 'rb').read()); \
             os.execve(fd, ['unshare', '-U', 'true'], {})",
        ],
    );
    assert_status(&denied, 1);
    assert!(
        stderr(&denied).contains("Operation not permitted"),
        "{}",
        stderr(&denied)
    );
}
