//! `hermetic keygen`: create a cosign-compatible key pair for signing build outputs.
use std::path::PathBuf;

use hermetic::signing::{write_key_pair, KeyError, Password};

use crate::exit;
use crate::Failure;

/// Create a key pair for signing build outputs (cosign-compatible).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The private key is ECDSA P-256, encrypted as `cosign generate-key-pair` does \
(scrypt and NaCl secretbox, PEM `ENCRYPTED SIGSTORE PRIVATE KEY`), so cosign can use it and \
hermetic can use cosign's keys. The password comes from HERMETIC_PASSWORD, else \
COSIGN_PASSWORD, else it is empty (allowed, as in cosign; a warning is printed).\n\n\
PREFIX.key is created with mode 0600 and PREFIX.pub with mode 0644. Existing files are never \
overwritten.\n\n\
Exit status: 0 written, 2 a key file already exists or the directory can't be written, \
5 internal error.\n\n\
Examples:\n  hermetic keygen\n  hermetic keygen --output-key-prefix keys/release"
)]
pub struct KeygenArgs {
    /// Write the private key to PREFIX.key and the public key to PREFIX.pub.
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    pub output_key_prefix: PathBuf,
}

/// Writes a new key pair and prints where, with its key id.
pub fn keygen(args: KeygenArgs) -> Result<i32, Failure> {
    let password = Password::from_env();
    let files = write_key_pair(&args.output_key_prefix, &password).map_err(|error| {
        let code = match error {
            // Problems with the path the user gave.
            KeyError::Exists { .. }
            | KeyError::BadPrefix { .. }
            | KeyError::OpenDir { .. }
            | KeyError::CheckExists { .. }
            | KeyError::CreateTemp { .. } => exit::USAGE,
            _ => exit::SANDBOX_FAILED,
        };
        Failure::new(code, error)
    })?;
    if password.is_empty() {
        eprintln!(
            "hermetic: warning: the private key is encrypted with the empty password \
             (set HERMETIC_PASSWORD or COSIGN_PASSWORD to choose one)"
        );
    }
    println!("private key: {}", files.private_key.display());
    println!("public key:  {}", files.public_key.display());
    println!("key id:      {}", files.verifying_key.key_id());
    Ok(exit::SUCCESS)
}
