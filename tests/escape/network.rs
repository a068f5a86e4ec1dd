//! Network egress (N1-N14). The build has its own network namespace with only `lo` up:
//! real listeners on the host's loopback (TCP, UDP, v4 and v6, pathname and abstract unix
//! sockets) stay unreachable and receive nothing, there is no route anywhere else, no
//! resolver, and seccomp refuses every socket family but unix, inet, inet6 and
//! netlink-route. Host listeners are checked without waiting: a connection or datagram
//! that reached them would already be queued when the sandbox has exited.
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::process::Stdio;

use crate::support::{assert_status, hermetic, run_in, stderr, stdout, Source};
use crate::{expect, probe, probe_source, probe_with, run_probe, unique, PYTHON};

fn assert_tcp_untouched(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let err = listener
        .accept()
        .expect_err("the host listener got a connection from the sandbox");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
}

fn assert_udp_untouched(socket: &UdpSocket) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let err = socket
        .recv_from(&mut buf)
        .expect_err("the host UDP socket received a datagram from the sandbox");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
}

fn assert_unix_untouched(listener: &UnixListener) {
    listener.set_nonblocking(true).unwrap();
    let err = listener
        .accept()
        .expect_err("the host unix listener got a connection from the sandbox");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
}

const TCP_CONNECT: &str = r#"
from lib import *
family = socket.AF_INET6 if ":" in arg(1) else socket.AF_INET
attempt("connect", connect, family, socket.SOCK_STREAM, (arg(1), int(arg(2))))
"#;

#[test]
fn n1_tcp_to_host_loopback_v4_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // Refused, not timed out: the sandbox's own lo answered; the host's port is listening.
    expect(
        &probe_with(&[], TCP_CONNECT, &["127.0.0.1", &port]),
        &[("connect", "ECONNREFUSED")],
    );
    assert_tcp_untouched(&listener);
}

#[test]
fn n1_tcp_to_host_external_address_is_unreachable() {
    // The host's own address on its outgoing interface (connecting a UDP socket sends
    // nothing); TEST-NET-1 when the host has no route at all.
    let host_ip = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "192.0.2.1".into());
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    expect(
        &probe_with(&[], TCP_CONNECT, &[&host_ip, &port]),
        &[("connect", "ENETUNREACH")],
    );
    assert_tcp_untouched(&listener);
}

#[test]
fn n2_tcp_to_host_loopback_v6_is_unreachable() {
    let listener = TcpListener::bind("[::1]:0").expect("the host needs IPv6 on lo for this test");
    let port = listener.local_addr().unwrap().port().to_string();
    expect(
        &probe_with(&[], TCP_CONNECT, &["::1", &port]),
        &[("connect", "ECONNREFUSED")],
    );
    assert_tcp_untouched(&listener);
}

/// Sends to the address, then shows where the datagram went: a connected UDP socket gets
/// the ICMP port-unreachable of the sandbox's own lo back as ECONNREFUSED.
const UDP_SEND: &str = r#"
from lib import *
family = socket.AF_INET6 if ":" in arg(1) else socket.AF_INET
address = (arg(1), int(arg(2)))
attempt("sendto", sendto, family, address)
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(address)
s.send(b"hermetic-escape")
attempt("recv", s.recv, 64)
"#;

#[test]
fn n3_udp_to_host_loopback_v4_delivers_nothing() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    expect(
        &probe_with(&[], UDP_SEND, &["127.0.0.1", &port]),
        &[("sendto", "ok"), ("recv", "ECONNREFUSED")],
    );
    assert_udp_untouched(&socket);
}

#[test]
fn n3_udp_to_host_loopback_v6_delivers_nothing() {
    let socket = UdpSocket::bind("[::1]:0").expect("the host needs IPv6 on lo for this test");
    let port = socket.local_addr().unwrap().port().to_string();
    expect(
        &probe_with(&[], UDP_SEND, &["::1", &port]),
        &[("sendto", "ok"), ("recv", "ECONNREFUSED")],
    );
    assert_udp_untouched(&socket);
}

#[test]
fn n3_udp_exfiltration_has_no_route() {
    let output = probe(
        r#"
from lib import *
attempt("udp4", sendto, socket.AF_INET, ("10.0.0.1", 53))
attempt("udp4_public", sendto, socket.AF_INET, ("8.8.8.8", 53))
attempt("udp6", sendto, socket.AF_INET6, ("2001:4860:4860::8888", 53))
attempt("udp4_broadcast", sendto, socket.AF_INET, ("255.255.255.255", 67))
"#,
    );
    expect(
        &output,
        &[
            ("udp4", "ENETUNREACH"),
            ("udp4_public", "ENETUNREACH"),
            ("udp6", "ENETUNREACH"),
            ("udp4_broadcast", "ENETUNREACH"),
        ],
    );
}

