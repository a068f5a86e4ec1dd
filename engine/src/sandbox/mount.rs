//! The sandbox's filesystem, built inside a fresh mount namespace by the sandbox's init.
//!
//! Order matters and is fixed here:
//! 1. everything becomes MS_PRIVATE, so nothing we mount propagates back to the host;
//! 2. a tmpfs on /tmp becomes a scratch root and the host root is pivoted to /oldroot
//!    beneath it (bubblewrap's trick: sources under the host's /tmp stay reachable);
//! 3. the new root is assembled under /newroot from /oldroot: read-only binds, synthetic
//!    /etc, /dev, /sys, fresh /proc (which must be mounted while a full procfs is still
//!    visible, or the kernel refuses it in a user namespace), size-capped tmpfs mounts, and
//!    the source copy;
//! 4. the new root's own tmpfs is remounted read-only, we pivot into it and detach the old
//!    root, so no host path stays reachable.
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::sandbox::error::{step, Layer, StepError};
use crate::sandbox::spec::{RootSpec, SandboxSpec};
use crate::sandbox::tree_path;

const SCRATCH: &str = "/tmp";
const OLD_ROOT: &str = "/oldroot";
const NEW_ROOT: &str = "/newroot";
/// Device nodes bound from the host. Everything else in /dev is absent.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];
/// Directories the synthetic root always has, whatever the profile binds.
const SKELETON: &[&str] = &["etc", "proc", "dev", "sys", "tmp", "home", "run"];
/// A boot id that is the same in every sandbox: the real one differs per host boot.
const PINNED_BOOT_ID: &str = "00000000-0000-4000-8000-000000000000\n";

/// Builds the sandbox's root from `spec`; a rootfs or image root from `tree`, its detached
/// mount, when the launcher handed one over (else from its path).
pub(crate) fn build_root(spec: &SandboxSpec, tree: Option<OwnedFd>) -> Result<(), StepError> {
    let fs_step = |what: &'static str, call: &'static str, path: &Path| {
        step::<nix::errno::Errno>(Layer::Filesystem, what, call, path.to_path_buf())
    };

    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(fs_step(
        "make every mount private",
        "mount(MS_REC|MS_PRIVATE)",
        Path::new("/"),
    ))?;
    tmpfs(Path::new(SCRATCH), 0o755, 1 << 20, "scratch root")?;
    mkdir(&Path::new(SCRATCH).join("oldroot"), 0o755)?;
    mkdir(&Path::new(SCRATCH).join("newroot"), 0o755)?;
    nix::unistd::pivot_root(SCRATCH, &*format!("{SCRATCH}{OLD_ROOT}")).map_err(fs_step(
        "move the host root aside",
        "pivot_root",
        Path::new(SCRATCH),
    ))?;
    nix::unistd::chdir("/").map_err(fs_step("enter the scratch root", "chdir", Path::new("/")))?;

    let new_root = Path::new(NEW_ROOT);
    tmpfs(new_root, 0o755, 16 << 20, "new root")?;
    for dir in SKELETON {
        mkdir(&new_root.join(dir), 0o755)?;
    }

    match &spec.root {
        RootSpec::Host { binds, etc_binds } => {
            for bind in binds {
                mirror_host_path(bind, bind)?;
            }
            for file in etc_binds {
                mirror_host_path(file, file)?;
            }
            write_etc(&inside(Path::new("/etc")), spec)?;
        }
        RootSpec::Rootfs { dir } | RootSpec::Image { dir } => {
            let root = match tree {
                Some(tree) => attach_tree(&tree, dir)?,
                None => Path::new(OLD_ROOT).join(relative(dir)),
            };
            bind_rootfs(&root, spec)?
        }
    }
    if spec.preload_shim {
        let shim = inside(Path::new(crate::sandbox::shim::SHIM_PATH));
        let object = crate::sandbox::shim::shim_object(spec.variation.vary_shim);
        fs::write(&shim, object).map_err(step(
            Layer::Filesystem,
            "install the variation shim",
            "write",
            shim.clone(),
        ))?;
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).map_err(step(
            Layer::Filesystem,
            "install the variation shim",
            "chmod",
            shim,
        ))?;
    }
    build_dev()?;
    build_sys(spec.cpu_set.len())?;
    mount_proc()?;

    let uid_owned = [
        (&spec.paths.build_dir, spec.limits.build_dir_bytes, 0o755),
        (&spec.paths.home, spec.limits.home_bytes, 0o755),
        (&spec.paths.tmp, spec.limits.tmp_bytes, 0o1777),
    ];
    for (path, size, mode) in uid_owned {
        let target = inside(path);
        mkdir_all(&target)?;
        writable_tmpfs(&target, mode, size)?;
    }

    mount(
        None::<&str>,
        new_root,
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(fs_step(
        "make the new root read-only",
        "mount(MS_REMOUNT|MS_RDONLY)",
        new_root,
    ))?;

    nix::unistd::chdir(new_root).map_err(fs_step("enter the new root", "chdir", new_root))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
    // removes the old root (and with it every host path) without needing a directory for it.
    nix::unistd::pivot_root(".", ".").map_err(fs_step(
        "enter the new root",
        "pivot_root",
        new_root,
    ))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fs_step(
        "detach the host root",
        "umount2(MNT_DETACH)",
        Path::new("/"),
    ))?;
    let start = spec.start_dir.as_ref().unwrap_or(&spec.paths.build_dir);
    nix::unistd::chdir(start).map_err(fs_step("enter the start dir", "chdir", start))?;
    Ok(())
}

