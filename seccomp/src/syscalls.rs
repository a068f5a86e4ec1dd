//! x86_64 system call numbers by name, from the table in seccomp/syscalls-x86_64.txt.
use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../syscalls-x86_64.txt");

/// The number of the x86_64 system call `name`, if it has one.
pub fn number(name: &str) -> Option<u32> {
    static BY_NAME: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| {
            TABLE
                .lines()
                .filter(|line| !line.starts_with('#') && !line.is_empty())
                .filter_map(|line| {
                    let (name, number) = line.split_once(' ')?;
                    Some((name, number.trim().parse().ok()?))
                })
                .collect()
        })
        .get(name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_libc() {
        let known = [
            ("read", libc::SYS_read),
            ("openat", libc::SYS_openat),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("ioctl", libc::SYS_ioctl),
            ("seccomp", libc::SYS_seccomp),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("process_mrelease", libc::SYS_process_mrelease),
            ("futex_waitv", libc::SYS_futex_waitv),
            ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
            ("fchmodat2", libc::SYS_fchmodat2),
            ("mseal", libc::SYS_mseal),
        ];
        for (name, expected) in known {
            assert_eq!(number(name), Some(expected as u32), "{name}");
        }
        let names: Vec<&str> = TABLE
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split(' ').next())
            .collect();
        assert_eq!(names.len(), 374);
        assert!(names.iter().all(|name| number(name).is_some()));
        assert_eq!(number("no_such_call"), None);
    }
}
