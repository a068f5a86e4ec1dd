//! Runs and builds inside a stored image (`--image REF@sha256:...`): the image's tree is
//! the build's `/` (a marker placed in the host's /usr is absent), a bare tag is refused
//! with the digest to pin, an image not stored is a usage error naming `image pull`,
//! `image rm` refuses an image a running build holds, and the cache key is the image's
//! identity (equal across state directories, unlike the host profile's).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::fixture::{base_image, Compression, Layout, Scratch};
use crate::support::{assert_status, default_profile_text, hermetic, stderr, stdout, Source};

/// The fixture image (busybox, static: no glibc) imported into `scratch`'s state dir.
fn fixture(scratch: &Scratch) -> Layout {
    let layout = base_image([Compression::Gzip, Compression::Zstd, Compression::None])
        .write_layout(&scratch.path("layout"), "v1");
    scratch.import(&layout.dir);
    layout
}

fn pinned(layout: &Layout) -> String {
    format!("fixture@{}", layout.manifest_digest)
}

/// `hermetic run --image IMAGE --state-dir STATE --src SRC -- CMD...`.
fn run_in_image(state: &Path, image: &str, src: &Source, command: &[&str]) -> Command {
    let mut run = hermetic();
    run.arg("run")
        .arg("--image")
        .arg(image)
        .arg("--state-dir")
        .arg(state)
        .arg("--src")
        .arg(src.path())
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    run
}

/// `hermetic build --json --image IMAGE --state-dir STATE ... -- sh -c SCRIPT`: the report.
fn build_in_image(
    scratch: &Scratch,
    image: Option<&str>,
    src: &Source,
    extra: &[&str],
    script: &str,
) -> (Output, serde_json::Value) {
    let mut build = hermetic();
    build.arg("build").arg("--json");
    if let Some(image) = image {
        build.arg("--image").arg(image);
    }
    let output = build
        .arg("--state-dir")
        .arg(scratch.state())
        .arg("--src")
        .arg(src.path())
        .arg("--artifact")
        .arg(scratch.path("out.tar.zst"))
        .args(extra)
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("no report: {}", stderr(&output)));
    (output, report)
}

/// A file placed in the host's /usr for one test (the test needs root, which CI has).
struct HostMarker(PathBuf);

impl HostMarker {
    fn place() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test places a marker in the host's /usr: run it as root"
        );
        let path = PathBuf::from(format!("/usr/hermetic-image-marker-{}", std::process::id()));
        std::fs::write(&path, b"host\n").unwrap();
        Self(path)
    }
}

impl Drop for HostMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn run_in_an_image_sees_its_tree_and_not_the_hosts_usr() {
    let scratch = Scratch::new();
    let layout = fixture(&scratch);
    let marker = HostMarker::place();
    let src = Source::new(&[("input", "from the source\n")]);
    let script = format!(
        "cat /etc/keep; cat /build/input; \
         if [ -e {0} ]; then echo marker present; else echo marker absent; fi; \
         if [ -e /etc/gone ]; then echo whiteout ignored; fi; \
         if [ -e /bin/busybox ] && [ ! -e /usr/bin/gcc ]; then echo busybox only; fi; \
         touch /usr/bin/written 2>/dev/null && echo root writable; echo $PATH",
        marker.0.display()
    );
    let output = run_in_image(
        &scratch.state(),
        &pinned(&layout),
        &src,
        &["sh", "-c", &script],
    )
    .output()
    .unwrap();
    assert_status(&output, 0);
    assert!(marker.0.exists(), "the marker is still on the host");
    let lines: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    assert_eq!(
        lines[..4],
        [
            "second version",
            "from the source",
            "marker absent",
            "busybox only"
        ],
        "{}",
        stderr(&output)
    );
    assert!(
        !lines
            .iter()
            .any(|line| line == "root writable" || line == "whiteout ignored"),
        "{lines:?}"
    );
    let tree = scratch
        .state()
        .join("images/sha256")
        .join(&layout.manifest_digest["sha256:".len()..])
        .join("rootfs");
    assert!(!tree.join("usr/bin/written").exists());
}

