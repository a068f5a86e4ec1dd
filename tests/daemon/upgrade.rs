use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::fixture::{is_alive, Env};
use crate::support::wait_for;
use crate::support::{assert_status, stdout};

/// After the program is upgraded (or rebuilt), the autostarted daemon stops once idle,
/// and the next call starts the new program: jobs are not served by stale code.
#[test]
fn a_replaced_program_gets_a_new_daemon() {
    let env = Env::new();
    let bin = env.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let program = bin.join("hermetic");
    let install = || {
        // As package managers and cargo do: a new file renamed over the old one.
        let new = bin.join("hermetic.new");
        std::fs::copy(env!("CARGO_BIN_EXE_hermetic"), &new).unwrap();
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&new, &program).unwrap();
    };
    let run = || {
        Command::new(&program)
            .env("HERMETIC_CONFIG", &env.config)
            .env_remove("HERMETIC_NO_DAEMON")
            .stdin(Stdio::null())
            .args(["run", "--", "echo", "served"])
            .output()
            .expect("spawn the installed hermetic")
    };
    install();
    let output = run();
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "served\n");
    let old = env.the_daemon();

    install();
    assert!(
        wait_for(|| (!is_alive(old)).then_some(())).is_some(),
        "the daemon of the replaced program kept running"
    );
    let output = run();
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "served\n");
    let new = env.the_daemon();
    assert_ne!(new, old);
}
