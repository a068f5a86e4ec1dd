use crate::support::{assert_status, run_in, sh, stdout, Source};

const REPORT: &str = r#"
echo "env:"; env | sort
echo "id: $(id)"
echo "umask: $(umask)"
echo "hostname: $(hostname) $(cat /proc/sys/kernel/hostname) $(domainname)"
echo "pwd: $(pwd)"
echo "date: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ) tz=$(date +%Z)"
echo "nproc: $(nproc) $(python3 -c 'import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))') $(getconf _NPROCESSORS_ONLN)"
echo "online: $(cat /sys/devices/system/cpu/online)"
echo "home: $HOME $(ls -ld "$HOME" | cut -d' ' -f1,3,4)"
echo "boot_id: $(cat /proc/sys/kernel/random/boot_id)"
echo "passwd: $(getent passwd build)"
echo "python hash: $(python3 -c 'print(hash("hermetic"))')"
echo "locale sort: $(printf 'b\nB\na\nA\n' | sort | tr '\n' ' ')"
"#;

fn report(src: &Source) -> String {
    let output = run_in(
        src,
        &["--source-date-epoch", "1700000000"],
        &["sh", "-c", REPORT],
    );
    assert_status(&output, 0);
    stdout(&output)
}

#[test]
fn a_build_sees_the_pinned_values() {
    let src = Source::new(&[]);
    let seen = report(&src);
    for expected in [
        "SOURCE_DATE_EPOCH=1700000000",
        "TZ=UTC",
        "LC_ALL=C.UTF-8",
        "LANG=C.UTF-8",
        "HOME=/home/build",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "TMPDIR=/tmp",
        "PYTHONHASHSEED=0",
        "USER=build",
        "id: uid=1000(build) gid=1000(build) groups=1000(build)",
        "umask: 0022",
        "hostname: hermetic hermetic (none)",
        "pwd: /build",
        "date: 2023-11-14T22:13:20Z tz=UTC",
        "nproc: 2 2 2 2",
        "online: 0-1",
        "home: /home/build drwxr-xr-x build build",
        "boot_id: 00000000-0000-4000-8000-000000000000",
        "passwd: build:x:1000:1000:build:/home/build:/bin/sh",
        "locale sort: A B a b",
    ] {
        assert!(seen.contains(expected), "missing `{expected}` in:\n{seen}");
    }
    let env_names: Vec<&str> = seen
        .lines()
        .skip_while(|l| *l != "env:")
        .skip(1)
        .take_while(|l| !l.starts_with("id: "))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(
        env_names,
        [
            "HOME",
            "HOSTNAME",
            "LANG",
            "LC_ALL",
            "LOGNAME",
            "PATH",
            "PWD",
            "PYTHONHASHSEED",
            "SHELL",
            "SOURCE_DATE_EPOCH",
            "TMPDIR",
            "TZ",
            "USER"
        ],
        "the environment holds exactly the pinned variables"
    );
}

#[test]
fn two_runs_see_identical_values() {
    let src = Source::new(&[]);
    assert_eq!(report(&src), report(&src));
}

#[test]
fn the_strict_profile_pins_one_cpu() {
    let src = Source::new(&[]);
    let output = run_in(
        &src,
        &["--profile", "strict"],
        &["sh", "-c", "nproc; cat /sys/devices/system/cpu/online"],
    );
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "1\n0\n");
}

#[test]
fn source_date_epoch_defaults_to_git_head_then_1980() {
    let plain = Source::new(&[("f", "x")]);
    let output = run_in(&plain, &[], &["sh", "-c", "echo $SOURCE_DATE_EPOCH"]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "315532800\n");

    let repo = Source::new(&[("f", "x")]);
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-C",
            ])
            .arg(repo.path())
            .args(args)
            .env("GIT_COMMITTER_DATE", "1234567890 +0000")
            .env("GIT_AUTHOR_DATE", "1234567890 +0000")
            .status()
            .expect("git");
        assert!(status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "f"]);
    git(&["commit", "-qm", "init"]);
    let output = run_in(&repo, &[], &["sh", "-c", "echo $SOURCE_DATE_EPOCH"]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "1234567890\n");
}

