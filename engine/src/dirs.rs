//! Where a user's hermetic state lives by default (the XDG base directories).
use std::path::PathBuf;

/// The state directory when the config does not name one: `/var/lib/hermetic` for root,
/// `$XDG_STATE_HOME/hermetic` (or `~/.local/state/hermetic`) for other users.
pub fn default_state_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/var/lib/hermetic");
    }
    env_dir("XDG_STATE_HOME")
        .or_else(|| env_dir("HOME").map(|home| home.join(".local/state")))
        .map(|dir| dir.join("hermetic"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/hermetic-{uid}/state")))
}

/// An absolute directory from the environment variable `name`; a relative one counts as unset,
/// as the XDG base directory spec says.
pub fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
}
