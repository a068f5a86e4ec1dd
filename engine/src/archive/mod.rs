//! Deterministic output archives (tar+zstd) and their per-file BLAKE3 manifests.
//!
//! [`pack::pack_outputs`] turns a build's declared outputs into an archive plus a
//! [`manifest::Manifest`]; [`extract::extract_verified`] restores such an archive only if
//! it matches its manifest exactly. Both treat the tree or the archive as hostile.
pub mod extract;
pub mod manifest;
pub mod outpath;
pub mod pack;
mod staging;