#[test]
fn n4_dns_lookups_fail_and_no_resolver_is_reachable() {
    let output = probe(
        r#"
from lib import *
import subprocess
attempt("getaddrinfo", socket.getaddrinfo, "example.com", 80)
say("resolv.conf", repr(open("/etc/resolv.conf").read()))
say("getent", subprocess.run(["getent", "hosts", "example.com"]).returncode)
for path in ["/run/systemd/resolve/stub-resolv.conf", "/run/systemd/resolve/io.systemd.Resolve",
             "/var/run/nscd/socket", "/run/nscd/socket", "/run/dbus/system_bus_socket"]:
    attempt(path, os.stat, path)
# systemd-resolved's stub address and the glibc default both land on the sandbox's lo.
for server in ["127.0.0.53", "127.0.0.1"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((server, 53))
    s.send(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")
    attempt("dns " + server, s.recv, 512)
"#,
    );
    expect(
        &output,
        &[
            ("getaddrinfo", "gaierror -2"), // EAI_NONAME: nsswitch says "hosts: files"
            ("resolv.conf", "''"),
            ("getent", "2"),
            ("/run/systemd/resolve/stub-resolv.conf", "ENOENT"),
            ("/run/systemd/resolve/io.systemd.Resolve", "ENOENT"),
            ("/var/run/nscd/socket", "ENOENT"),
            ("/run/nscd/socket", "ENOENT"),
            ("/run/dbus/system_bus_socket", "ENOENT"),
            ("dns 127.0.0.53", "ECONNREFUSED"),
            ("dns 127.0.0.1", "ECONNREFUSED"),
        ],
    );
}

#[test]
fn n5_internet_tcp_and_icmp_are_unreachable() {
    let output = probe(
        r#"
from lib import *
attempt("tcp4", connect, socket.AF_INET, socket.SOCK_STREAM, ("1.1.1.1", 80))
attempt("tcp4_https", connect, socket.AF_INET, socket.SOCK_STREAM, ("8.8.8.8", 443))
attempt("tcp6", connect, socket.AF_INET6, socket.SOCK_STREAM, ("2606:4700:4700::1111", 80))
attempt("ping_socket", socket.socket, socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
attempt("ping6_socket", socket.socket, socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
"#,
    );
    expect(
        &output,
        &[
            ("tcp4", "ENETUNREACH"),
            ("tcp4_https", "ENETUNREACH"),
            ("tcp6", "ENETUNREACH"),
            // net.ipv4.ping_group_range is "1 0" in a fresh netns: nobody may open one.
            ("ping_socket", "EACCES"),
            ("ping6_socket", "EACCES"),
        ],
    );
}

#[test]
fn n6_raw_and_packet_sockets_are_denied() {
    let output = probe(
        r#"
from lib import *
attempt("packet_raw", socket.socket, 17, socket.SOCK_RAW, 0)
attempt("packet_dgram", socket.socket, 17, socket.SOCK_DGRAM, 0)
attempt("inet_raw", socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
attempt("inet_raw_tcp", socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
attempt("inet6_raw", socket.socket, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
"#,
    );
    expect(
        &output,
        &[
            ("packet_raw", "EPERM"),   // seccomp: AF_PACKET is not an allowed family
            ("packet_dgram", "EPERM"), // seccomp
            ("inet_raw", "EPERM"),     // no CAP_NET_RAW
            ("inet_raw_tcp", "EPERM"),
            ("inet6_raw", "EPERM"),
        ],
    );
}

#[test]
fn n7_netlink_cannot_reconfigure_the_netns_and_other_protocols_are_denied() {
    let output = probe(
        r#"
from lib import *
import fcntl, struct
s = attempt("route_socket", socket.socket, socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
def netlink(kind, flags, payload):
    s.send(struct.pack("=IHHII", 16 + len(payload), kind, 1 | 4 | flags, 1, 0) + payload)  # REQUEST|ACK
    reply = s.recv(65536)
    length, rtype = struct.unpack("=IH", reply[:6])
    assert rtype == 2, rtype  # NLMSG_ERROR carries the ack
    err = struct.unpack("=i", reply[16:20])[0]
    return "ok" if err == 0 else errname(-err)
# RTM_NEWLINK on lo (index 1): clear IFF_UP.
say("set_lo_down", netlink(16, 0, struct.pack("=BxHiII", 0, 0, 1, 0, 1)))
# RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL: `ip link add hx type dummy`.
name = b"hx\0\0"
kind = b"dummy\0\0\0"
linkinfo = struct.pack("=HH", 4 + 4 + 6, 1) + kind[:6] + b"\0\0"
ifname = struct.pack("=HH", 4 + 3, 3) + name
body = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + ifname + struct.pack("=HH", 4 + len(linkinfo), 18) + linkinfo
say("add_link", netlink(16, 0x400 | 0x200, body))
# RTM_NEWADDR 10.9.9.9/24 on lo.
addr = struct.pack("=BBBBi", 2, 24, 0, 0, 1) + struct.pack("=HH", 8, 2) + socket.inet_aton("10.9.9.9")
say("add_addr", netlink(20, 0x400 | 0x200, addr))
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]  # SIOCGIFFLAGS
say("lo_up", "yes" if flags & 1 else "no")
def set_flags():
    fcntl.ioctl(socket.socket(), 0x8914, struct.pack("16sH", b"lo", 0))  # SIOCSIFFLAGS
attempt("siocsifflags", set_flags)
for proto, label in [(4, "sock_diag"), (15, "kobject_uevent"), (9, "audit"), (12, "netfilter"), (16, "generic"), (6, "xfrm")]:
    attempt(label, socket.socket, socket.AF_NETLINK, socket.SOCK_RAW, proto)
"#,
    );
    expect(
        &output,
        &[
            ("route_socket", "ok"),
            ("set_lo_down", "EPERM"),
            ("add_link", "EPERM"),
            ("add_addr", "EPERM"),
            ("lo_up", "yes"),
            ("siocsifflags", "EPERM"),
            ("sock_diag", "EPERM"),
            ("kobject_uevent", "EPERM"),
            ("audit", "EPERM"),
            ("netfilter", "EPERM"),
            ("generic", "EPERM"),
            ("xfrm", "EPERM"),
        ],
    );
}

const UNIX_CONNECT: &str = r#"
from lib import *
attempt("connect", connect, socket.AF_UNIX, socket.SOCK_STREAM, arg(1).replace("@", "\0", 1))
"#;

#[test]
fn n8_abstract_unix_socket_to_host_is_unreachable() {
    let name = unique("n8");
    let listener =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    expect(
        &probe_with(&[], UNIX_CONNECT, &[&format!("@{name}")]),
        &[("connect", "ECONNREFUSED")],
    );
    assert_unix_untouched(&listener);
}

#[test]
fn n9_pathname_unix_socket_on_the_host_is_not_visible() {
    let dir = tempfile::Builder::new()
        .prefix("hermetic-escape-n9")
        .tempdir()
        .unwrap();
    let path = dir.path().join("host.sock");
    let listener = UnixListener::bind(&path).unwrap();
    expect(
        &probe_with(&[], UNIX_CONNECT, &[path.to_str().unwrap()]),
        &[("connect", "ENOENT")],
    );
    assert_unix_untouched(&listener);
}

/// The sockets a runner's host commonly has: docker's, the system bus, postgres, nix's
/// daemon, root's session bus, X11, systemd's own.
const WELL_KNOWN_HOST_SOCKETS: [&str; 7] = [
    "/run/docker.sock",
    "/run/dbus/system_bus_socket",
    "/run/postgresql/.s.PGSQL.5432",
    "/nix/var/nix/daemon-socket/socket",
    "/run/user/0/bus",
    "/tmp/.X11-unix/X0",
    "/run/systemd/private",
];

/// A listening socket at a well-known host path for the length of a test: the host's own
/// when it has one, else one made here (with the directories it needed), removed after.
struct HostSocket {
    path: &'static str,
    listener: Option<UnixListener>,
    made_dirs: Vec<std::path::PathBuf>,
}

impl HostSocket {
    fn listen(path: &'static str) -> HostSocket {
        if UnixStream::connect(path).is_ok() {
            return HostSocket {
                path,
                listener: None,
                made_dirs: Vec::new(),
            };
        }
        let mut made_dirs = Vec::new();
        let mut missing: Vec<&std::path::Path> = std::path::Path::new(path)
            .ancestors()
            .skip(1)
            .take_while(|dir| !dir.exists())
            .collect();
        missing.reverse();
        for dir in missing {
            std::fs::create_dir(dir).unwrap_or_else(|err| panic!("mkdir {}: {err}", dir.display()));
            made_dirs.push(dir.to_owned());
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap_or_else(|err| panic!("bind {path}: {err}"));
        HostSocket {
            path,
            listener: Some(listener),
            made_dirs,
        }
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(self.path);
        }
        for dir in self.made_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn n9_well_known_host_sockets_are_not_visible() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it puts sockets at the host's well-known paths (/run, /nix)"
    );
    let sockets: Vec<HostSocket> = WELL_KNOWN_HOST_SOCKETS
        .iter()
        .map(|path| HostSocket::listen(path))
        .collect();
    for socket in &sockets {
        assert!(
            UnixStream::connect(socket.path).is_ok(),
            "{} answers on the host, so the sandbox's ENOENT means something",
            socket.path
        );
    }
    // The host's connections above are accepted and dropped, so that only the sandbox's
    // would be left to find.
    for listener in sockets.iter().filter_map(|socket| socket.listener.as_ref()) {
        listener.accept().unwrap();
    }
    let output = probe(
        r#"
from lib import *
for path in ["/run/docker.sock", "/var/run/docker.sock", "/run/dbus/system_bus_socket",
             "/run/postgresql/.s.PGSQL.5432", "/nix/var/nix/daemon-socket/socket",
             "/run/user/0/bus", "/tmp/.X11-unix/X0", "/run/systemd/private"]:
    attempt(path, connect, socket.AF_UNIX, socket.SOCK_STREAM, path)
say("run", sorted(os.listdir("/run")))
say("proc_net_unix", len(open("/proc/net/unix").read().splitlines()))
"#,
    );
    expect(
        &output,
        &[
            ("/run/docker.sock", "ENOENT"),
            ("/var/run/docker.sock", "ENOENT"),
            ("/run/dbus/system_bus_socket", "ENOENT"),
            ("/run/postgresql/.s.PGSQL.5432", "ENOENT"),
            ("/nix/var/nix/daemon-socket/socket", "ENOENT"),
            ("/run/user/0/bus", "ENOENT"),
            ("/tmp/.X11-unix/X0", "ENOENT"),
            ("/run/systemd/private", "ENOENT"),
            ("run", "[]"),
            // Only the header: no unix socket exists in the build's network namespace.
            ("proc_net_unix", "1"),
        ],
    );
    for listener in sockets.iter().filter_map(|socket| socket.listener.as_ref()) {
        assert_unix_untouched(listener);
    }
}

#[test]
fn n9_symlink_in_the_source_to_a_host_socket_leads_nowhere() {
    let dir = tempfile::Builder::new()
        .prefix("hermetic-escape-n9-link")
        .tempdir()
        .unwrap();
    let path = dir.path().join("host.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let src = probe_source(UNIX_CONNECT, &[]);
    std::os::unix::fs::symlink(&path, src.join("agent.sock")).unwrap();
    expect(
        &run_probe(&src, &[], &["/build/agent.sock"]),
        &[("connect", "ENOENT")],
    );
    assert_unix_untouched(&listener);
}

#[test]
fn n9_socket_inside_the_source_is_left_out_not_copied() {
    let src = Source::new(&[]);
    let listener = UnixListener::bind(src.join("ssh-agent.sock")).unwrap();
    let output = run_in(
        &src,
        &[],
        &["sh", "-c", "ls -a /build; test ! -e /build/ssh-agent.sock"],
    );
    assert_status(&output, 0);
    assert!(
        !stdout(&output).contains("ssh-agent"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("left out of the build dir")
            && stderr(&output).contains("ssh-agent.sock"),
        "{}",
        stderr(&output)
    );
    assert_unix_untouched(&listener);
}

#[test]
fn n10_vsock_to_the_hypervisor_is_denied() {
    let output = probe(
        r#"
from lib import *
attempt("vsock_stream", socket.socket, 40, socket.SOCK_STREAM, 0)
attempt("vsock_dgram", socket.socket, 40, socket.SOCK_DGRAM, 0)
# The family compare is 32-bit: high bits in the register do not smuggle AF_VSOCK past it.
raw("vsock_high_bits", 41, 0x1_0000_0000 | 40, socket.SOCK_STREAM, 0)
"#,
    );
    expect(
        &output,
        &[
            ("vsock_stream", "EPERM"),
            ("vsock_dgram", "EPERM"),
            ("vsock_high_bits", "EPERM"),
        ],
    );
}

#[test]
fn n11_rare_socket_families_are_denied() {
    let families = [
        ("AF_IPX", 4),
        ("AF_APPLETALK", 5),
        ("AF_X25", 9),
        ("AF_KEY", 15),
        ("AF_RDS", 21),
        ("AF_PPPOX", 24),
        ("AF_CAN", 29),
        ("AF_TIPC", 30),
        ("AF_BLUETOOTH", 31),
        ("AF_ALG", 38),
        ("AF_NFC", 39),
        ("AF_SMC", 43),
        ("AF_XDP", 44),
        ("AF_MCTP", 45),
    ];
    let script = format!(
        "from lib import *\nfor name, family in {:?}:\n    raw(name, 41, family, socket.SOCK_SEQPACKET, 0)\n    raw(name + '_dgram', 41, family, socket.SOCK_DGRAM, 0)\n",
        families
    );
    let output = probe(&script);
    let labels: Vec<(String, &str)> = families
        .iter()
        .flat_map(|(name, _)| {
            [
                (name.to_string(), "EPERM"),
                (format!("{name}_dgram"), "EPERM"),
            ]
        })
        .collect();
    let expected: Vec<(&str, &str)> = labels.iter().map(|(l, o)| (l.as_str(), *o)).collect();
    expect(&output, &expected);
}

#[test]
fn n12_the_sandbox_control_channels_are_not_reachable() {
    // init (pid 1) holds the report pipe to the launcher; it is non-dumpable (and runs as
    // another host uid than the build sees as its own), so its descriptors can be neither
    // listed nor opened, whatever their numbers.
    let output = probe(
        r#"
from lib import *
attempt("init_fds", lambda: os.listdir("/proc/1/fd"))
results = set()
for n in [str(fd) for fd in range(0, 16)]:
    for fn in (lambda: os.readlink("/proc/1/fd/" + n),
               lambda: os.close(os.open("/proc/1/fd/" + n, os.O_RDONLY)),
               lambda: os.close(os.open("/proc/1/fd/" + n, os.O_WRONLY)),
               lambda: open("/proc/1/fdinfo/" + n).read()):
        try:
            fn()
            results.add("ok")
        except OSError as ex:
            results.add(errname(ex.errno))
say("init_fd_access", ",".join(sorted(results)))
pidfd = raw("pidfd_open", "pidfd_open", 1, 0)
raw("pidfd_getfd", "pidfd_getfd", pidfd, 0, 0)
"#,
    );
    expect(
        &output,
        &[
            ("init_fds", "EACCES"),
            ("init_fd_access", "EACCES"),
            ("pidfd_open", "ok"),
            ("pidfd_getfd", "EPERM"),
        ],
    );
}

#[test]
fn n13_two_builds_cannot_reach_each_other_over_abstract_sockets() {
    let name = unique("n13");
    // Build A listens on an abstract name and reports readiness on stdout.
    let listen_src = probe_source(
        r#"
from lib import *
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + arg(1))
s.listen(4)
print("ready", flush=True)
s.settimeout(60)
try:
    s.accept()
    print("accepted", flush=True)
except OSError as ex:
    print("accept:", ex, flush=True)
"#,
        &[],
    );
    let mut a = hermetic()
        .args(["run", "--src"])
        .arg(listen_src.path())
        .args(["--", PYTHON, "probe.py", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut a_out = BufReader::new(a.stdout.take().unwrap());
    let mut first = String::new();
    a_out.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n", "build A did not start listening");

    // Build B (and the host) try the same name while A is listening.
    let b = probe_with(&[], UNIX_CONNECT, &[&format!("@{name}")]);
    let host = UnixStream::connect_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap());

    // Killing A's launcher takes its whole sandbox down (PDEATHSIG chain); its stdout
    // reaches EOF only once every process holding it is gone.
    a.kill().unwrap();
    a.wait().unwrap();
    let mut rest = String::new();
    a_out.read_to_string(&mut rest).unwrap();

    expect(&b, &[("connect", "ECONNREFUSED")]);
    assert_eq!(
        host.expect_err("the host reached build A's abstract socket")
            .kind(),
        ErrorKind::ConnectionRefused
    );
    assert!(
        !rest.contains("accepted"),
        "build A accepted a connection: {rest}"
    );
}

#[test]
fn n14_builds_share_no_writable_place() {
    let marker = unique("n14");
    let write = crate::support::sh(&format!(
        "for d in /build /tmp /home/build /dev/shm; do echo {marker} > $d/{marker} || exit 1; done; \
         mkfifo /tmp/{marker}.fifo && echo written"
    ));
    assert_status(&write, 0);
    assert_eq!(stdout(&write), "written\n");
    let read = crate::support::sh(&format!(
        "for d in /build /tmp /home/build /dev/shm; do ls -A $d; done; ls /tmp/{marker}.fifo 2>&1; true"
    ));
    assert_status(&read, 0);
    assert_eq!(
        stdout(&read),
        format!("ls: cannot access '/tmp/{marker}.fifo': No such file or directory\n")
    );
}