/// A path under /oldroot as the host names it, for errors.
fn host_view(path: &Path) -> PathBuf {
    match path.strip_prefix(OLD_ROOT) {
        Ok(on_host) => Path::new("/").join(on_host),
        Err(_) => path.to_path_buf(),
    }
}

/// `path` under the new root.
fn inside(path: &Path) -> PathBuf {
    Path::new(NEW_ROOT).join(relative(path))
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

fn mkdir(path: &Path, mode: u32) -> Result<(), StepError> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(StepError::new(
            Layer::Filesystem,
            "create a mount point",
            "mkdir",
            Some(path.to_path_buf()),
            err,
        )),
        _ => Ok(()),
    }
}

fn mkdir_all(path: &Path) -> Result<(), StepError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(step(
            Layer::Filesystem,
            "create a mount point",
            "mkdir -p",
            path.to_path_buf(),
        ))
}

fn tmpfs(target: &Path, mode: u32, size: u64, what: &'static str) -> Result<(), StepError> {
    let options = format!("mode={mode:o},size={size}");
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(step(
        Layer::Filesystem,
        what,
        "mount(tmpfs)",
        target.to_path_buf(),
    ))
}

/// A tmpfs the build writes to. Files that fill whole 2 MiB extents get huge pages
/// (`huge=within_size`; small files keep small pages): writing a large tree into it took
/// half the time, and freeing it at the end a fifth, measured with 660 MB of libraries.
/// Kernels without huge tmpfs pages refuse the option; they get a plain tmpfs.
fn writable_tmpfs(target: &Path, mode: u32, size: u64) -> Result<(), StepError> {
    let options = format!("mode={mode:o},size={size},huge=within_size");
    let huge = mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    );
    match huge {
        Err(nix::errno::Errno::EINVAL) => tmpfs(target, mode, size, "writable tmpfs"),
        other => other.map_err(step(
            Layer::Filesystem,
            "writable tmpfs",
            "mount(tmpfs, huge=within_size)",
            target.to_path_buf(),
        )),
    }
}

/// Makes host `source` visible at `target` inside: a directory or file is bound read-only,
/// a symlink is recreated with the same target. A missing source is skipped, so one
/// profile serves distributions with and without merged /usr.
fn mirror_host_path(source: &Path, target: &Path) -> Result<(), StepError> {
    mirror(&Path::new(OLD_ROOT).join(relative(source)), target)
}

/// As [`mirror_host_path`], from `from` as this process sees it (under /oldroot). Only its
/// last component is looked at: a symlink there is recreated, never followed.
fn mirror(from: &Path, target: &Path) -> Result<(), StepError> {
    let to = inside(target);
    let meta = match fs::symlink_metadata(from) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(StepError::new(
                Layer::Filesystem,
                "inspect a bind source",
                "lstat",
                Some(host_view(from)),
                err,
            ))
        }
    };
    if meta.file_type().is_symlink() {
        let link = fs::read_link(from).map_err(step(
            Layer::Filesystem,
            "mirror a host symlink",
            "readlink",
            host_view(from),
        ))?;
        return in_new_dir(&to, || symlink(&link, &to)).map_err(step(
            Layer::Filesystem,
            "mirror a host symlink",
            "symlink",
            to.clone(),
        ));
    }
    bind_readonly(from, &to, meta.is_dir())
}

/// Creates `path` with `create`, and its missing parent directories first if there are
/// any. Most targets go straight into a directory that exists (the new root, its /etc):
/// trying first spares each of them the mkdir and stat of a `mkdir -p`.
fn in_new_dir(path: &Path, create: impl Fn() -> io::Result<()>) -> io::Result<()> {
    match create() {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let parent = path.parent().ok_or(err)?;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
            create()
        }
        other => other,
    }
}

