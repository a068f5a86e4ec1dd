"""Helpers shared by the escape probes: raw syscalls through ctypes and one result line
per attempt, `LABEL: ok` or `LABEL: ERRNO_NAME`, which the Rust side matches exactly."""
import ctypes
import errno
import os
import socket
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# x86_64 syscall numbers used by the probes.
NR = {
    "ptrace": 101,
    "personality": 135,
    "pivot_root": 155,
    "adjtimex": 159,
    "chroot": 161,
    "settimeofday": 164,
    "acct": 163,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "syslog": 103,
    "vhangup": 153,
    "modify_ldt": 154,
    "uselib": 134,
    "clone": 56,
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "clock_settime": 227,
    "clock_adjtime": 305,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "pkey_mprotect": 329,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_open": 434,
    "clone3": 435,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "getpid": 39,
}


def _arg(value):
    if isinstance(value, int):
        return ctypes.c_long(value)
    return value


def syscall(nr, *args):
    """(return value, errno) of a raw syscall."""
    if isinstance(nr, str):
        nr = NR[nr]
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(nr), *[_arg(a) for a in args])
    return ret, ctypes.get_errno()


def errname(code):
    return errno.errorcode.get(code, str(code))


def say(label, outcome):
    print(f"{label}: {outcome}", flush=True)


def raw(label, nr, *args):
    """Reports a raw syscall: `ok` when it returned >= 0, else the errno name."""
    ret, err = syscall(nr, *args)
    say(label, "ok" if ret >= 0 else errname(err))
    return ret


def attempt(label, fn, *args):
    """Reports a Python-level attempt: `ok`, the OSError's errno name, or the exception."""
    try:
        result = fn(*args)
    except socket.gaierror as ex:
        say(label, f"gaierror {ex.args[0]}")
    except OSError as ex:
        say(label, errname(ex.errno) if ex.errno is not None else type(ex).__name__)
    except Exception as ex:  # noqa: BLE001 - the probe reports whatever stopped it
        say(label, type(ex).__name__)
    else:
        say(label, "ok")
        return result
    return None


def connect(family, kind, address, timeout=2.0):
    s = socket.socket(family, kind)
    try:
        s.settimeout(timeout)
        s.connect(address)
    finally:
        s.close()


def sendto(family, address, data=b"hermetic-escape"):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.sendto(data, address)
    finally:
        s.close()


def buf(size):
    return ctypes.create_string_buffer(size)


def arg(index):
    return sys.argv[index]
