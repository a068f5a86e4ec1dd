//! `--image` through the daemon: the job carries the reference (`RunRequest.image`,
//! `BuildRequest.image`) and the daemon takes the image from its own state directory's
//! store, with the same streams, exit codes and report as in process.
use std::process::Command;

use crate::fixture::Env;
use crate::image_fixture::{base_image, Compression};
use crate::support::{assert_status, stderr, stdout, Source};

/// The fixture image imported into the store of `env`'s state dir; its pinned reference.
fn imported(env: &Env) -> String {
    let layout =
        base_image([Compression::Gzip; 3]).write_layout(&env.dir.path().join("layout"), "v1");
    let output = env.output(env.in_process().args(["image", "import"]).arg(&layout.dir));
    assert_status(&output, 0);
    format!("fixture@{}", layout.manifest_digest)
}

#[test]
fn run_and_build_in_an_image_are_the_same_through_the_daemon() {
    let env = Env::new();
    let image = imported(&env);
    let src = Source::new(&[("input", "abc\n")]);
    let src = src.path().to_str().unwrap();
    let run = [
        "run",
        "--image",
        &image,
        "--src",
        src,
        "--",
        "sh",
        "-c",
        "cat /etc/keep input",
    ];
    let via_daemon = env.output(env.hermetic().args(run));
    let in_process = env.output(env.in_process().args(run));
    assert_status(&via_daemon, 0);
    assert_eq!(stdout(&via_daemon), "second version\nabc\n");
    assert_eq!(
        (stdout(&via_daemon), stderr(&via_daemon)),
        (stdout(&in_process), stderr(&in_process))
    );

    let artifact = env.dir.path().join("out.tar.zst");
    let build = |mut command: Command| -> serde_json::Value {
        std::fs::remove_file(&artifact).ok();
        let output = env.output(command.args([
            "build",
            "--json",
            "--single",
            "--image",
            &image,
            "--src",
            src,
            "--artifact",
            artifact.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "mkdir -p out && cat /etc/keep input > out/result",
        ]));
        assert_status(&output, 0);
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let from_daemon = build(env.hermetic());
    let from_process = build(env.in_process());
    assert_eq!(from_daemon["image"]["ref"], image.as_str());
    assert_eq!(from_daemon["image"], from_process["image"]);
    assert_eq!(
        from_daemon["output"]["digest"],
        from_process["output"]["digest"]
    );
}

#[test]
fn a_bare_tag_or_an_image_not_stored_exits_2_through_the_daemon_too() {
    let env = Env::new();
    let image = imported(&env);
    let tag = image.split('@').next().unwrap().to_owned();
    let absent = format!("tools@sha256:{}", "0".repeat(64));
    for (reference, says) in [(&tag, "not pinned"), (&absent, "hermetic image pull")] {
        for kind in ["run", "build"] {
            let args = [kind, "--image", reference, "--", "true"];
            let via_daemon = env.output(env.hermetic().args(args));
            let in_process = env.output(env.in_process().args(args));
            for output in [&via_daemon, &in_process] {
                assert_status(output, 2);
                assert!(stderr(output).contains(says), "{kind}: {}", stderr(output));
            }
        }
    }
}