/// The variation shim belongs to dual builds only: a plain run preloads nothing (a
/// preloaded library upsets tools that must be loaded first, such as ASan's runtime).
#[test]
fn a_plain_run_preloads_nothing() {
    let output = sh("ls -a /etc /run; grep -c hermetic-vary /proc/self/maps || true");
    assert_status(&output, 0);
    let listing = stdout(&output);
    assert!(listing.contains("passwd"), "{listing}");
    assert!(!listing.contains("ld.so.preload"), "{listing}");
    assert!(!listing.contains("hermetic-vary"), "{listing}");
    assert_eq!(listing.lines().last(), Some("0"), "{listing}");
}

/// The writable dirs are tmpfs with huge pages for whole 2 MiB extents where the kernel
/// offers them (large trees are written and freed several times faster), a plain tmpfs
/// where it does not.
#[test]
fn writable_dirs_use_huge_pages_where_the_kernel_has_them() {
    let kernel_has_huge_tmpfs =
        std::path::Path::new("/sys/kernel/mm/transparent_hugepage/shmem_enabled").exists();
    let output = sh("grep -E ' /(build|tmp|home/build) ' /proc/self/mountinfo");
    assert_status(&output, 0);
    let mounts = stdout(&output);
    assert_eq!(mounts.lines().count(), 3, "{mounts}");
    for mount in mounts.lines() {
        assert!(mount.contains(" - tmpfs "), "{mount}");
        assert_eq!(
            mount.contains("huge=within_size"),
            kernel_has_huge_tmpfs,
            "{mount}"
        );
    }
}

/// Ignored signals and the signal mask survive execve, so the build starts with default
/// dispositions and nothing blocked whatever its caller had: hermetic ignores SIGPIPE, as
/// every Rust program does, and this caller also ignores SIGHUP and SIGINT and blocks
/// SIGUSR1, as nohup, background jobs and some CI agents do.
#[test]
fn the_build_starts_with_default_signals_whatever_the_caller_ignores() {
    let src = Source::new(&[]);
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, signal, sys\n\
             signal.signal(signal.SIGHUP, signal.SIG_IGN)\n\
             signal.signal(signal.SIGINT, signal.SIG_IGN)\n\
             signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n\
             os.execv(sys.argv[1], sys.argv[1:])",
            env!("CARGO_BIN_EXE_hermetic"),
            "run",
            "--src",
        ])
        .arg(src.path())
        .args([
            "--",
            "sh",
            "-c",
            "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1",
        ])
        .env("HERMETIC_NO_DAEMON", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn hermetic");
    assert_status(&output, 0);
    assert_eq!(
        stdout(&output),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\ny\n"
    );
    // `yes` died of SIGPIPE, quietly, as it does outside.
    assert_eq!(crate::support::stderr(&output), "");
}

/// `hermetic run` asks the scheduler for short slices while it sets the sandbox up, and
/// its children inherit them; the build gets the kernel's default back, as any process
/// has (a slice is visible to sched_getattr, and changes how a build is scheduled).
#[test]
fn the_build_runs_with_the_default_scheduler_slice() {
    // sched_getattr(2) on x86_64: struct sched_attr's sched_runtime is the slice of a
    // SCHED_OTHER thread.
    let slice = "import ctypes, struct\n\
                 attr = ctypes.create_string_buffer(48)\n\
                 assert ctypes.CDLL(None).syscall(315, 0, attr, 48, 0) == 0\n\
                 print(struct.unpack('IIQiIQQQ', attr.raw)[5])";
    let host = std::process::Command::new("python3")
        .args(["-c", slice])
        .output()
        .expect("run python3 on the host");
    assert_status(&host, 0);
    let src = Source::new(&[]);
    let build = run_in(&src, &[], &["python3", "-c", slice]);
    assert_status(&build, 0);
    assert_eq!(stdout(&build), stdout(&host));
}
