//! `hermetic image`: OCI images pulled, imported, unpacked strictly, stored once by
//! manifest digest, verified and removed. Every fixture is made by the tests, offline; the
//! tools they compare with or convert through (umoci, skopeo, docker-registry, busybox)
//! come from scripts/test-setup.sh.
#[path = "../support/mod.rs"]
mod support;

/// Runs and builds inside a stored image.
mod builds;
/// The sandbox's /etc over the image's, with or without overlayfs, never a host path.
mod etc;
/// Images, layers and layouts written by the tests; the state directory and its checks.
mod fixture;
/// The stored tree equals what `umoci raw unpack --rootless` makes of the same layout.
mod oracle;
/// Each rule of the unpacker refuses a crafted layer, and leaves the store untouched.
mod refusals;
/// The same image from a docker-archive tarball and from a registry.
mod sources;
/// One copy for concurrent imports, `rm` refused while the image is held, `verify`.
mod store;
/// examples/hello built in a Debian toolchain image by two runners.
mod toolchain;
