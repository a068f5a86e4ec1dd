/*!
hermetic's OCI distribution client: what the remote build cache (a fleet of CI runners
sharing one OCI registry) and, later, `hermetic image pull` need from a registry, and no
more.

# API

A [`Client`] is built once from a [`ClientConfig`] (timeouts, chunk size, an extra CA
file, where plain HTTP is allowed) and [`Credentials`] (usually
[`Credentials::from_environment`]); it is `Send + Sync` and caches registry tokens, so
one client serves every thread. Names are parsed up front: [`Repository::parse_oci_url`]
(`oci://HOST[:PORT]/REPO[/...]`, the cache's address) and [`ImageReference`]
(`HOST[:PORT]/REPO[:TAG][@sha256:HEX]`; there is no default registry, so the host must
have a dot or a port, or be `localhost`).

- Blobs: [`Client::blob_exists`] (HEAD, the size), [`Client::fetch_blob`] (streams into a
  writer, checked against the descriptor's size and digest), [`Client::push_blob`]
  (skips a blob the repository has, mounts one from another repository of the registry,
  otherwise uploads in PATCH chunks of [`ClientConfig::chunk_size`] and a final PUT,
  restarting a failed session once; returns a [`BlobPush`]).
- Manifests: [`Client::put_manifest`] (then HEADs it back, and indexes its `subject`,
  see below; returns a [`PushedManifest`]), [`Client::get_manifest`] (accepted media
  types, a size cap; a [`FetchedManifest`]), [`Client::delete_manifest`],
  [`Client::list_tags`].
- Referrers: [`Client::referrers`] lists the manifests whose `subject` is a digest,
  through the registry's referrers API or, where it has none (404), the referrers tag
  `sha256-<hex>`; [`Client::add_referrer`] maintains that tag's index. `put_manifest`
  calls it when the registry does not answer `OCI-Subject`, so callers only push.

Every failure is a [`RegistryError`]: the [`Step`] that failed, the URL (no credentials,
no query string) and an [`ErrorKind`] with the status or the check.
[`RegistryError::is_unavailable`] is true for an outage (refused or dropped connection,
timeout, 5xx, 429, 408), which the cache treats as a miss, and false for a refusal (4xx,
credentials) or an answer that failed a check, which it must not paper over.

# Trust

Nothing a registry sends is trusted here beyond what can be checked without keys:
digests and sizes. A blob is hashed as it streams and refused at the first byte past its
descriptor's size; a body that ends short, or hashes to another digest, is an error. A
manifest fetched by digest must hash to it. Which manifests and blobs to believe is the
caller's decision (the cache checks signatures). On the way out, the client hashes what
it uploads before committing it, and reads a pushed manifest back, because registries
have acknowledged pushes they then lost.

# Design

Blocking, on [ureq] with rustls. The engine that calls this is synchronous by design
(no async code in `hermetic`) and runs on the daemon's blocking threads; an async client
would bring a runtime into the engine, or a `block_on` into code that may already sit
on a runtime's blocking pool. oci-client, the obvious crate, is async (reqwest and
tokio), and does not give the control this cache needs: a streaming read that stops at
the first byte past the expected size, uploads chunked and retried on our terms, and
writing the referrers tag index on registries without the referrers API.

The transport trusts the system's roots (Debian's ca-certificates, read with
rustls-native-certs, offline) plus an optional CA file, and speaks plain HTTP only to
loopback registries unless told otherwise ([`PlainHttp`]). Timeouts bound the connect
and every wait for an answer or for body progress, so a registry that accepts and never
answers fails in [`ClientConfig::request_timeout`], while a large blob that keeps
flowing is not cut off. Proxies come from the usual `HTTPS_PROXY`/`NO_PROXY` variables.

Authentication is docker's and podman's: credentials from the auth files they use
([`auth_file_locations`]), offered only after a 401 asks for them (Basic, or a Bearer
token fetched from the challenge's realm), sent only to the registry and to that realm
(not to redirect targets or upload sessions on other hosts), and cached per registry,
repository and access until the token expires. Secrets are [`Secret`], which
has no Debug.

Types come from oci-spec ([`Descriptor`], [`Digest`], image indexes) where they fit; the
tag list and error bodies are read with small local structs, because distribution
answers `"tags": null` and error codes outside oci-spec's closed list.
*/

mod auth;
mod blobs;
mod error;
mod manifests;
mod reference;
mod referrers;
mod transport;

pub use oci_spec::image::{Descriptor, Digest, MediaType};

pub use crate::auth::{auth_file_locations, BasicCredential, Credentials, Secret};
pub use crate::blobs::{sha256_digest, BlobPush};
pub use crate::error::{ClientError, ErrorKind, RegistryError, Step};
pub use crate::manifests::{
    FetchedManifest, PushedManifest, SubjectIndexing, DEFAULT_MANIFEST_LIMIT, OCI_INDEX,
    OCI_MANIFEST,
};
pub use crate::reference::{
    parse_sha256_digest, ImageReference, ManifestReference, ReferenceError, Registry, Repository,
    Tag,
};
pub use crate::transport::{ClientConfig, PlainHttp, DEFAULT_CHUNK_SIZE, SMALL_CHUNK_SIZE};

use crate::transport::Transport;

/// A registry client; see the crate documentation.
pub struct Client {
    transport: Transport,
}

impl Client {
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<Self, ClientError> {
        Ok(Client {
            transport: Transport::new(config, credentials)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_client_serves_every_thread() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::Client>();
    }
}
