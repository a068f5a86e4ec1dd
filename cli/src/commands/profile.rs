//! `hermetic profile list|show|check`.
use anyhow::Context;
use hermetic::sandbox::{profile, seccomp};

use crate::args::ProfileCommand;
use crate::exit;
use crate::Failure;

pub fn profile(command: ProfileCommand) -> Result<i32, Failure> {
    let usage = |err: anyhow::Error| Failure::new(exit::USAGE, err);
    match command {
        ProfileCommand::List => {
            for (name, origin) in profile::list() {
                let description = profile::load(&name)
                    .map(|p| p.description)
                    .unwrap_or_else(|e| format!("(invalid: {})", hermetic::errors::Chain(&e)));
                println!("{name:<12} {origin:<32} {description}");
            }
        }
        ProfileCommand::Show { name } => {
            print!(
                "{}",
                profile::source_text(&name).map_err(|e| usage(e.into()))?
            );
        }
        ProfileCommand::Check { file } => {
            let loaded = profile::load_file(&file).map_err(|e| usage(e.into()))?;
            let policy = seccomp::load_policy(&loaded.seccomp_policy)
                .with_context(|| {
                    format!(
                        "profile {} names seccomp policy `{}`",
                        file.display(),
                        loaded.seccomp_policy
                    )
                })
                .map_err(usage)?;
            println!(
                "ok: {} (profile sha256 {}, seccomp policy {} sha256 {})",
                file.display(),
                loaded.sha256,
                policy.name,
                policy.sha256
            );
        }
    }
    Ok(exit::SUCCESS)
}
