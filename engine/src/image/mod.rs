//! OCI images as build roots: pulled from a registry or imported from an OCI layout or a
//! docker-archive tarball, unpacked by hermetic's own strict applier, and stored once,
//! read-only, content-addressed by manifest digest under `<state-dir>/images/`
//! (docs/images.md).
//!
//! - [`reference`]: digests, and what a reference resolved to (a tag is looked up once).
//! - [`spec`]: the OCI and Docker documents (manifest, index, config), media types, the
//!   host's platform.
//! - `layout` and `docker_archive`: reading an OCI layout (a directory, or inside a
//!   tarball) and `docker save` / `skopeo copy ... docker-archive:` tarballs.
//! - [`pull`]: the same from a registry, through hermetic-registry.
//! - `import`: from a resolved manifest to a stored image (lock, config, layers, tree,
//!   publish), whatever the blobs come from.
//! - `layer` and `member`: the strict layer applier (whiteouts, refusals, limits) and its
//!   tar member reader; [`error`] names the rules it enforces.
//! - [`tree`]: the stored tree's manifest, written at import and compared by verify.
//! - [`store`]: the store's layout, its locks, list, remove, verify.
//! - [`root`]: a stored image as a build's root: the pinned reference, the image held
//!   for the build, its config's environment, whether the variation shim loads in it.
//!
//! For builds (issue #17, part 2): a stored image's tree is [`store::tree`]`(state_dir,
//! digest)`, the manifest digest being the image's identity; hold
//! [`Store::acquire`]`(digest)` (a shared lock, which `image rm` refuses to break) for as
//! long as a build uses it.
mod docker_archive;
pub mod error;
mod fs;
mod import;
mod layer;
mod layout;
pub mod limits;
mod member;
pub mod pull;
pub mod reference;
pub mod root;
pub mod spec;
pub mod store;
pub mod tree;

use std::path::Path;

pub use error::{ImageError, Refusal, Rule};
pub use import::Imported;
pub use layer::FinishError;
pub use limits::ImageLimits;
pub use pull::{pull, PullOptions};
pub use reference::{ImageDigest, Resolution};
pub use store::{tree, ImageRecord, InUse, Store, StoreError, Verification, STORE_VERSION};

/// Imports the image at `path`: an OCI image layout directory, or a tarball (`docker
/// save`, `skopeo copy ... docker-archive:`, or an OCI layout in a tar). `tag` picks one
/// image where the source holds several.
pub fn import(
    state_dir: &Path,
    path: &Path,
    tag: Option<&str>,
    limits: &ImageLimits,
) -> Result<Imported, ImageError> {
    // A path that is not there is the request's mistake, not this machine's.
    let metadata = std::fs::metadata(path)
        .map_err(|error| ImageError::Usage(format!("cannot import {}: {error}", path.display())))?;
    let store = Store::open(state_dir).map_err(ImageError::Store)?;
    if metadata.is_dir() {
        let files = layout::LayoutDir::open(path)?;
        let shown = path.display().to_string();
        let plan = layout::plan(&files, tag, &shown, "oci-layout", limits)?;
        import::store_image(&store, plan, &layout::LayoutBlobs(&files), limits)
    } else {
        let archive = docker_archive::DockerArchive::open(path, limits)?;
        let (plan, blobs) = archive.plan(tag, limits)?;
        import::store_image(&store, plan, blobs.as_ref(), limits)
    }
}
