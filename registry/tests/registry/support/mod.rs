//! What the registry tests share: the real registry, a scripted fake, clients and
//! test content.

pub mod fake;
pub mod server;

use std::error::Error;
use std::time::Duration;

use hermetic_registry::{
    sha256_digest, Client, ClientConfig, Credentials, Descriptor, MediaType, Repository,
};

/// A client for a loopback registry, with small chunks so that uploads take several.
pub fn client_with(credentials: Credentials, chunk_size: usize) -> Client {
    Client::new(
        ClientConfig {
            chunk_size,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        },
        credentials,
    )
    .expect("client")
}

pub fn client() -> Client {
    client_with(Credentials::none(), 4096)
}

/// Deterministic, varied bytes (a real blob would not be a run of one byte).
pub fn blob_bytes(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed) ^ (index >> 8) as u8)
        .collect()
}

pub fn descriptor_of(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor::new(
        MediaType::from(media_type),
        bytes.len() as u64,
        sha256_digest(bytes),
    )
}

/// Pushes bytes as a blob and returns their descriptor.
pub fn push(
    client: &Client,
    repository: &Repository,
    media_type: &str,
    bytes: &[u8],
) -> Descriptor {
    let descriptor = descriptor_of(media_type, bytes);
    client
        .push_blob(
            repository,
            descriptor.digest(),
            descriptor.size(),
            &mut std::io::Cursor::new(bytes),
            None,
        )
        .expect("push blob");
    descriptor
}

/// The whole chain, as `{:#}` would print it: what the cache's user will read.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
