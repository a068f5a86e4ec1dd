//! The sandbox's /etc in an image: its own identity files over the image's, the image's
//! other entries showing through. One read-only overlay does it; where the kernel refuses
//! overlayfs in a user namespace, the entries are bound one by one, and the view is the
//! same. An image is untrusted content: no symlink in it (an `etc -> /`, a link inside
//! its /etc) leads the sandbox to a host path.
use std::process::{Output, Stdio};

use crate::fixture::{
    base_image, busybox, dir, file, symlink, tar, Compression, Image, Layout, Scratch,
};
use crate::support::{assert_status, hermetic, stderr, stdout, Source};

/// How the sandbox lays out the image's /etc.
#[derive(Clone, Copy, Debug)]
enum Layering {
    Overlay,
    /// As on a kernel that refuses overlayfs (the engine's test hook).
    EntryByEntry,
}

const BOTH: [Layering; 2] = [Layering::Overlay, Layering::EntryByEntry];

/// `hermetic run --image` of the image in `layout`, stored in `scratch`, running `script`.
fn run(scratch: &Scratch, layout: &Layout, layering: Layering, script: &str) -> Output {
    let src = Source::new(&[]);
    let mut run = hermetic();
    if let Layering::EntryByEntry = layering {
        run.env("HERMETIC_TEST_NO_OVERLAY", "1");
    }
    run.arg("run")
        .arg("--image")
        .arg(format!("fixture@{}", layout.manifest_digest))
        .arg("--state-dir")
        .arg(scratch.state())
        .arg("--src")
        .arg(src.path())
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A one-layer image of busybox and `extra`, imported into a new scratch state dir.
fn image_with(extra: Vec<Vec<u8>>) -> (Scratch, Layout) {
    let scratch = Scratch::new();
    let mut members = vec![
        dir("bin/", 0o755),
        file("bin/busybox", 0o755, &busybox()),
        symlink("bin/sh", "busybox"),
    ];
    members.extend(extra);
    let layout = Image::new(vec![(tar(&members), Compression::None)])
        .write_layout(&scratch.path("layout"), "v1");
    scratch.import(&layout.dir);
    (scratch, layout)
}

/// Lists /etc (names, types, modes, link targets, sizes) and prints the files that matter.
const SHOW_ETC: &str = "cd /etc && for name in $(ls -A | sort); do \
       stat -c '%n %F %a %s' $name; [ -L $name ] && readlink $name; done; \
     cat keep keep-link hostname passwd; \
     grep -c ' /etc' /proc/self/mountinfo";

#[test]
fn the_images_etc_shows_under_the_sandboxs_files_the_same_either_way() {
    let scratch = Scratch::new();
    let layout = base_image([Compression::Gzip, Compression::Zstd, Compression::None])
        .write_layout(&scratch.path("layout"), "v1");
    scratch.import(&layout.dir);
    let mut views = Vec::new();
    for layering in BOTH {
        let output = run(&scratch, &layout, layering, SHOW_ETC);
        assert_status(&output, 0);
        let view = stdout(&output);
        let (listing, mounts) = view.trim_end().rsplit_once('\n').unwrap();
        // The image's files and the sandbox's identity, whichever way.
        for line in [
            "keep regular file 644 15",
            "keep-link regular file 644 14",
            "opaque directory 755 ",
            "second version\nfirst version\nhermetic\n",
            "build:x:1000:1000:build:/home/build:/bin/sh",
        ] {
            assert!(
                listing.contains(line),
                "{layering:?}: no `{line}` in\n{view}"
            );
        }
        assert!(!listing.contains("gone"), "{layering:?}: {view}");
        let mounts: usize = mounts.parse().unwrap();
        match layering {
            // One mount on /etc and none under it: the image's entries cost nothing more.
            Layering::Overlay => assert_eq!(mounts, 1, "{view}"),
            Layering::EntryByEntry => assert!(mounts > 1, "{view}"),
        }
        views.push(listing.to_owned());
    }
    assert_eq!(views[0], views[1], "the two ways show different /etc");
}

#[test]
fn an_images_own_passwd_and_hosts_are_never_the_sandboxs() {
    let (scratch, layout) = image_with(vec![
        dir("etc/", 0o755),
        file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:image root:/root:/bin/sh\n",
        ),
        file("etc/hosts", 0o644, b"10.0.0.1 registry.internal\n"),
        file("etc/ld.so.preload", 0o644, b"/lib/evil.so\n"),
        file("etc/os-release", 0o644, b"ID=fixture\n"),
    ]);
    for layering in BOTH {
        let output = run(
            &scratch,
            &layout,
            layering,
            "cat /etc/passwd /etc/hosts /etc/os-release; cat /etc/ld.so.preload 2>/dev/null",
        );
        assert_status(&output, 0);
        let seen = stdout(&output);
        assert!(seen.contains("ID=fixture"), "{layering:?}: {seen}");
        assert!(seen.contains("build:x:1000"), "{layering:?}: {seen}");
        for image_line in ["image root", "registry.internal"] {
            assert!(!seen.contains(image_line), "{layering:?}: {seen}");
        }
        // The image's ld.so.preload shows as it is (a plain `hermetic run` preloads
        // nothing of its own); it is the image's, not a host file.
        assert!(seen.contains("/lib/evil.so"), "{layering:?}: {seen}");
    }
}

