//! Drill results shared by a fleet of runners through an OCI registry
//! (`hermetic.drill-remote/v1`, docs/drills.md §Fleet), so that a drill on one runner
//! compares with what the others built from the same inputs.
//!
//! In the repository `REPO/drills`, each set of inputs (a cache key) has an inputs
//! manifest, tagged by the key, whose bytes depend on the key alone: every runner writes
//! and finds the same one. Each case result is a DSSE-signed in-toto statement (predicate
//! [`RESULT_PREDICATE_TYPE`]) whose subject is that manifest, attached to it as a
//! referrer. Readers trust only results that verify with their own trusted keys and whose
//! subject and cache key are the inputs they asked about.
use std::io::Cursor;

use hermetic_contract::build::RemoteCacheOptions;
use hermetic_registry::{
    sha256_digest, Descriptor, ManifestReference, MediaType, RegistryError, Tag, OCI_MANIFEST,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cache::remote::layout::{
    empty_config_digest, signature_layer, signature_manifest_bytes, EMPTY_CONFIG,
    EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, MAX_MANIFEST_BYTES,
};
use crate::cache::remote::{Remote, RemoteSetupError};
use crate::cache::restore::MAX_ENTRY_BUNDLE_BYTES;
use crate::cache::store::Scope;
use crate::signing::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;
use crate::signing::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::signing::{sign_dsse, verify_dsse, Bundle, SigningKey, VerifyingKey};

/// Version of the registry layout of drill results. Changelog:
/// - `hermetic.drill-remote/v1`: first version.
pub const FLEET_SCHEMA: &str = "hermetic.drill-remote/v1";
/// The repository below the URL's that holds drill results.
pub const FLEET_REPOSITORY: &str = "drills";
/// `artifactType` of an inputs manifest.
pub const INPUTS_ARTIFACT_TYPE: &str = "application/vnd.hermetic.drill-inputs.v1";
/// The predicate type of a signed case result.
pub const RESULT_PREDICATE_TYPE: &str = "https://hermetic.dev/drill-result/v1";
/// Results read per set of inputs at most (newest are not told apart by the registry, so
/// a fleet keeps its history bounded by pruning, docs/drills.md).
pub const MAX_RESULTS: usize = 512;

/// One case result as the fleet shares it: the signed predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetResult {
    /// The case's name in the plan that ran it.
    pub case: String,
    /// The inputs: the case's cache key.
    pub cache_key: String,
    /// `sha256:<hex>` of the canonical archive, when it built.
    pub digest: Option<String>,
    /// `reproducible`, `nondeterministic`, `drifted` or `failed`.
    pub verdict: String,
    pub runner: String,
    /// The drill it was part of, and when that drill finished (RFC 3339, UTC).
    pub drill: String,
    pub time: String,
}

/// What the fleet holds for one set of inputs.
#[derive(Debug, Default)]
pub struct FleetResults {
    /// Results signed by a trusted key, about these inputs.
    pub trusted: Vec<FleetResult>,
    /// Results left out: not signed by a trusted key, or not about these inputs, or
    /// unreadable.
    pub ignored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Setup(#[from] RemoteSetupError),
    #[error("`{0}` is not a cache key")]
    Key(String),
    #[error("drill results at {reference}")]
    Registry {
        reference: String,
        #[source]
        source: RegistryError,
    },
}

/// The fleet's repository, `REPO/drills` of `options.url`.
pub struct Fleet {
    remote: Remote,
}

#[derive(Serialize)]
struct Subject<'a> {
    name: &'a str,
    digest: Digest<'a>,
}

#[derive(Serialize, Deserialize)]
struct Digest<'a> {
    sha256: &'a str,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    statement_type: &'static str,
    subject: [Subject<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: &'a FleetResult,
}

#[derive(Deserialize)]
struct ReadStatement {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<ReadSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: FleetResult,
}

#[derive(Deserialize)]
struct ReadSubject {
    digest: std::collections::BTreeMap<String, String>,
}

