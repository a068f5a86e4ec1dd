//! Paths inside a root tree (a stored image, a rootfs directory), resolved from the host
//! the way the sandbox will resolve them once the tree is its `/`: an absolute symlink
//! target is relative to the tree, and `..` stops at its top.
//!
//! The host-side code that looks into a tree before the sandbox exists (which libc an
//! image has, which directory is its /etc) must not let the kernel follow the tree's
//! symlinks: an image is untrusted content, and its `etc -> /` would otherwise name the
//! host's root.
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed in one resolution, as the kernel's own limit.
const MAX_HOPS: u32 = 40;

/// The host path of what `path` names inside `root`, with every symlink on the way
/// resolved inside the tree, so the result has no symlink below `root`. None when it does
/// not exist, takes more than [`MAX_HOPS`] links, or is the tree's top itself.
pub fn resolve_in(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(next) = pending.pop() {
        let mut components: Vec<_> = next.components().collect();
        components.reverse();
        while let Some(component) = components.pop() {
            match component {
                Component::RootDir => resolved = PathBuf::new(),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let candidate = resolved.join(name);
                    let meta = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
                    if meta.file_type().is_symlink() {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return None;
                        }
                        let target = std::fs::read_link(root.join(&candidate)).ok()?;
                        let rest: PathBuf = components.iter().rev().collect();
                        components.clear();
                        pending.push(rest);
                        pending.push(target);
                        break;
                    }
                    resolved = candidate;
                }
            }
        }
    }
    (!resolved.as_os_str().is_empty()).then(|| root.join(&resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_tree_and_never_above_it() {
        let root = tempfile::tempdir().unwrap();
        let tree = root.path().join("tree");
        std::fs::create_dir_all(tree.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(tree.join("usr/lib/x86_64-linux-gnu/ld.so"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", tree.join("lib")).unwrap();
        std::fs::create_dir(tree.join("lib64")).unwrap();
        std::os::unix::fs::symlink(
            "/lib/x86_64-linux-gnu/ld.so",
            tree.join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        assert_eq!(
            resolve_in(&tree, Path::new("lib64/ld-linux-x86-64.so.2")),
            Some(tree.join("usr/lib/x86_64-linux-gnu/ld.so"))
        );
        // A file beside the tree is not reachable through `..` or an absolute link.
        std::fs::write(root.path().join("outside"), b"x").unwrap();
        std::os::unix::fs::symlink("../../outside", tree.join("up")).unwrap();
        std::os::unix::fs::symlink("/../outside", tree.join("abs")).unwrap();
        assert_eq!(resolve_in(&tree, Path::new("up")), None);
        assert_eq!(resolve_in(&tree, Path::new("abs")), None);
    }

    #[test]
    fn a_link_to_the_top_or_a_loop_names_nothing() {
        let root = tempfile::tempdir().unwrap();
        let tree = root.path();
        std::os::unix::fs::symlink("/", tree.join("etc")).unwrap();
        std::os::unix::fs::symlink("../..", tree.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", tree.join("loop")).unwrap();
        std::fs::create_dir_all(tree.join("usr/etc")).unwrap();
        std::os::unix::fs::symlink("usr/etc", tree.join("moved")).unwrap();
        assert_eq!(resolve_in(tree, Path::new("etc")), None);
        assert_eq!(resolve_in(tree, Path::new("up")), None);
        assert_eq!(resolve_in(tree, Path::new("loop")), None);
        assert_eq!(
            resolve_in(tree, Path::new("moved")),
            Some(tree.join("usr/etc"))
        );
    }
}
