//! Digest helpers shared by every part that records what it ran with.
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 (hex) of a file, read in one streaming pass.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut sha = Sha256::new();
    stream_file(path, |bytes| sha.update(bytes))?;
    Ok(hex::encode(sha.finalize()))
}

/// sha256 and blake3 (hex) of a file, in one read pass.
pub fn sha256_and_blake3_file(path: &Path) -> std::io::Result<(String, String)> {
    let mut sha = Sha256::new();
    let mut b3 = blake3::Hasher::new();
    stream_file(path, |bytes| {
        sha.update(bytes);
        b3.update(bytes);
    })?;
    Ok((
        hex::encode(sha.finalize()),
        b3.finalize().to_hex().to_string(),
    ))
}

fn stream_file(path: &Path, mut take: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => take(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
