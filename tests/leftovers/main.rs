//! What `hermetic` leaves running once it has exited, seen by a parent that adopts orphans
//! (a child subreaper, as CI runners and init systems are): the child that frees the CLI's
//! memory after its exit, and a helper still tearing the namespaces down. Each must end on
//! its own, promptly. A test binary of its own: a subreaper adopts every orphan of the
//! process, so no other test may run beside it.
#[path = "../support/mod.rs"]
mod support;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use support::{hermetic, wait_for, Source};

#[test]
fn nothing_the_cli_leaves_behind_outlives_it() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let src = Source::new(&[]);
    let commands: [&[&str]; 2] = [&["profile", "list"], &["run", "--src", "SRC", "--", "true"]];
    for args in commands {
        let status = hermetic()
            .args(args.iter().map(|arg| match *arg {
                "SRC" => src.path().as_os_str(),
                other => std::ffi::OsStr::new(other),
            }))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}: {status}");
        // The CLI is reaped; whatever it left is ours now, and must end by itself.
        let mut adopted = 0;
        let all_ended = wait_for(
            || match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => None,
                Ok(_) => {
                    adopted += 1;
                    None
                }
                Err(nix::errno::Errno::ECHILD) => Some(()),
                Err(err) => panic!("waitpid: {err}"),
            },
        );
        assert!(
            all_ended.is_some(),
            "{args:?}: a process it left is still running"
        );
        // The memory holder, at least: the CLI's memory was freed after its exit.
        assert!(adopted >= 1, "{args:?}: adopted {adopted}");
    }
}
