//! The build's stdout and stderr. A pipe or file is handed to the build as it is; a
//! terminal is not (the build must never hold the host's tty), so its output is relayed
//! through a pipe instead.
use std::io::{IsTerminal, Read, Write};
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

pub enum Target {
    Stdout,
    Stderr,
}

/// A descriptor for the build's stream and, when relaying, the thread that copies to `target`.
pub fn for_build(target: Target) -> std::io::Result<(OwnedFd, Option<JoinHandle<()>>)> {
    let is_tty = match target {
        Target::Stdout => std::io::stdout().is_terminal(),
        Target::Stderr => std::io::stderr().is_terminal(),
    };
    if !is_tty {
        let fd = match target {
            Target::Stdout => std::io::stdout().as_fd_owned()?,
            Target::Stderr => std::io::stderr().as_fd_owned()?,
        };
        return Ok((fd, None));
    }
    let (mut reader, writer) = std::io::pipe()?;
    let relay = std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let written = match target {
                Target::Stdout => std::io::stdout().write_all(&buffer[..n]),
                Target::Stderr => std::io::stderr().write_all(&buffer[..n]),
            };
            if written.is_err() {
                break;
            }
        }
    });
    Ok((OwnedFd::from(writer), Some(relay)))
}

trait OwnedCopy {
    fn as_fd_owned(&self) -> std::io::Result<std::os::fd::OwnedFd>;
}

impl<T: std::os::fd::AsFd> OwnedCopy for T {
    fn as_fd_owned(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        self.as_fd().try_clone_to_owned()
    }
}