/// What the sandbox's /etc holds, and whether anything of the host's root shows in it.
const LOOK_AROUND: &str = "ls -A /etc | sort | tr '\\n' ' '; echo; \
     for path in /etc/oldroot/etc/shadow /etc/oldroot /etc/newroot /oldroot; do \
       [ -e $path ] && echo reached $path; done; true";

#[test]
fn an_etc_that_is_a_symlink_out_of_the_tree_shows_no_host_path() {
    for target in ["/", "..", "../../../../..", "/bin/.."] {
        let (scratch, layout) = image_with(vec![symlink("etc", target)]);
        for layering in BOTH {
            let output = run(&scratch, &layout, layering, LOOK_AROUND);
            assert_status(&output, 0);
            let seen = stdout(&output);
            assert!(
                !seen.contains("reached"),
                "etc -> {target}, {layering:?}: the host shows through:\n{seen}{}",
                stderr(&output)
            );
            // The sandbox's own identity files are there all the same, and only they.
            assert_eq!(
                seen.lines().next().unwrap_or_default(),
                "group hostname hosts nsswitch.conf passwd resolv.conf ",
                "etc -> {target}, {layering:?}"
            );
        }
    }
}

#[test]
fn an_etc_that_is_a_symlink_inside_the_tree_is_followed_there() {
    let (scratch, layout) = image_with(vec![
        dir("usr/", 0o755),
        dir("usr/etc/", 0o755),
        file("usr/etc/motd", 0o644, b"from usr/etc\n"),
        symlink("etc", "usr/etc"),
    ]);
    for layering in BOTH {
        let output = run(
            &scratch,
            &layout,
            layering,
            "cat /etc/motd; cat /etc/hostname",
        );
        assert_status(&output, 0);
        assert_eq!(stdout(&output), "from usr/etc\nhermetic\n", "{layering:?}");
    }
}

#[test]
fn a_symlink_inside_the_images_etc_stays_a_symlink_resolved_in_the_sandbox() {
    let (scratch, layout) = image_with(vec![
        dir("etc/", 0o755),
        symlink("etc/host-root", "/"),
        symlink("etc/up", "../../../../.."),
        symlink("etc/shadow", "/oldroot/etc/shadow"),
        file("etc/motd", 0o644, b"from the image\n"),
    ]);
    for layering in BOTH {
        let output = run(
            &scratch,
            &layout,
            layering,
            "cat /etc/motd; ls /etc/host-root /etc/up | sort -u | tr '\\n' ' '; echo; \
             cat /etc/shadow 2>/dev/null && echo read the host shadow; true",
        );
        assert_status(&output, 0);
        let seen = stdout(&output);
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(
            lines[0],
            "from the image",
            "{layering:?}: {}",
            stderr(&output)
        );
        // `/` inside is the image's root with the sandbox's mounts: no host directory.
        assert!(!lines[1].contains("oldroot"), "{layering:?}: {seen}");
        assert!(lines[1].contains("etc"), "{layering:?}: {seen}");
        assert!(
            !seen.contains("read the host shadow"),
            "{layering:?}: {seen}"
        );
    }
}
