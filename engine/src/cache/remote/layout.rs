//! The registry's side of an entry (docs/cache-format.md §Remote cache, Layout): the OCI
//! entry manifest, written as exactly the same bytes by every runner that has the same
//! archive, and the signature manifest that attaches the entry's bundle to it as a
//! referrer. Also the checks of what a registry hands back: the entry manifest must be
//! byte for byte the one written here, and a signature manifest must hold one bundle.
use hermetic_registry::{sha256_digest, Descriptor, Digest, MediaType, OCI_MANIFEST};
use serde::{Deserialize, Serialize};

use crate::cache::entry::ArchiveDigests;
use crate::cache::key::CacheKey;
use crate::cache::restore::MAX_ENTRY_BUNDLE_BYTES;
use crate::cache::store::Scope;
use crate::signing::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;

/// Version of the registry layout. Changelog:
/// - `hermetic.cache-remote/v1`: first version.
pub const REMOTE_SCHEMA: &str = "hermetic.cache-remote/v1";
/// `artifactType` of an entry manifest.
pub const ENTRY_ARTIFACT_TYPE: &str = "application/vnd.hermetic.cache-entry.v1";
/// Media type of the entry manifest's one layer, the archive.
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.hermetic.archive.v1.tar+zstd";
/// `artifactType` of a signature referrer and media type of its one layer, the bundle (as
/// cosign attaches its new bundle format).
pub const SIGNATURE_ARTIFACT_TYPE: &str = BUNDLE_MEDIA_TYPE;
/// The empty config both manifests have: the two bytes `{}`.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// sha256 of [`EMPTY_CONFIG`].
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// [`EMPTY_CONFIG`] in base64, embedded as the config's `data`.
const EMPTY_CONFIG_DATA: &str = "e30=";
/// Largest entry or signature manifest read: a few hundred bytes are expected.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// Signature referrers tried per entry at most.
pub const MAX_SIGNATURES: usize = 16;

/// The entry manifest, serialised in field order: the order is part of the format, since
/// its bytes decide its digest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryManifestJson<'a> {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'static str,
    config: EmptyConfigJson,
    layers: [LayerJson<'a>; 1],
    annotations: EntryAnnotations<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmptyConfigJson {
    media_type: &'static str,
    digest: &'static str,
    size: u64,
    data: &'static str,
}

const EMPTY_CONFIG_JSON: EmptyConfigJson = EmptyConfigJson {
    media_type: EMPTY_CONFIG_MEDIA_TYPE,
    digest: EMPTY_CONFIG_DIGEST,
    size: EMPTY_CONFIG.len() as u64,
    data: EMPTY_CONFIG_DATA,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerJson<'a> {
    media_type: &'static str,
    digest: &'a str,
    size: u64,
}

#[derive(Serialize)]
struct EntryAnnotations<'a> {
    #[serde(rename = "dev.hermetic.cache.format")]
    format: &'static str,
    #[serde(rename = "dev.hermetic.cache.key")]
    key: &'a str,
    #[serde(rename = "dev.hermetic.cache.scope")]
    scope: &'a str,
}

/// The entry manifest of the archive with `archive`'s digests for `key` in `scope`: the
/// same bytes on every runner.
pub fn entry_manifest_bytes(key: &CacheKey, scope: &Scope, archive: &ArchiveDigests) -> Vec<u8> {
    let archive_digest = format!("sha256:{}", archive.sha256);
    let manifest = EntryManifestJson {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        artifact_type: ENTRY_ARTIFACT_TYPE,
        config: EMPTY_CONFIG_JSON,
        layers: [LayerJson {
            media_type: ARCHIVE_MEDIA_TYPE,
            digest: &archive_digest,
            size: archive.size,
        }],
        annotations: EntryAnnotations {
            format: REMOTE_SCHEMA,
            key: key.as_str(),
            scope: scope.as_str(),
        },
    };
    serde_json::to_vec(&manifest).expect("entry manifests serialise")
}

/// The descriptor of the archive blob as signed, to fetch it by.
pub fn archive_descriptor(archive: &ArchiveDigests) -> Descriptor {
    Descriptor::new(
        MediaType::from(ARCHIVE_MEDIA_TYPE),
        archive.size,
        oci_digest(&archive.sha256),
    )
}

