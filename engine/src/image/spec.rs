//! The OCI image spec's documents as far as unpacking needs them: descriptors, manifests,
//! indexes and the config's `rootfs.diff_ids`, with Docker's schema 2 equivalents. Parsing
//! is strict where a document decides what gets unpacked (the media type of a document must
//! agree with what it was fetched as; only known layer types) and lenient elsewhere
//! (annotations, history and other fields nothing here reads are ignored).
use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::Refusal;
use super::reference::ImageDigest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The annotation an OCI layout's index gives a manifest's tag.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Every manifest and index media type a pull accepts.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A content descriptor. Fields nothing here reads (urls, data, artifactType) are ignored.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: ImageDigest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index (OCI, or a Docker manifest list).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// The config's fields that unpacking checks: the uncompressed layers' digests, and the
/// platform it was built for.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub rootfs: RootFs,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<ImageDigest>,
}

impl Config {
    pub fn parse(bytes: &[u8]) -> Result<Self, Refusal> {
        let config: Config = serde_json::from_slice(bytes).map_err(|error| {
            Refusal::document("config", format!("not an image config: {error}"))
        })?;
        if config.rootfs.kind != "layers" {
            return Err(Refusal::document(
                "config",
                format!("rootfs.type is {:?}, not \"layers\"", config.rootfs.kind),
            ));
        }
        Ok(config)
    }

    /// `os/architecture[/variant]`, when the config says.
    pub fn platform(&self) -> Option<String> {
        let (os, architecture) = (self.os.as_deref()?, self.architecture.as_deref()?);
        Some(match &self.variant {
            Some(variant) => format!("{os}/{architecture}/{variant}"),
            None => format!("{os}/{architecture}"),
        })
    }
}

/// A manifest or index document, told apart by its media type.
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

impl Document {
    /// Parses `bytes` fetched as `media_type` (a descriptor's or the registry's). The
    /// document's own `mediaType`, when present, must be the same: a manifest served as an
    /// index (or the reverse) is refused rather than guessed at.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Self, Refusal> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Declared {
            #[serde(default)]
            media_type: Option<String>,
        }
        let declared: Declared = serde_json::from_slice(bytes)
            .map_err(|error| Refusal::document("manifest", format!("not JSON: {error}")))?;
        if let Some(declared) = declared
            .media_type
            .filter(|declared| declared != media_type)
        {
            return Err(Refusal::document(
                "manifest",
                format!("its mediaType is {declared:?} but it was given as {media_type:?}"),
            ));
        }
        let invalid = |error: serde_json::Error| {
            Refusal::document("manifest", format!("not a valid {media_type}: {error}"))
        };
        let document = match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => {
                Document::Manifest(serde_json::from_slice(bytes).map_err(invalid)?)
            }
            OCI_INDEX | DOCKER_MANIFEST_LIST => {
                Document::Index(serde_json::from_slice(bytes).map_err(invalid)?)
            }
            other => {
                return Err(Refusal::document(
                    "manifest",
                    format!("media type {other:?} is neither an image manifest nor an index"),
                ))
            }
        };
        let schema_version = match &document {
            Document::Manifest(manifest) => manifest.schema_version,
            Document::Index(index) => index.schema_version,
        };
        if schema_version != 2 {
            return Err(Refusal::document(
                "manifest",
                format!("schemaVersion {schema_version}, not 2"),
            ));
        }
        Ok(document)
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_LAYER_TAR => Some(Self::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Self::Gzip),
            OCI_LAYER_ZSTD => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// The platform this hermetic runs on, as OCI names it: what a multi-platform image is
/// resolved to.
pub fn host_platform() -> (&'static str, &'static str) {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", architecture)
}

/// The one manifest of `index` for this host's platform.
pub fn select_platform(index: &Index) -> Result<&Descriptor, Refusal> {
    let (os, architecture) = host_platform();
    let matching: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|descriptor| {
            descriptor
                .platform
                .as_ref()
                .is_some_and(|platform| platform.os == os && platform.architecture == architecture)
        })
        .filter(|descriptor| {
            matches!(
                descriptor.media_type.as_str(),
                OCI_MANIFEST | DOCKER_MANIFEST
            )
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(Refusal::document(
            "index",
            format!("no image manifest for {os}/{architecture}"),
        )),
        _ => Err(Refusal::document(
            "index",
            format!(
                "several image manifests for {os}/{architecture}: which one is meant is not clear"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn a_document_must_be_what_it_was_fetched_as() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":2}},"layers":[]}}"#,
            digest('a')
        );
        assert!(matches!(
            Document::parse(manifest.as_bytes(), OCI_MANIFEST),
            Ok(Document::Manifest(_))
        ));
        let err = Document::parse(manifest.as_bytes(), OCI_INDEX)
            .err()
            .unwrap();
        assert!(err.to_string().contains("mediaType"), "{err}");
        let old = manifest.replace("\"schemaVersion\":2", "\"schemaVersion\":1");
        assert!(Document::parse(old.as_bytes(), OCI_MANIFEST).is_err());
    }

    #[test]
    fn an_index_resolves_to_this_hosts_platform_only() {
        let (os, architecture) = host_platform();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"s390x"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"{os}","architecture":"{architecture}"}}}}]}}"#,
            digest('a'),
            digest('b')
        );
        let Ok(Document::Index(index)) = Document::parse(index.as_bytes(), OCI_INDEX) else {
            panic!("an index");
        };
        assert_eq!(
            select_platform(&index).unwrap().digest.to_string(),
            digest('b')
        );
    }
}
