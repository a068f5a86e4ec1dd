//! The signed cache around one build: look the key up and restore a usable entry before
//! anything runs; after a build, sign and store a result that may be cached.
use std::path::PathBuf;

use hermetic_contract::build::{BuildRequest, CacheOptions};
use hermetic_contract::report::{BuildReport, BuildVerdict, CacheStatus, Digests, OutputReport};

use super::BuildError;
use crate::archive::manifest::Manifest;
use crate::cache::entry::{
    builder_id, escaping_symlink, ArchiveDigests, Builder, EntryManifest, ENTRY_SCHEMA,
    VERDICT_REPRODUCIBLE, VERDICT_SINGLE_RUN,
};
use crate::cache::store::DEFAULT_SCOPE;
use crate::cache::trust::signing_key;
use crate::cache::{restore, CacheKey, KeyInputs, Lookup, RestoreTargets, Scope, Store, Trust};
use crate::errors::Chain;
use crate::exit_code as exit;
use crate::sandbox::plan::{self, Plan};
use crate::sandbox::profile::Profile;
use crate::signing::Password;

/// The cache as one build uses it: the store, the keys, the scope and the key.
pub(super) struct CacheSession<'o> {
    pub(super) options: &'o CacheOptions,
    store: Store,
    trust: Trust,
    state_dir: PathBuf,
    scope: Scope,
    pub(super) key: CacheKey,
    inputs: KeyInputs,
}

impl<'o> CacheSession<'o> {
    pub(super) fn open(
        options: &'o CacheOptions,
        request: &BuildRequest,
        profile: &Profile,
        plan: &Plan,
    ) -> Result<Self, BuildError> {
        let scope = Scope::parse(options.scope.as_deref().unwrap_or(DEFAULT_SCOPE))?;
        let store = Store::open(&options.dir)?;
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(crate::dirs::default_state_dir);
        let trust = Trust::load(&state_dir, &options.trust_keys)?;
        let inputs = KeyInputs::of_plan(profile, plan, &request.outputs, plan::ARCHIVE_ZSTD_LEVEL)?;
        Ok(Self {
            options,
            store,
            trust,
            state_dir,
            scope,
            key: inputs.key(),
            inputs,
        })
    }

    /// Restores a usable entry to the artifact (and extract) paths and returns true with
    /// the report finished; otherwise records the miss or refusal in `report.cache`.
    pub(super) fn lookup(&self, request: &BuildRequest, report: &mut BuildReport) -> bool {
        report.cache.key = Some(self.key.to_string());
        report.cache.scope = Some(self.scope.as_str().to_owned());
        report.cache.status = CacheStatus::Miss;
        let targets = RestoreTargets {
            artifact: Some(&request.artifact),
            extract: request.extract.as_deref(),
        };
        let trusted = self.trust.keys_for(&self.scope);
        match restore(
            &self.store,
            &self.scope,
            &self.key,
            &trusted,
            request.single,
            targets,
        ) {
            Lookup::Hit(restored) => {
                let restored = *restored;
                let entry = &restored.entry;
                report.verdict = if entry.single_run {
                    BuildVerdict::Built
                } else {
                    BuildVerdict::Reproducible
                };
                report.exit_code = exit::SUCCESS;
                report.output = Some(OutputReport {
                    archive: request.artifact.clone(),
                    digest: Digests {
                        sha256: entry.archive.sha256.clone(),
                        blake3: entry.archive.blake3.clone(),
                    },
                    size: entry.archive.size,
                    manifest_blake3: entry.manifest.blake3_hex(),
                    flagged: None,
                    extracted_to: request.extract.clone(),
                    files: entry.manifest.files.clone(),
                });
                report.cache.status = CacheStatus::Hit;
                report.cache.entry = Some(restored.entry_dir);
                report.cache.signer = Some(restored.signer);
                true
            }
            Lookup::Miss { reason } => {
                report.cache.reason = reason;
                false
            }
            Lookup::Refused { error, quarantined } => {
                tracing::warn!("cache entry {} refused: {}", self.key, error.message());
                if quarantined.is_some() {
                    report.cache.status = CacheStatus::Quarantined;
                }
                report.cache.reason = Some(format!("{}: {}", error.reason(), error.message()));
                report.cache.step = Some(error.step());
                report.cache.quarantine = quarantined;
                false
            }
        }
    }

    /// Stores the build's result if it may be cached: a reproducible dual run, or a single
    /// run when the options allow it; and only when readers of the scope will trust the
    /// signing key.
    pub(super) fn store(&self, request: &BuildRequest, report: &mut BuildReport) {
        let single_run = match report.verdict {
            BuildVerdict::Reproducible => false,
            BuildVerdict::Built if self.options.single_run => true,
            BuildVerdict::Built => {
                report.cache.reason =
                    Some("single-run results are stored only with --cache-single-run".to_owned());
                return;
            }
            verdict @ (BuildVerdict::Nondeterministic | BuildVerdict::Failed) => {
                report.cache.reason = Some(format!("a {verdict} build is never cached"));
                return;
            }
        };
        let Some(output) = &report.output else {
            return;
        };
        let manifest = Manifest::new(output.files.clone());
        if let Some((path, target)) = escaping_symlink(&manifest) {
            report.cache.reason = Some(format!(
                "not stored: output symlink {path} points outside the outputs (to {target})"
            ));
            return;
        }
        let archive = ArchiveDigests {
            sha256: output.digest.sha256.clone(),
            blake3: output.digest.blake3.clone(),
            size: output.size,
        };
        // Decrypted only now (a hit never needs a private key), while the archive is
        // copied into the store: unlocking takes about as long as the copy (scrypt). A
        // staged copy that is not committed below is removed.
        let (key, staged) = std::thread::scope(|scope| {
            let staged = scope.spawn(|| self.store.stage(&request.artifact, &archive));
            let key = signing_key(
                &self.state_dir,
                self.options.sign_key.as_deref(),
                &Password::from_env(),
            );
            let staged = staged
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (key, staged)
        });
        let key = match key {
            Ok(key) => key,
            Err(err) => {
                report.cache.reason = Some(format!("not stored: {}", Chain(&err)));
                return;
            }
        };
        let signer = key.verifying_key();
        if !self.trust.accepts(&self.scope, &signer) {
            report.cache.reason = Some(format!(
                "not stored: the signing key is not trusted for scope {} (pass it as \
                 --trust-key, or sign with a trusted --sign-key)",
                self.scope.as_str()
            ));
            return;
        }
        let entry = EntryManifest {
            schema: ENTRY_SCHEMA.to_owned(),
            cache_key: self.key.clone(),
            key_inputs: self.inputs.clone(),
            scope: self.scope.as_str().to_owned(),
            verdict: if single_run {
                VERDICT_SINGLE_RUN
            } else {
                VERDICT_REPRODUCIBLE
            }
            .to_owned(),
            single_run,
            builder: Builder {
                id: builder_id(&signer),
                hermetic_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            archive,
            manifest,
            created_at: crate::timestamp::rfc3339(std::time::SystemTime::now()),
        };
        let bundle = entry.sign(&key);
        // A single-run entry gives way to a reproducible one for the same key.
        let replace = !single_run;
        match staged.and_then(|staged| staged.commit(&self.scope, &entry, &bundle, replace)) {
            Ok(path) => {
                report.cache.stored = true;
                report.cache.entry = Some(path);
                report.cache.signer = Some(signer.key_id());
            }
            Err(err) => {
                tracing::warn!("could not store the cache entry: {}", Chain(&err));
                report.cache.reason = Some(format!("not stored: {}", Chain(&err)));
            }
        }
    }
}