fn bind_readonly(from: &Path, to: &Path, is_dir: bool) -> Result<(), StepError> {
    let created = if is_dir {
        in_new_dir(to, || match fs::DirBuilder::new().mode(0o755).create(to) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        })
    } else {
        in_new_dir(to, || fs::File::create(to).map(drop))
    };
    created.map_err(step(
        Layer::Filesystem,
        "create a bind target",
        if is_dir { "mkdir" } else { "creat" },
        to.to_path_buf(),
    ))?;
    mount(
        Some(from),
        to,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step(
        Layer::Filesystem,
        "bind read-only",
        "mount(MS_BIND|MS_REC)",
        host_view(from),
    ))?;
    crate::sys::mount::make_tree_readonly(to).map_err(step(
        Layer::Filesystem,
        "bind read-only",
        "mount_setattr(RDONLY|NOSUID|NODEV, AT_RECURSIVE)",
        to.to_path_buf(),
    ))
}

/// Top-level entries of a rootfs or image tree the sandbox replaces with its own.
pub(crate) const ROOTFS_REPLACED: &[&str] = &["proc", "dev", "sys", "tmp", "home", "run", "build"];

/// Attaches the detached mount of the tree at `dir` on the scratch root, where
/// [`bind_rootfs`] takes its entries from; its path there.
fn attach_tree(tree: &OwnedFd, dir: &Path) -> Result<PathBuf, StepError> {
    let root = Path::new(SCRATCH_FILES).join("tree");
    mkdir(&root, 0o755)?;
    crate::sys::mount::attach_tree(tree.as_fd(), &root).map_err(step(
        Layer::Filesystem,
        "attach the root tree the launcher handed over",
        "move_mount",
        dir.to_path_buf(),
    ))?;
    Ok(root)
}

/// Binds every top-level entry of the rootfs or image tree at `root` (as this process
/// sees it) except the ones the sandbox provides itself, and layers the tree's /etc under
/// the sandbox's own files.
fn bind_rootfs(root: &Path, spec: &SandboxSpec) -> Result<(), StepError> {
    for (name, path) in sorted_entries(root)? {
        if ROOTFS_REPLACED.contains(&name.as_str()) || name == "etc" {
            continue;
        }
        mirror(&path, Path::new("/").join(&name).as_path())?;
    }
    // Resolved inside the tree: an image is untrusted, and the kernel would resolve its
    // `etc -> /` to the helper's root, where the host's root is /oldroot.
    match tree_path::resolve_in(root, Path::new("etc")).filter(|etc| etc.is_dir()) {
        Some(tree_etc) => layer_etc(&tree_etc, spec),
        None => write_etc(&inside(Path::new("/etc")), spec),
    }
}

/// The sandbox's /etc over a tree's: its own files (identity, ld.so.preload) win, the
/// tree's other entries show through. One read-only overlay does it, its upper layer a
/// directory of the sandbox's files on the scratch root. Where the kernel refuses
/// overlayfs in a user namespace (before 5.11, or built without it), the tree's entries
/// are bound one by one instead: the same view at a mount per entry, which for a Debian
/// image's sixty made a run in it 1.2x one on the host.
fn layer_etc(tree_etc: &Path, spec: &SandboxSpec) -> Result<(), StepError> {
    let own = Path::new(SCRATCH_FILES).join("etc");
    mkdir(&own, 0o755)?;
    write_etc(&own, spec)?;
    if overlay_etc(&own, tree_etc)? {
        return Ok(());
    }
    for (name, path) in sorted_entries(tree_etc)? {
        if !spec.etc_files.iter().any(|(file, _)| *file == name) {
            mirror(&path, &Path::new("/etc").join(&name))?;
        }
    }
    write_etc(&inside(Path::new("/etc")), spec)
}

/// Mounts the overlay of `own` over `tree_etc` on the new root's /etc; false when the
/// kernel refuses it. The tree's layer is named `.`, from inside it: a state directory's
/// path may hold the `:` and `,` that separate overlay options, and the sandbox's
/// mountinfo then shows no host path.
fn overlay_etc(own: &Path, tree_etc: &Path) -> Result<bool, StepError> {
    if crate::test_hooks::overlay_refused() {
        return Ok(false);
    }
    let target = inside(Path::new("/etc"));
    nix::unistd::chdir(tree_etc).map_err(step(
        Layer::Filesystem,
        "layer the tree's /etc",
        "chdir",
        tree_etc.to_path_buf(),
    ))?;
    let mounted = mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("lowerdir={}:.", own.display()).as_str()),
    );
    nix::unistd::chdir("/").map_err(step(
        Layer::Filesystem,
        "layer the tree's /etc",
        "chdir",
        PathBuf::from("/"),
    ))?;
    Ok(mounted.is_ok())
}

fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, StepError> {
    let read = fs::read_dir(dir).map_err(step(
        Layer::Filesystem,
        "list the rootfs",
        "opendir",
        dir.to_path_buf(),
    ))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(step(
            Layer::Filesystem,
            "list the rootfs",
            "readdir",
            dir.to_path_buf(),
        ))?;
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    entries.sort();
    Ok(entries)
}

