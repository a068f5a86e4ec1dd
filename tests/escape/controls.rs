//! Attacks the kernel's defaults would stop anyway, each shown stopped by the control the
//! catalog names, alone: a seccomp policy that answers with a marker errno no kernel path
//! returns, a profile with one layer lowered, or the same call on the host in a plain
//! user namespace, where the kernel lets it through.
use std::process::Command;

use crate::{expect, probe_with, CustomProfile};

/// EHWPOISON: returned by no call these probes make, so an answer of it can only be the
/// policy's (Python has no name for it: the probe prints the number).
const MARKER_ERRNO: &str = "133";

/// The default policy with its denylist answering the marker errno instead of EPERM.
fn marker_policy(dir: &std::path::Path) -> String {
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../seccomp/default.json");
    let text = std::fs::read_to_string(policy).unwrap();
    let denylist = text
        .find("\"denylist\"")
        .expect("the policy has a denylist");
    let (head, tail) = text.split_at(denylist);
    let marked = tail.replacen(
        "\"match_action\": {\"errno\": 1}",
        &format!("\"match_action\": {{\"errno\": {MARKER_ERRNO}}}"),
        1,
    );
    assert_ne!(
        marked, tail,
        "the denylist's match action was found and marked"
    );
    let path = dir.join("marker.json");
    std::fs::write(&path, format!("{head}{marked}")).unwrap();
    format!("{:?}", path.to_str().unwrap())
}

/// F10 and N6: open_by_handle_at and AF_PACKET are refused by the seccomp policy itself
/// (the kernel would refuse them too, for want of CAP_DAC_READ_SEARCH and CAP_NET_RAW in
/// the host's namespace), while raw AF_INET sockets, which the policy allows, are refused
/// by the missing capability.
#[test]
fn f10_n6_seccomp_answers_before_the_kernel_would() {
    let dir = tempfile::tempdir().unwrap();
    let profile = CustomProfile::new("default", &[("policy", &marker_policy(dir.path()))]);
    let output = probe_with(
        &profile.args(),
        r#"
from lib import *
import struct
fd = os.open("/usr", os.O_RDONLY)
handle = buf(8 + 128)
struct.pack_into("=IiQ", handle, 0, 8, 1, 2)
raw("open_by_handle_at", "open_by_handle_at", fd, handle, os.O_RDONLY)
attempt("packet_raw", socket.socket, 17, socket.SOCK_RAW, 0)
attempt("inet_raw", socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
"#,
        &[],
    );
    expect(
        &output,
        &[
            ("open_by_handle_at", MARKER_ERRNO),
            ("packet_raw", MARKER_ERRNO),
            ("inet_raw", "EPERM"),
        ],
    );
}

/// N6: in a user namespace of its own, whose root holds CAP_NET_RAW over its own network
/// namespace, the kernel grants a raw socket: its defaults are no defence here, and the
/// sandbox's refusal comes from the capabilities it drops.
#[test]
fn n6_a_plain_user_namespace_gets_raw_sockets_the_sandbox_refuses() {
    let output = Command::new("unshare")
        .args(["-Urn", "python3", "-c"])
        .arg("import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw: ok')")
        .output()
        .expect("run unshare (util-linux)");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "raw: ok",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// P: the build's signal to init is refused by Landlock's signal scope alone. With the
/// profile's Landlock ABI lowered to 5 (no scopes) and every other layer as it is, the
/// same signal goes through: uid, namespaces and seccomp would all allow it.
#[test]
fn p_signalling_init_is_refused_by_the_landlock_scope_alone() {
    const KILL_INIT: &str = r#"
from lib import *
attempt("kill_init_probe", os.kill, 1, 0)
"#;
    expect(
        &probe_with(&[], KILL_INIT, &[]),
        &[("kill_init_probe", "EPERM")],
    );
    let unscoped = CustomProfile::new("default", &[("abi", "5")]);
    expect(
        &probe_with(&unscoped.args(), KILL_INIT, &[]),
        &[("kill_init_probe", "ok")],
    );
}