#[test]
fn a_bare_tag_is_refused_with_the_digest_to_pin() {
    let scratch = Scratch::new();
    let layout = fixture(&scratch);
    let src = Source::new(&[]);
    let named = layout.dir.display().to_string();
    let output = run_in_image(&scratch.state(), &named, &src, &["true"])
        .output()
        .unwrap();
    assert_status(&output, 2);
    let expected = format!("{named}@{}", layout.manifest_digest);
    assert!(
        stderr(&output).contains("not pinned") && stderr(&output).contains(&expected),
        "{}",
        stderr(&output)
    );
    // The same for a build.
    let output = hermetic()
        .args(["build", "--image", &named, "--state-dir"])
        .arg(scratch.state())
        .arg("--src")
        .arg(src.path())
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    // And for a profile that names the tag.
    let profile = scratch.path("tagged.toml");
    std::fs::write(
        &profile,
        default_profile_text().replacen(
            "mode = \"host\"",
            &format!("mode = \"image\"\nimage = \"{named}\""),
            1,
        ),
    )
    .unwrap();
    let output = hermetic()
        .arg("run")
        .arg("--profile")
        .arg(&profile)
        .arg("--state-dir")
        .arg(scratch.state())
        .arg("--src")
        .arg(src.path())
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("not pinned") && stderr(&output).contains(&expected),
        "{}",
        stderr(&output)
    );
}

/// The image's config applies under the pins: its `Env` joins the environment (its PATH
/// replaces the profile's), except what the sandbox pins; `hermetic run` starts in its
/// `WorkingDir`, a build in the build dir.
#[test]
fn the_images_env_and_working_dir_apply_under_the_pins() {
    use crate::fixture::{busybox, dir, file, symlink, tar, Image};
    let scratch = Scratch::new();
    let mut image = Image::new(vec![(
        tar(&[
            dir("bin/", 0o755),
            file("bin/busybox", 0o755, &busybox()),
            symlink("bin/sh", "busybox"),
            dir("opt/", 0o755),
            dir("opt/work/", 0o755),
        ]),
        Compression::None,
    )]);
    image.run_config = r#"{"Env":["PATH=/opt/bin:/bin","TZ=Mars/Olympus","HOME=/root","IMAGE_VAR=from the image"],"WorkingDir":"/opt/work"}"#.to_owned();
    let layout = image.write_layout(&scratch.path("layout"), "v1");
    scratch.import(&layout.dir);
    let src = Source::new(&[]);
    let script = "echo $PATH; echo $TZ; echo $HOME; echo $IMAGE_VAR; pwd";
    let output = run_in_image(
        &scratch.state(),
        &pinned(&layout),
        &src,
        &["sh", "-c", script],
    )
    .output()
    .unwrap();
    assert_status(&output, 0);
    assert_eq!(
        stdout(&output),
        "/opt/bin:/bin\nUTC\n/home/build\nfrom the image\n/opt/work\n",
        "{}",
        stderr(&output)
    );
    let extracted = scratch.path("extracted");
    let (output, _) = build_in_image(
        &scratch,
        Some(&pinned(&layout)),
        &src,
        &["--single", "--extract", extracted.to_str().unwrap()],
        "mkdir out; { echo $IMAGE_VAR; pwd; } > out/seen",
    );
    assert_status(&output, 0);
    assert_eq!(
        std::fs::read_to_string(extracted.join("out/seen")).unwrap(),
        "from the image\n/build\n"
    );
}

