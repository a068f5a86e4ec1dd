//! Bounds on what an image can make us read and write: a layer is refused at the first
//! header that exceeds them, before its data is inflated.

/// The limits of one pull or import, over all of the image's layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Layers in the manifest.
    pub max_layers: usize,
    /// Tar members over all layers (whiteouts and directories count).
    pub max_entries: u64,
    /// Bytes of file content over all layers (what later layers replace counts too).
    pub max_total_bytes: u64,
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Length of a member's path, a link target, or a GNU long name.
    pub max_path_bytes: usize,
    /// Length of one path component.
    pub max_component_bytes: usize,
    /// Size of a manifest, index, config or layout file (distribution's own cap is 4 MiB).
    pub max_document_bytes: u64,
    /// Zero bytes accepted after a layer's tar end marker.
    pub max_end_padding: u64,
    /// Accept setuid and setgid files, stored without those bits (`--allow-setuid`);
    /// refused otherwise.
    pub allow_setuid: bool,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_layers: 256,
            max_entries: 2_000_000,
            max_total_bytes: 64 << 30,
            max_file_bytes: 16 << 30,
            max_path_bytes: 4096,
            max_component_bytes: 255,
            max_document_bytes: 4 << 20,
            max_end_padding: 1 << 20,
            allow_setuid: false,
        }
    }
}