/// A new file with `content`, created with `mode`: init's umask (022) takes nothing from
/// the modes used here, so no chmod is needed after.
fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), StepError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(content.as_bytes()))
        .map_err(step(
            Layer::Filesystem,
            "write a synthetic file",
            "write",
            path.to_path_buf(),
        ))
}

/// The sandbox's own /etc files, written into `dir`.
fn write_etc(dir: &Path, spec: &SandboxSpec) -> Result<(), StepError> {
    for (name, content) in &spec.etc_files {
        write_file(&dir.join(name), content, 0o644)?;
    }
    Ok(())
}

/// Uses up `count` inode numbers on the file system holding `dir` (tmpfs numbers its
/// inodes from a per-mount counter, so the same creations give the same numbers in both
/// runs otherwise).
pub(crate) fn use_up_inode_numbers(dir: &Path, count: u32) -> Result<(), StepError> {
    let scratch = dir.join(".hermetic-inode-offset");
    for _ in 0..count {
        fs::File::create(&scratch).map_err(step(
            Layer::Filesystem,
            "shift inode numbers",
            "open(O_CREAT)",
            scratch.clone(),
        ))?;
        fs::remove_file(&scratch).map_err(step(
            Layer::Filesystem,
            "shift inode numbers",
            "unlink",
            scratch.clone(),
        ))?;
    }
    Ok(())
}

fn build_dev() -> Result<(), StepError> {
    let dev = Path::new(NEW_ROOT).join("dev");
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=65536"),
    )
    .map_err(step(
        Layer::Filesystem,
        "mount /dev",
        "mount(tmpfs)",
        dev.clone(),
    ))?;
    for name in DEVICES {
        let target = dev.join(name);
        fs::File::create(&target).map_err(step(
            Layer::Filesystem,
            "create a device mount point",
            "creat",
            target.clone(),
        ))?;
        bind_file(
            &Path::new(OLD_ROOT).join("dev").join(name),
            &target,
            "bind a device node",
        )?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).map_err(step(
            Layer::Filesystem,
            "create /dev links",
            "symlink",
            dev.join(link),
        ))?;
    }
    let shm = dev.join("shm");
    mkdir(&shm, 0o1777)?;
    tmpfs(&shm, 0o1777, 64 << 20, "mount /dev/shm")?;
    Ok(())
}

/// A /sys that only answers the CPU-count questions (glibc's get_nprocs reads
/// devices/system/cpu/online), so the visible count is the pinned one, not the host's.
fn build_sys(cpus: usize) -> Result<(), StepError> {
    let sys = Path::new(NEW_ROOT).join("sys");
    tmpfs(&sys, 0o755, 1 << 20, "mount /sys")?;
    let cpu = sys.join("devices/system/cpu");
    mkdir_all(&cpu)?;
    let range = if cpus <= 1 {
        "0\n".to_string()
    } else {
        format!("0-{}\n", cpus - 1)
    };
    for name in ["online", "possible", "present"] {
        write_file(&cpu.join(name), &range, 0o444)?;
    }
    for index in 0..cpus {
        mkdir(&cpu.join(format!("cpu{index}")), 0o755)?;
    }
    mount(
        None::<&str>,
        &sys,
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(step(
        Layer::Filesystem,
        "make /sys read-only",
        "mount(MS_REMOUNT|MS_RDONLY)",
        sys.clone(),
    ))
}

fn mount_proc() -> Result<(), StepError> {
    let proc = Path::new(NEW_ROOT).join("proc");
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(step(
        Layer::Filesystem,
        "mount a fresh /proc",
        "mount(proc)",
        proc.clone(),
    ))?;
    // The boot id is per host boot; pin it so it can't leak into outputs.
    let pinned = Path::new(SCRATCH_FILES).join("boot_id");
    write_file(&pinned, PINNED_BOOT_ID, 0o444)?;
    let target = proc.join("sys/kernel/random/boot_id");
    bind_file(&pinned, &target, "pin /proc boot_id")?;
    crate::sys::mount::make_tree_readonly(&target).map_err(step(
        Layer::Filesystem,
        "pin /proc boot_id",
        "mount_setattr(RDONLY)",
        target,
    ))
}

/// A plain (non-recursive) bind of one file or device node.
fn bind_file(source: &Path, target: &Path, what: &'static str) -> Result<(), StepError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(step(
        Layer::Filesystem,
        what,
        "mount(MS_BIND)",
        source.to_path_buf(),
    ))
}

/// What the new root takes from outside itself lives in the scratch root: the files bound
/// over /proc entries, the upper layer of an image's /etc, an attached root tree.
const SCRATCH_FILES: &str = "/";
