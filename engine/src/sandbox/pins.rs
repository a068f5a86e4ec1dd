//! Pinned values: what the build sees instead of whatever the host happens to have.
//!
//! Every value here is fixed by the profile (or by SOURCE_DATE_EPOCH's rule), never read
//! from the host, so two runs on two machines observe the same thing.
use std::path::Path;
use std::process::Command;

use crate::sandbox::spec::{Identity, SandboxPaths};

/// The default SOURCE_DATE_EPOCH when neither a flag nor git gives one: 1980-01-01, the
/// earliest time a zip file can store.
pub const FALLBACK_SOURCE_DATE_EPOCH: u64 = 315_532_800;

pub use hermetic_contract::report::EpochSource;

/// SOURCE_DATE_EPOCH: the flag, else the commit time of the source's git HEAD, else 1980.
pub fn source_date_epoch(flag: Option<u64>, source: Option<&Path>) -> (u64, EpochSource) {
    if let Some(epoch) = flag {
        return (epoch, EpochSource::Flag);
    }
    if let Some(epoch) = source.and_then(git_head_time) {
        return (epoch, EpochSource::GitHead);
    }
    (FALLBACK_SOURCE_DATE_EPOCH, EpochSource::Fallback)
}

fn git_head_time(source: &Path) -> Option<u64> {
    if !source.join(".git").exists() {
        return None;
    }
    // A clean environment: the user's git config must not change what HEAD means here.
    // The repository's own config is the caller's: no signature checks (gpg.program would
    // be theirs), and git runs as the caller when the daemon acts for another user.
    let output = crate::sys::creds::as_caller(&mut Command::new("git"))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", "/nonexistent")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(source)
        .args(["log", "-1", "--no-show-signature", "--format=%ct", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
}

/// The pinned values the environment is built from.
pub struct EnvPins<'a> {
    pub identity: &'a Identity,
    pub paths: &'a SandboxPaths,
    pub path_var: &'a str,
    pub tz: &'a str,
    pub locale: &'a str,
    pub source_date_epoch: u64,
    pub extra: &'a [(String, String)],
}

/// The build's whole environment, sorted by name. Nothing comes from the host.
pub fn build_env(pins: &EnvPins<'_>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), pins.paths.home.display().to_string()),
        ("HOSTNAME".into(), pins.identity.hostname.clone()),
        ("LANG".into(), pins.locale.into()),
        ("LC_ALL".into(), pins.locale.into()),
        ("LOGNAME".into(), pins.identity.user.clone()),
        ("PATH".into(), pins.path_var.into()),
        ("PWD".into(), pins.paths.build_dir.display().to_string()),
        ("PYTHONHASHSEED".into(), "0".into()),
        ("SHELL".into(), "/bin/sh".into()),
        (
            "SOURCE_DATE_EPOCH".into(),
            pins.source_date_epoch.to_string(),
        ),
        ("TMPDIR".into(), pins.paths.tmp.display().to_string()),
        ("TZ".into(), pins.tz.into()),
        ("USER".into(), pins.identity.user.clone()),
    ];
    for (name, value) in pins.extra {
        env.retain(|(existing, _)| existing != name);
        env.push((name.clone(), value.clone()));
    }
    env.sort();
    env
}

/// Adds an image config's `Env` under the pins: a variable the sandbox or the profile
/// already sets (HOME, TZ, SOURCE_DATE_EPOCH, the locale, PATH, `extra`, ...) keeps its
/// value; the image's others (a toolchain's own variables) are added.
pub fn add_image_env(env: &mut Vec<(String, String)>, image_env: &[(String, String)]) {
    for (name, value) in image_env {
        if !env.iter().any(|(pinned, _)| pinned == name) {
            env.push((name.clone(), value.clone()));
        }
    }
    env.sort();
}

