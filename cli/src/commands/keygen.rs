//! `hermetic keygen`: create a cosign-compatible key pair for signing build outputs.
use hermetic::signing::{write_key_pair, KeyError, Password};

use crate::args::KeygenArgs;
use crate::exit;
use crate::Failure;

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
