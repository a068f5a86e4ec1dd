//! Deterministic output archives (tar+zstd) and their per-file BLAKE3 manifests.