#[test]
fn an_image_not_stored_is_a_usage_error_that_says_how_to_get_it() {
    let scratch = Scratch::new();
    let src = Source::new(&[]);
    let absent = format!("tools@sha256:{}", "0".repeat(64));
    let output = run_in_image(&scratch.state(), &absent, &src, &["true"])
        .output()
        .unwrap();
    assert_status(&output, 2);
    let message = stderr(&output);
    assert!(
        message.contains("is not in the image store") && message.contains("hermetic image pull"),
        "{message}"
    );
    let output = hermetic()
        .args(["build", "--image", &absent, "--state-dir"])
        .arg(scratch.state())
        .arg("--src")
        .arg(src.path())
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("hermetic image pull"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn image_rm_refuses_an_image_a_running_build_holds() {
    let scratch = Scratch::new();
    let layout = fixture(&scratch);
    let src = Source::new(&[]);
    // The command says it started (the image is held from before the sandbox is built
    // until after it is gone), then runs a while; the test waits for its end.
    let mut running = run_in_image(
        &scratch.state(),
        &pinned(&layout),
        &src,
        &["sh", "-c", "echo started; sleep 3; echo done"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(running.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "started");

    let refused = scratch.image(&["rm", &layout.manifest_digest]);
    assert_status(&refused, 4);
    assert!(stderr(&refused).contains("in use"), "{}", stderr(&refused));
    assert_eq!(scratch.stored().len(), 1, "the image is still stored");

    assert_eq!(lines.next().unwrap().unwrap(), "done");
    assert!(running.wait().unwrap().success());
    let removed = scratch.image(&["rm", &layout.manifest_digest]);
    assert_status(&removed, 0);
    assert_eq!(scratch.stored(), Vec::<String>::new());
}

#[test]
fn a_build_in_an_image_reports_it_and_keys_the_cache_by_its_digest() {
    let first = Scratch::new();
    let second = Scratch::new();
    let layout = fixture(&first);
    assert_eq!(
        fixture(&second).manifest_digest,
        layout.manifest_digest,
        "a second runner stores the same image"
    );
    let src = Source::new(&[("input", "abc\n")]);
    // /etc/keep is the image's; the host has none.
    let script = "mkdir -p out && cat input > out/result && cat /etc/keep >> out/result || true";
    let key_of = |scratch: &Scratch, image: Option<&str>| {
        let cache = scratch.path("cache");
        let (output, report) = build_in_image(
            scratch,
            image,
            &src,
            &["--cache-dir", cache.to_str().unwrap()],
            script,
        );
        assert_status(&output, 0);
        report
    };
    let report = key_of(&first, Some(&pinned(&layout)));
    assert_eq!(report["verdict"], "reproducible", "{report:#}");
    assert_eq!(report["image"]["ref"], pinned(&layout).as_str());
    assert_eq!(report["image"]["digest"], layout.manifest_digest.as_str());
    assert!(
        report["profile"].get("rootfs_blake3").is_none(),
        "{report:#}"
    );
    // busybox is static: the shim cannot load, and the report says so.
    let clock = report["varied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|varied| varied["what"] == "clock")
        .unwrap();
    assert!(
        clock["how"].as_str().unwrap().contains("no glibc"),
        "{clock:#}"
    );
    let key = report["cache"]["key"].as_str().unwrap().to_owned();

    let again = key_of(&second, Some(&pinned(&layout)));
    assert_eq!(
        again["cache"]["key"],
        key.as_str(),
        "another state dir, same key"
    );
    assert_eq!(again["output"]["digest"], report["output"]["digest"]);

    let host = Scratch::new();
    let on_host = key_of(&host, None);
    assert!(on_host.get("image").is_none(), "{on_host:#}");
    assert_ne!(
        on_host["cache"]["key"],
        key.as_str(),
        "the host toolchain is another key"
    );
}

#[test]
fn a_profile_with_an_image_root_runs_in_it_and_the_flag_wins_over_it() {
    let scratch = Scratch::new();
    let layout = fixture(&scratch);
    let profile = scratch.path("image.toml");
    std::fs::write(
        &profile,
        default_profile_text().replacen(
            "mode = \"host\"",
            &format!("mode = \"image\"\nimage = \"{}\"", pinned(&layout)),
            1,
        ),
    )
    .unwrap();
    let src = Source::new(&[]);
    let run = |extra: &[&str]| {
        hermetic()
            .arg("run")
            .arg("--profile")
            .arg(&profile)
            .arg("--state-dir")
            .arg(scratch.state())
            .arg("--src")
            .arg(src.path())
            .args(extra)
            .args(["--", "sh", "-c", "cat /etc/keep"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let output = run(&[]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "second version\n");
    // --image wins: an image that is not stored is refused, whatever the profile names.
    let absent = format!("other@sha256:{}", "1".repeat(64));
    let output = run(&["--image", &absent]);
    assert_status(&output, 2);
    assert!(stderr(&output).contains(&absent), "{}", stderr(&output));
}

#[test]
fn provenance_lists_the_image_as_a_resolved_dependency() {
    use base64::Engine as _;
    let scratch = Scratch::new();
    let layout = fixture(&scratch);
    let keygen = hermetic()
        .current_dir(scratch.tmp.path())
        .env("HERMETIC_PASSWORD", "test password")
        .args(["keygen", "--output-key-prefix", "key"])
        .output()
        .unwrap();
    assert_status(&keygen, 0);
    let src = Source::new(&[("input", "abc\n")]);
    let output = hermetic()
        .current_dir(scratch.tmp.path())
        .env("HERMETIC_PASSWORD", "test password")
        .args(["build", "--image", &pinned(&layout), "--state-dir"])
        .arg(scratch.state())
        .arg("--src")
        .arg(src.path())
        .args(["--provenance", "prov.json", "--sign-key", "key.key"])
        .args([
            "--",
            "sh",
            "-c",
            "mkdir -p out && cat /etc/keep input > out/result",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_status(&output, 0);
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.path("prov.json")).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let image = dependencies
        .iter()
        .find(|dependency| dependency["name"] == "image")
        .unwrap_or_else(|| panic!("no image in {dependencies:#?}"));
    assert_eq!(image["uri"], pinned(&layout).as_str());
    assert_eq!(
        image["digest"]["sha256"],
        &layout.manifest_digest["sha256:".len()..]
    );
    assert!(
        !dependencies
            .iter()
            .any(|dependency| dependency["name"] == "toolchain"),
        "the host toolchain is not a dependency: {dependencies:#?}"
    );
}

/// `run --image` as an unprivileged user, on an image that user imported: the tree (owned
/// by the user) is the build user's inside, read-only, and the run needs nothing more than
/// the host profile does (here without a delegated cgroup: `limits.cgroup = "optional"`).
#[test]
fn an_unprivileged_user_runs_in_an_image_it_imported() {
    use std::os::unix::fs::PermissionsExt;
    const NOBODY: u32 = 65534;
    crate::support::require_root("it imports and runs as another, unprivileged user");
    let scratch = Scratch::new();
    std::fs::set_permissions(scratch.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let layout = base_image([Compression::Gzip; 3]).write_layout(&scratch.path("layout"), "v1");
    let state = scratch.path("nobody-state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let binary = scratch.path("hermetic");
    std::fs::copy(env!("CARGO_BIN_EXE_hermetic"), &binary).unwrap();
    let profile = scratch.path("optional.toml");
    std::fs::write(
        &profile,
        default_profile_text().replace("cgroup = \"required\"", "cgroup = \"optional\""),
    )
    .unwrap();
    let src = Source::new(&[]);
    std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new(crate::fixture::tool("setpriv"))
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(&binary)
            .args(args)
            .env("HERMETIC_NO_DAEMON", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let state = state.to_str().unwrap();
    let import = [
        "image",
        "import",
        "--state-dir",
        state,
        layout.dir.to_str().unwrap(),
    ];
    assert_status(&as_nobody(&import), 0);
    let output = as_nobody(&[
        "run",
        "--state-dir",
        state,
        "--profile",
        profile.to_str().unwrap(),
        "--image",
        &pinned(&layout),
        "--src",
        src.path().to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "id -u; cat /etc/keep; stat -c %u /etc/keep; touch /etc/keep 2>/dev/null || echo read-only",
    ]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "1000\nsecond version\n1000\nread-only\n");
}

/// A sandbox started by root runs as `nobody` on the host, who cannot search a 0700
/// directory: the launcher hands the tree over as a detached mount, so an image stored
/// under one (a root daemon's state dir is created 0700) runs all the same. (Found by its
/// path, the tree is out of nobody's reach: the sandbox's setup fails on it.)
#[test]
fn an_image_under_a_directory_only_root_can_search_runs() {
    use std::os::unix::fs::PermissionsExt;
    crate::support::require_root("it shows what a root caller's build, run as nobody, reaches");
    let scratch = Scratch::new();
    let layout = fixture(&scratch);
    let private = scratch.path("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::rename(scratch.state(), private.join("state")).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let src = Source::new(&[]);
    let output = run_in_image(
        &private.join("state"),
        &pinned(&layout),
        &src,
        &["sh", "-c", "id -u; cat /etc/keep; ls /bin"],
    )
    .output()
    .unwrap();
    assert_status(&output, 0);
    assert_eq!(
        stdout(&output),
        "1000\nsecond version\nbusybox\nls\nsh\n",
        "{}",
        stderr(&output)
    );
}