impl Fleet {
    pub fn connect(options: &RemoteCacheOptions) -> Result<Fleet, FleetError> {
        let scope = Scope::parse(FLEET_REPOSITORY).expect("`drills` is a scope name");
        Ok(Fleet {
            remote: Remote::connect(options, &scope)?,
        })
    }

    /// `HOST/REPO/drills`.
    pub fn repository(&self) -> String {
        self.remote.repository().to_string()
    }

    /// The inputs manifest of `key`: the same bytes on every runner (a JSON object's keys
    /// are written sorted).
    fn inputs_manifest(key: &str) -> Vec<u8> {
        let empty = json!({
            "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
            "digest": EMPTY_CONFIG_DIGEST,
            "size": EMPTY_CONFIG.len(),
        });
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": INPUTS_ARTIFACT_TYPE,
            "config": empty,
            // The OCI image spec's advice for an artifact without content: one empty layer.
            "layers": [empty],
            "annotations": {
                "dev.hermetic.drill.format": FLEET_SCHEMA,
                "dev.hermetic.drill.cache-key": key,
            },
        }))
        .expect("inputs manifests serialise")
    }

    fn tag(&self, key: &str) -> Result<ManifestReference, FleetError> {
        let valid = key.len() == 64
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match valid.then(|| Tag::new(key).ok()).flatten() {
            Some(tag) => Ok(ManifestReference::Tag(tag)),
            None => Err(FleetError::Key(key.to_owned())),
        }
    }

    fn failed(&self, what: &str) -> impl Fn(RegistryError) -> FleetError {
        let reference = format!("{}:{what}", self.remote.repository());
        move |source| FleetError::Registry {
            reference: reference.clone(),
            source,
        }
    }

    /// Signs `result` with `key` and attaches it to its inputs' manifest (written first,
    /// when missing: it is the same for every runner, so writing it twice is harmless).
    pub fn publish(&self, result: &FleetResult, key: &SigningKey) -> Result<(), FleetError> {
        let tag = self.tag(&result.cache_key)?;
        let failed = self.failed(&result.cache_key);
        let client = self.remote.client();
        let repository = self.remote.repository();
        client
            .push_blob(
                repository,
                &empty_config_digest(),
                EMPTY_CONFIG.len() as u64,
                &mut Cursor::new(EMPTY_CONFIG),
                None,
            )
            .map_err(&failed)?;
        let inputs = Self::inputs_manifest(&result.cache_key);
        let inputs_digest = sha256_digest(&inputs);
        client
            .put_manifest(repository, &tag, OCI_MANIFEST, &inputs)
            .map_err(&failed)?;

        let statement = Statement {
            statement_type: crate::provenance::STATEMENT_TYPE,
            subject: [Subject {
                name: &result.cache_key,
                digest: Digest {
                    sha256: inputs_digest.digest(),
                },
            }],
            predicate_type: RESULT_PREDICATE_TYPE,
            predicate: result,
        };
        let payload = serde_json::to_vec(&statement).expect("statements serialise");
        let bundle = sign_dsse(key, IN_TOTO_PAYLOAD_TYPE, &payload)
            .to_json()
            .into_bytes();
        let bundle_digest = sha256_digest(&bundle);
        client
            .push_blob(
                repository,
                &bundle_digest,
                bundle.len() as u64,
                &mut Cursor::new(&bundle),
                None,
            )
            .map_err(&failed)?;
        let referrer = signature_manifest_bytes(
            &Descriptor::new(
                MediaType::from(BUNDLE_MEDIA_TYPE),
                bundle.len() as u64,
                bundle_digest.clone(),
            ),
            &Descriptor::new(
                MediaType::from(OCI_MANIFEST),
                inputs.len() as u64,
                inputs_digest.clone(),
            ),
            RESULT_PREDICATE_TYPE,
        );
        client
            .put_manifest(
                repository,
                &ManifestReference::Digest(sha256_digest(&referrer)),
                OCI_MANIFEST,
                &referrer,
            )
            .map_err(&failed)?;
        Ok(())
    }

    /// The results the fleet holds for `key`, trusted ones newest first. Inputs nobody
    /// published are no results, not an error.
    pub fn results(&self, key: &str, trusted: &[VerifyingKey]) -> Result<FleetResults, FleetError> {
        let tag = self.tag(key)?;
        let failed = self.failed(key);
        let client = self.remote.client();
        let repository = self.remote.repository();
        let inputs = Self::inputs_manifest(key);
        let inputs_digest = sha256_digest(&inputs);
        // The tag is not trusted to name the inputs manifest: the subject is computed.
        match client.get_manifest(repository, &tag, &[OCI_MANIFEST], MAX_MANIFEST_BYTES) {
            Ok(_) => {}
            Err(error) if error.is_not_found() => return Ok(FleetResults::default()),
            Err(error) => return Err(failed(error)),
        }
        let listed = client
            .referrers(repository, &inputs_digest, Some(BUNDLE_MEDIA_TYPE))
            .map_err(&failed)?;
        let mut results = FleetResults::default();
        for descriptor in listed.iter().take(MAX_RESULTS) {
            match self.read_result(descriptor, &inputs_digest, key, trusted) {
                Ok(Some(result)) => results.trusted.push(result),
                Ok(None) => results.ignored += 1,
                Err(error) if error.is_not_found() => results.ignored += 1,
                Err(error) => return Err(failed(error)),
            }
        }
        results.ignored += listed.len().saturating_sub(MAX_RESULTS);
        // RFC 3339 UTC with whole seconds sorts as text.
        results
            .trusted
            .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.drill.cmp(&a.drill)));
        Ok(results)
    }

    /// One referrer: `None` when it is not a trusted result about these inputs.
    fn read_result(
        &self,
        descriptor: &Descriptor,
        inputs_digest: &hermetic_registry::Digest,
        key: &str,
        trusted: &[VerifyingKey],
    ) -> Result<Option<FleetResult>, RegistryError> {
        let client = self.remote.client();
        let repository = self.remote.repository();
        let manifest = client.get_manifest(
            repository,
            &ManifestReference::Digest(descriptor.digest().clone()),
            &[OCI_MANIFEST],
            MAX_MANIFEST_BYTES,
        )?;
        let Ok(layer) = signature_layer(&manifest.bytes) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        client.fetch_blob(repository, &layer, &mut bytes)?;
        let Ok(bundle) = Bundle::from_json_limited(&bytes, MAX_ENTRY_BUNDLE_BYTES) else {
            return Ok(None);
        };
        let Ok(verified) = verify_dsse(&bundle, trusted, IN_TOTO_PAYLOAD_TYPE) else {
            return Ok(None);
        };
        let Ok(statement) = serde_json::from_slice::<ReadStatement>(&verified.payload) else {
            return Ok(None);
        };
        let about_these_inputs = statement.statement_type == crate::provenance::STATEMENT_TYPE
            && statement.predicate_type == RESULT_PREDICATE_TYPE
            && statement.predicate.cache_key == key
            && matches!(&statement.subject[..], [subject]
                if subject.digest.get("sha256").map(String::as_str) == Some(inputs_digest.digest()));
        Ok(about_these_inputs.then_some(statement.predicate))
    }

    /// Every set of inputs the fleet has results for (the cache keys among the tags).
    pub fn keys(&self) -> Result<Vec<String>, FleetError> {
        let tags = self
            .remote
            .client()
            .list_tags(self.remote.repository())
            .map_err(self.failed("tags"))?;
        Ok(tags
            .into_iter()
            .filter(|tag| self.tag(tag).is_ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_manifest_depends_on_the_key_alone() {
        let key = "a".repeat(64);
        let one = Fleet::inputs_manifest(&key);
        assert_eq!(one, Fleet::inputs_manifest(&key));
        assert_ne!(one, Fleet::inputs_manifest(&"b".repeat(64)));
        let text = String::from_utf8(one).unwrap();
        assert!(text.contains(FLEET_SCHEMA) && text.contains(&key), "{text}");
    }
}
