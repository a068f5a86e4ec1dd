//! Every refusal of docs/images.md with a crafted layer: the import exits 4 naming the
//! rule, the layer and the member, and the store is as it was (no image, no leftover,
//! nothing written beside it or outside).
use crate::fixture::{
    dir, file, hardlink, member, pax, symlink, tar, Compression, Image, Layout, Scratch,
};
use crate::support::assert_status;

struct Case {
    name: &'static str,
    layers: Vec<Vec<u8>>,
    rule: &'static str,
    member: Option<&'static str>,
    extra: Vec<&'static str>,
}

fn case(
    name: &'static str,
    layers: Vec<Vec<u8>>,
    rule: &'static str,
    member: &'static str,
) -> Case {
    Case {
        name,
        layers,
        rule,
        member: Some(member),
        extra: Vec::new(),
    }
}

/// Imports `layout` expecting a refusal by `rule`; checks the report and the store.
fn assert_refused(
    scratch: &Scratch,
    layout: &Layout,
    rule: &str,
    member: Option<&str>,
    extra: &[&str],
    name: &str,
) -> serde_json::Value {
    let mut args = vec!["import", "--json", layout.dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = scratch.image(&args);
    assert_status(&output, 4);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stored"], false, "{name}");
    assert_eq!(report["rule"], rule, "{name}: {report}");
    if let Some(member) = member {
        assert_eq!(report["member"], member, "{name}: {report}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("rule {rule}")), "{name}: {stderr}");
    scratch.assert_untouched(name);
    report
}

#[test]
fn each_rule_refuses_its_crafted_layer_and_leaves_the_store_untouched() {
    let scratch = Scratch::new();
    let outside = scratch.outside().display().to_string();
    let outside: &'static str = Box::leak(outside.into_boxed_str());
    let escape_file: &'static str = Box::leak(format!("{outside}/evil").into_boxed_str());
    let many: Vec<Vec<u8>> = (0..200)
        .map(|n| file(Box::leak(format!("f{n}").into_boxed_str()), 0o644, b""))
        .collect();
    let cases = vec![
        case(
            "absolute path",
            vec![tar(&[file(escape_file, 0o644, b"x")])],
            "absolute_path",
            escape_file,
        ),
        case(
            "dot dot",
            vec![tar(&[dir("a/", 0o755), file("a/../../evil", 0o644, b"x")])],
            "dot_dot",
            "a/../../evil",
        ),
        case(
            "write through a symlink",
            vec![tar(&[symlink("l", outside), file("l/evil", 0o644, b"x")])],
            "symlink_in_path",
            "l/evil",
        ),
        case(
            "write through a lower layer's symlink",
            vec![
                tar(&[symlink("etc", outside)]),
                tar(&[file("etc/passwd", 0o644, b"x")]),
            ],
            "symlink_in_path",
            "etc/passwd",
        ),
        case(
            "a symlink named . (CVE-2021-29136)",
            vec![tar(&[symlink(".", outside), file("evil", 0o644, b"x")])],
            "root_not_directory",
            ".",
        ),
        case(
            "a whiteout through a symlink",
            vec![
                tar(&[symlink("l", outside)]),
                tar(&[file("l/.wh.x", 0o644, b"")]),
            ],
            "symlink_in_path",
            "l/.wh.x",
        ),
        case(
            "an opaque whiteout through a symlink",
            vec![
                tar(&[symlink("l", outside)]),
                tar(&[file("l/.wh..wh..opq", 0o644, b"")]),
            ],
            "symlink_in_path",
            "l/.wh..wh..opq",
        ),
        case(
            "character device",
            vec![tar(&[member(b'3', "dev-null", 0o666, b"", "")])],
            "device_node",
            "dev-null",
        ),
        case(
            "block device",
            vec![tar(&[member(b'4', "sda", 0o660, b"", "")])],
            "device_node",
            "sda",
        ),
        case(
            "fifo",
            vec![tar(&[member(b'6', "pipe", 0o644, b"", "")])],
            "fifo",
            "pipe",
        ),
        case(
            "setuid file",
            vec![tar(&[file("su", 0o4755, b"x")])],
            "setuid",
            "su",
        ),
        case(
            "setgid file",
            vec![tar(&[file("sg", 0o2755, b"x")])],
            "setuid",
            "sg",
        ),
        case(
            "file capability",
            vec![tar(&[
                pax(&[("SCHILY.xattr.security.capability", b"\x01\0\0\x02")]),
                file("ping", 0o755, b"x"),
            ])],
            "file_capability",
            "ping",
        ),
        case(
            "hard link climbing out",
            vec![tar(&[hardlink("h", "../../etc/passwd")])],
            "hardlink_outside",
            "h",
        ),
        case(
            "hard link to an absolute path",
            vec![tar(&[hardlink("h", "/etc/passwd")])],
            "hardlink_outside",
            "h",
        ),
        case(
            "hard link to nothing",
            vec![tar(&[hardlink("h", "missing")])],
            "hardlink_target_missing",
            "h",
        ),
        case(
            "hard link through a symlink",
            vec![tar(&[symlink("l", "/etc"), hardlink("h", "l/passwd")])],
            "symlink_in_path",
            "h",
        ),
        case(
            "the same path twice",
            vec![tar(&[file("f", 0o644, b"1"), file("f", 0o644, b"2")])],
            "duplicate",
            "f",
        ),
        case(
            "AUFS metadata",
            vec![tar(&[dir(".wh..wh.plnk/", 0o700)])],
            "aufs_metadata",
            ".wh..wh.plnk/",
        ),
        Case {
            name: "size bomb",
            layers: vec![tar(&[file("zeros", 0o644, &vec![0; 8 << 20])])],
            rule: "limit",
            member: Some("zeros"),
            extra: vec!["--max-bytes", "1M"],
        },
        Case {
            name: "count bomb",
            layers: vec![tar(&many)],
            rule: "limit",
            member: Some("f100"),
            extra: vec!["--max-entries", "100"],
        },
    ];
    for (index, case) in cases.iter().enumerate() {
        let compression = [Compression::Gzip, Compression::Zstd, Compression::None][index % 3];
        let image = Image::new(
            case.layers
                .iter()
                .map(|layer| (layer.clone(), compression))
                .collect(),
        );
        let layout = image.write_layout(&scratch.path(&format!("layout-{index}")), "bad");
        let report = assert_refused(
            &scratch,
            &layout,
            case.rule,
            case.member,
            &case.extra,
            case.name,
        );
        let refused_layer = report["layer"].as_str().unwrap_or_default();
        assert!(
            layout
                .layer_digests
                .iter()
                .any(|digest| digest == refused_layer),
            "{}: {report}",
            case.name
        );
    }
}

#[test]
fn blobs_and_layers_must_be_what_the_manifest_and_config_name() {
    let scratch = Scratch::new();
    let layers = vec![(tar(&[file("a", 0o644, b"hello")]), Compression::Gzip)];

    let layout = Image::new(layers.clone()).write_layout(&scratch.path("tampered"), "t");
    let blob = layout
        .dir
        .join("blobs/sha256")
        .join(&layout.layer_digests[0]["sha256:".len()..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    assert_refused(
        &scratch,
        &layout,
        "blob_digest",
        None,
        &[],
        "a flipped byte in a layer blob",
    );

    let layout =
        Image::new(layers.clone()).write_layout_with(&scratch.path("diff-id"), "t", |ids| {
            ids[0] = crate::fixture::sha256(b"another layer");
        });
    assert_refused(
        &scratch,
        &layout,
        "diff_id",
        None,
        &[],
        "a diff_id that is not the layer's",
    );

    let layout = Image::new(layers).write_layout(&scratch.path("config"), "t");
    let config = layout
        .dir
        .join("blobs/sha256")
        .join(&layout.config_digest["sha256:".len()..]);
    std::fs::write(&config, b"{}").unwrap();
    let output = scratch.image(&["import", "--json", layout.dir.to_str().unwrap()]);
    assert_status(&output, 4);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["member"], "config", "{report}");
    scratch.assert_untouched("a config that is not the one named");
}

/// `--allow-setuid` takes a distribution's setuid and setgid programs instead of refusing
/// the image, and stores them without those bits (the tree is stored once, for every
/// build: no build may run a privileged program from it).
#[test]
fn allow_setuid_stores_the_files_without_the_bits() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    let layout = Image::new(vec![(
        tar(&[
            file("su", 0o4755, b"x"),
            file("sg", 0o2711, b"y"),
            file("plain", 0o644, b"z"),
        ]),
        Compression::Gzip,
    )])
    .write_layout(&scratch.path("layout"), "v1");
    let output = scratch.image(&["import", "--allow-setuid", layout.dir.to_str().unwrap()]);
    assert_status(&output, 0);
    let tree = scratch
        .state()
        .join("images/sha256")
        .join(&layout.manifest_digest["sha256:".len()..])
        .join("rootfs");
    let mode = |name: &str| {
        std::fs::symlink_metadata(tree.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    // The store keeps files read-only: only the bits asked about are compared.
    assert_eq!(mode("su") & 0o6000, 0, "su kept a privilege bit");
    assert_eq!(mode("sg") & 0o6000, 0, "sg kept a privilege bit");
    assert_eq!(mode("su") & 0o111, 0o111, "su lost its execute bits");
    assert_eq!(std::fs::read(tree.join("su")).unwrap(), b"x");
}
