//! The store's promises: concurrent imports of one image make one copy, `image rm` refuses
//! an image someone holds (the shared lock a build takes), and `image verify` finds a byte
//! changed in a stored tree.
use std::fs::OpenOptions;
use std::process::Stdio;

use nix::fcntl::{Flock, FlockArg};

use crate::fixture::{base_image, names, Compression, Scratch};
use crate::support::{assert_status, hermetic, stderr};

#[test]
fn concurrent_imports_of_one_image_make_one_copy() {
    let scratch = Scratch::new();
    let layout = base_image([Compression::Gzip; 3]).write_layout(&scratch.path("layout"), "v1");
    let children: Vec<_> = (0..4)
        .map(|_| {
            hermetic()
                .args(["image", "import", "--json"])
                .arg(&layout.dir)
                .arg("--state-dir")
                .arg(scratch.state())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let reports: Vec<serde_json::Value> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert_status(&output, 0);
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect();
    let stored = reports
        .iter()
        .filter(|report| report["already_stored"] == false)
        .count();
    assert_eq!(
        stored, 1,
        "exactly one import assembled the image: {reports:#?}"
    );
    for report in &reports {
        assert_eq!(report["digest"], layout.manifest_digest.as_str());
        assert_eq!(
            report["image"]["tree_digest"],
            reports[0]["image"]["tree_digest"]
        );
    }
    assert_eq!(
        scratch.stored(),
        [&layout.manifest_digest["sha256:".len()..]]
    );
    assert_eq!(
        names(&scratch.state().join("images/tmp")),
        Vec::<String>::new()
    );
}

#[test]
fn rm_refuses_an_image_in_use_and_removes_it_once_released() {
    let scratch = Scratch::new();
    let layout = base_image([Compression::Gzip; 3]).write_layout(&scratch.path("layout"), "v1");
    let digest = layout.manifest_digest.as_str();
    scratch.import(&layout.dir);
    let lock_path = scratch
        .state()
        .join("images/locks")
        .join(format!("{}.lock", &digest["sha256:".len()..]));
    let file = OpenOptions::new().read(true).open(&lock_path).unwrap();
    let held = Flock::lock(file, FlockArg::LockShared)
        .map_err(|(_, errno)| errno)
        .unwrap();

    let refused = scratch.image(&["rm", digest]);
    assert_status(&refused, 4);
    assert!(stderr(&refused).contains("in use"), "{}", stderr(&refused));
    assert_eq!(scratch.stored().len(), 1, "the image stays");
    // verify takes the lock shared too, so it runs beside a build.
    assert_status(&scratch.image(&["verify", digest]), 0);

    drop(held);
    let removed = scratch.image(&["rm", "--json", digest]);
    assert_status(&removed, 0);
    assert_eq!(scratch.stored(), Vec::<String>::new());
    assert_eq!(
        names(&scratch.state().join("images/tmp")),
        Vec::<String>::new()
    );
    assert_status(&scratch.image(&["rm", digest]), 2);
    assert_status(&scratch.image(&["verify", digest]), 2);
    assert_status(&scratch.image(&["rm", "not-a-digest"]), 2);
}

#[test]
fn verify_finds_a_flipped_byte_in_a_stored_tree() {
    let scratch = Scratch::new();
    let layout = base_image([Compression::Zstd; 3]).write_layout(&scratch.path("layout"), "v1");
    let imported = scratch.import(&layout.dir);
    assert_status(&scratch.image(&["verify"]), 0);
    let listed = scratch.image(&["ls", "--json"]);
    assert_status(&listed, 0);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed["images"][0]["digest"],
        layout.manifest_digest.as_str()
    );
    assert_eq!(listed["images"][0]["platform"], "linux/amd64");

    let tree = std::path::PathBuf::from(imported["tree"].as_str().unwrap());
    let target = tree.join("etc/keep");
    let mut bytes = std::fs::read(&target).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&target, bytes).unwrap();
    let output = scratch.image(&["verify", "--json"]);
    assert_status(&output, 4);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let difference = &report["images"][0]["difference"];
    assert_eq!(report["images"][0]["verified"], false);
    assert_eq!(difference["path"], "rootfs/etc/keep", "{report}");
    assert_eq!(difference["field"], "content", "{report}");
    let text = scratch.image(&["verify", &layout.manifest_digest]);
    assert_status(&text, 4);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("differs at rootfs/etc/keep (content)"),
        "{text:?}"
    );
}

const NOBODY: u32 = 65534;

/// `hermetic image` as an unprivileged user: the same tree (modes included: 0555, 0700 and
/// 1777 directories, a 0600 file), every file the user's own, and `verify` and `rm` work on
/// directories the image made read-only.
#[test]
fn an_unprivileged_user_stores_the_same_tree_and_can_remove_it() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    crate::support::require_root("it imports as another, unprivileged user");
    let scratch = Scratch::new();
    std::fs::set_permissions(scratch.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let layout = base_image([Compression::Gzip, Compression::None, Compression::Zstd])
        .write_layout(&scratch.path("layout"), "v1");
    let as_root = scratch.import(&layout.dir);
    let state = scratch.path("nobody-state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let binary = scratch.path("hermetic");
    std::fs::copy(env!("CARGO_BIN_EXE_hermetic"), &binary).unwrap();
    let as_nobody = |args: &[&str]| {
        std::process::Command::new(crate::fixture::tool("setpriv"))
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(&binary)
            .arg("image")
            .args(args)
            .arg("--state-dir")
            .arg(&state)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let output = as_nobody(&["import", "--json", layout.dir.to_str().unwrap()]);
    assert_status(&output, 0);
    let imported: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(imported["digest"], as_root["digest"]);
    assert_eq!(
        imported["image"]["tree_digest"],
        as_root["image"]["tree_digest"]
    );
    let tree = std::path::PathBuf::from(imported["tree"].as_str().unwrap());
    assert_eq!(
        crate::fixture::describe_tree(&tree),
        crate::fixture::describe_tree(std::path::Path::new(as_root["tree"].as_str().unwrap()))
    );
    assert_eq!(
        std::fs::metadata(tree.join("var/lib/secret"))
            .unwrap()
            .uid(),
        NOBODY
    );

    assert_status(&as_nobody(&["verify", layout.manifest_digest.as_str()]), 0);
    assert_status(&as_nobody(&["rm", layout.manifest_digest.as_str()]), 0);
    assert_eq!(names(&state.join("images/sha256")), Vec::<String>::new());
    assert_eq!(names(&state.join("images/tmp")), Vec::<String>::new());
}