/// The synthetic /etc files: one user and group for the build, localhost only, files-only
/// name service, no resolver.
pub fn etc_files(identity: &Identity, paths: &SandboxPaths) -> Vec<(String, String)> {
    let Identity {
        uid,
        gid,
        user,
        group,
        hostname,
        ..
    } = identity;
    let home = paths.home.display();
    vec![
        ("group".into(), format!("root:x:0:\n{group}:x:{gid}:\nnogroup:x:65534:\n")),
        ("hostname".into(), format!("{hostname}\n")),
        ("hosts".into(), format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost\n")),
        ("nsswitch.conf".into(), "passwd: files\ngroup: files\nshadow: files\nhosts: files\n".into()),
        (
            "passwd".into(),
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\n{user}:x:{uid}:{gid}:{user}:{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        ("resolv.conf".into(), String::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_env_comes_under_the_pins() {
        let mut env = vec![
            ("PATH".to_owned(), "/image/bin".to_owned()),
            ("TZ".to_owned(), "UTC".to_owned()),
        ];
        add_image_env(
            &mut env,
            &[
                ("TZ".into(), "Europe/Paris".into()),
                ("GOROOT".into(), "/usr/local/go".into()),
                ("PATH".into(), "/elsewhere".into()),
            ],
        );
        assert_eq!(
            env,
            [
                ("GOROOT".to_owned(), "/usr/local/go".to_owned()),
                ("PATH".to_owned(), "/image/bin".to_owned()),
                ("TZ".to_owned(), "UTC".to_owned()),
            ]
        );
    }

    fn identity() -> Identity {
        Identity {
            uid: 1000,
            gid: 1000,
            user: "build".into(),
            group: "build".into(),
            hostname: "hermetic".into(),
            domainname: "(none)".into(),
        }
    }

    fn paths() -> SandboxPaths {
        SandboxPaths {
            build_dir: "/build".into(),
            home: "/home/build".into(),
            tmp: "/tmp".into(),
        }
    }

    #[test]
    fn epoch_prefers_the_flag_then_git_then_1980() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            source_date_epoch(Some(42), Some(dir.path())),
            (42, EpochSource::Flag)
        );
        assert_eq!(
            source_date_epoch(None, Some(dir.path())),
            (315_532_800, EpochSource::Fallback)
        );
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
                .arg(dir.path())
                .args(args)
                .env("GIT_COMMITTER_DATE", "1700000000 +0000")
                .env("GIT_AUTHOR_DATE", "1700000000 +0000")
                .status()
                .unwrap();
            assert!(status.success());
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        git(&["add", "f"]);
        git(&["commit", "-qm", "m"]);
        assert_eq!(
            source_date_epoch(None, Some(dir.path())),
            (1_700_000_000, EpochSource::GitHead)
        );
    }

    #[test]
    fn env_is_built_from_pins_only_and_sorted() {
        std::env::set_var("HERMETIC_TEST_SECRET", "leak");
        let extra = vec![
            ("CFLAGS".to_string(), "-O2".to_string()),
            ("TZ".to_string(), "UTC".to_string()),
        ];
        let identity = identity();
        let paths = paths();
        let env = build_env(&EnvPins {
            identity: &identity,
            paths: &paths,
            path_var: "/usr/bin:/bin",
            tz: "UTC",
            locale: "C.UTF-8",
            source_date_epoch: 7,
            extra: &extra,
        });
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(!names.contains(&"HERMETIC_TEST_SECRET"));
        assert_eq!(names.iter().filter(|n| **n == "TZ").count(), 1);
        assert!(env.contains(&("SOURCE_DATE_EPOCH".into(), "7".into())));
        assert!(env.contains(&("CFLAGS".into(), "-O2".into())));
        assert!(env.contains(&("PYTHONHASHSEED".into(), "0".into())));
    }

    #[test]
    fn passwd_names_the_pinned_user() {
        let files = etc_files(&identity(), &paths());
        let passwd = &files.iter().find(|(n, _)| n == "passwd").unwrap().1;
        assert!(passwd.contains("build:x:1000:1000:build:/home/build:/bin/sh"));
        // Every file a rootfs or image's /etc may hold that would name another identity or
        // reach a resolver is the sandbox's own.
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "group",
                "hostname",
                "hosts",
                "nsswitch.conf",
                "passwd",
                "resolv.conf"
            ]
        );
    }
}
