//! The registry client against a real registry (Debian's docker-registry, which
//! scripts/test-setup.sh installs) and, for failures a real one will not produce on
//! demand, a scripted fake.

mod support;

// Blob upload (chunked, skipped, mounted, restarted) and verified download.
mod blobs;
// Manifests: push and fetch by tag and digest, OCI 1.1 artifacts, delete, tags.
mod manifests;
// Referrers through the tag-schema fallback, and through a referrers API.
mod referrers;
// htpasswd behind a docker config file, Bearer tokens.
mod auth;
// A stopped registry, one that never answers, 5xx.
mod outages;
// HTTPS with a CA given in a file.
mod tls;