/// `sha256:<hex>` as a registry digest; `hex` is a signed (or computed) sha256.
pub fn oci_digest(sha256_hex: &str) -> Digest {
    hermetic_registry::parse_sha256_digest(&format!("sha256:{sha256_hex}"))
        .expect("a sha256 is 64 lowercase hex digits")
}

/// The empty config as a registry descriptor.
pub fn empty_config_digest() -> Digest {
    sha256_digest(EMPTY_CONFIG)
}

/// The signature manifest: the `bundle` (its bytes' digest and size), whose statement's
/// predicate is `predicate_type`, attached to the manifest `subject` as a referrer (an
/// entry manifest, [`crate::cache::entry::ENTRY_PREDICATE_TYPE`]; a drill's inputs, `repro::fleet`'s).
pub fn signature_manifest_bytes(
    bundle: &Descriptor,
    subject: &Descriptor,
    predicate_type: &'static str,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct SignatureManifestJson<'a> {
        schema_version: u32,
        media_type: &'static str,
        artifact_type: &'static str,
        config: EmptyConfigJson,
        layers: [LayerJson<'a>; 1],
        subject: SubjectJson<'a>,
        annotations: SignatureAnnotations,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct SubjectJson<'a> {
        media_type: &'static str,
        digest: &'a str,
        size: u64,
    }
    #[derive(Serialize)]
    struct SignatureAnnotations {
        #[serde(rename = "dev.sigstore.bundle.content")]
        content: &'static str,
        #[serde(rename = "dev.sigstore.bundle.predicateType")]
        predicate_type: &'static str,
    }
    let manifest = SignatureManifestJson {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        artifact_type: SIGNATURE_ARTIFACT_TYPE,
        config: EMPTY_CONFIG_JSON,
        layers: [LayerJson {
            media_type: BUNDLE_MEDIA_TYPE,
            digest: bundle.digest().as_ref(),
            size: bundle.size(),
        }],
        subject: SubjectJson {
            media_type: OCI_MANIFEST,
            digest: subject.digest().as_ref(),
            size: subject.size(),
        },
        annotations: SignatureAnnotations {
            content: "dsse-envelope",
            predicate_type,
        },
    };
    serde_json::to_vec(&manifest).expect("signature manifests serialise")
}

/// The layers of a manifest a registry sent; the rest is not looked at.
#[derive(Deserialize)]
struct Layers {
    layers: Vec<Descriptor>,
}

/// The bundle layer of a signature manifest, which is untrusted: it must have exactly one
/// layer, of the bundle's media type, no larger than an entry's bundle may be.
pub fn signature_layer(manifest: &[u8]) -> Result<Descriptor, String> {
    let parsed: Layers = serde_json::from_slice(manifest)
        .map_err(|error| format!("not an OCI image manifest: {error}"))?;
    let [layer] = <[Descriptor; 1]>::try_from(parsed.layers)
        .map_err(|layers| format!("{} layers, where a signature has one", layers.len()))?;
    let media_type = layer.media_type().to_string();
    if media_type != BUNDLE_MEDIA_TYPE {
        return Err(format!(
            "its layer has media type {media_type:?}, not {BUNDLE_MEDIA_TYPE:?}"
        ));
    }
    if layer.size() > MAX_ENTRY_BUNDLE_BYTES as u64 {
        return Err(format!(
            "its layer is {} bytes, over the {MAX_ENTRY_BUNDLE_BYTES} a bundle may have",
            layer.size()
        ));
    }
    Ok(layer)
}

/// The archive digest an entry manifest names (its first layer's), to describe an entry
/// that is not ours in a conflict. Untrusted: for reports only.
pub fn named_archive(manifest: &[u8]) -> Option<String> {
    let parsed: Layers = serde_json::from_slice(manifest).ok()?;
    parsed
        .layers
        .first()
        .map(|layer| layer.digest().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::ENTRY_PREDICATE_TYPE;

    fn sample() -> (CacheKey, Scope, ArchiveDigests) {
        (
            CacheKey::parse(&"ab".repeat(32)).unwrap(),
            Scope::parse("main").unwrap(),
            ArchiveDigests {
                sha256: "cd".repeat(32),
                blake3: "ef".repeat(32),
                size: 12345,
            },
        )
    }

    #[test]
    fn the_entry_manifest_is_exactly_the_documented_bytes() {
        let (key, scope, archive) = sample();
        let expected = format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                r#""artifactType":"application/vnd.hermetic.cache-entry.v1","#,
                r#""config":{{"mediaType":"application/vnd.oci.empty.v1+json","#,
                r#""digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","#,
                r#""size":2,"data":"e30="}},"#,
                r#""layers":[{{"mediaType":"application/vnd.hermetic.archive.v1.tar+zstd","#,
                r#""digest":"sha256:{archive}","size":12345}}],"#,
                r#""annotations":{{"dev.hermetic.cache.format":"hermetic.cache-remote/v1","#,
                r#""dev.hermetic.cache.key":"{key}","dev.hermetic.cache.scope":"main"}}}}"#
            ),
            archive = "cd".repeat(32),
            key = "ab".repeat(32),
        );
        let bytes = entry_manifest_bytes(&key, &scope, &archive);
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        assert_eq!(
            bytes,
            entry_manifest_bytes(&key, &scope, &archive),
            "deterministic"
        );
    }

    #[test]
    fn the_empty_config_digest_is_the_sha256_of_two_braces() {
        assert_eq!(empty_config_digest().to_string(), EMPTY_CONFIG_DIGEST);
        use base64::Engine;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(EMPTY_CONFIG),
            EMPTY_CONFIG_DATA
        );
    }

    #[test]
    fn the_entry_manifest_changes_with_whatever_it_names() {
        let (key, scope, archive) = sample();
        let base = entry_manifest_bytes(&key, &scope, &archive);
        let other_key = CacheKey::parse(&"01".repeat(32)).unwrap();
        let other_scope = Scope::parse("untrusted-pr-1").unwrap();
        let other_size = ArchiveDigests {
            size: 1,
            ..archive.clone()
        };
        let other_blake3 = ArchiveDigests {
            blake3: "00".repeat(32),
            ..archive.clone()
        };
        assert_ne!(entry_manifest_bytes(&other_key, &scope, &archive), base);
        assert_ne!(entry_manifest_bytes(&key, &other_scope, &archive), base);
        assert_ne!(entry_manifest_bytes(&key, &scope, &other_size), base);
        // The blake3 is not in the manifest: only the signed statement carries it.
        assert_eq!(entry_manifest_bytes(&key, &scope, &other_blake3), base);
    }

    #[test]
    fn a_signature_manifest_refers_to_its_entry_and_holds_one_bundle() {
        let bundle = Descriptor::new(
            MediaType::from(BUNDLE_MEDIA_TYPE),
            700,
            sha256_digest(b"bundle"),
        );
        let subject = Descriptor::new(MediaType::from(OCI_MANIFEST), 400, sha256_digest(b"entry"));
        let bytes = signature_manifest_bytes(&bundle, &subject, ENTRY_PREDICATE_TYPE);
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["artifactType"], SIGNATURE_ARTIFACT_TYPE);
        assert_eq!(json["config"]["digest"], EMPTY_CONFIG_DIGEST);
        assert_eq!(json["subject"]["digest"], subject.digest().to_string());
        assert_eq!(json["subject"]["size"], 400);
        assert_eq!(
            json["annotations"]["dev.sigstore.bundle.predicateType"],
            ENTRY_PREDICATE_TYPE
        );
        assert_eq!(
            json["annotations"]["dev.sigstore.bundle.content"],
            "dsse-envelope"
        );
        assert_eq!(signature_layer(&bytes).unwrap(), bundle);

        let two_layers = serde_json::json!({"layers": [json["layers"][0], json["layers"][0]]});
        let error = signature_layer(&serde_json::to_vec(&two_layers).unwrap()).unwrap_err();
        assert!(error.contains("2 layers"), "{error}");
        let mut other_type = json.clone();
        other_type["layers"][0]["mediaType"] = "application/octet-stream".into();
        let error = signature_layer(&serde_json::to_vec(&other_type).unwrap()).unwrap_err();
        assert!(error.contains("media type"), "{error}");
        let mut huge = json;
        huge["layers"][0]["size"] = (MAX_ENTRY_BUNDLE_BYTES as u64 + 1).into();
        let error = signature_layer(&serde_json::to_vec(&huge).unwrap()).unwrap_err();
        assert!(error.contains("bytes"), "{error}");
    }
}
