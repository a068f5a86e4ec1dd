//! The signed cache around one build: look the key up and restore a usable entry before
//! anything runs (the local store, then the remote cache when one is configured); after a
//! build, sign and store a result that may be cached, and push it when asked.
use std::path::PathBuf;

use hermetic_contract::build::{BuildRequest, CacheOptions};
use hermetic_contract::report::{
    BuildReport, BuildVerdict, CacheStatus, Digests, OutputReport, RemoteCacheReport,
    RemoteCacheStatus, RemotePush,
};

use super::BuildError;
use crate::archive::manifest::Manifest;
use crate::cache::entry::{
    builder_id, escaping_symlink, ArchiveDigests, Builder, EntryManifest, ENTRY_SCHEMA,
    VERDICT_REPRODUCIBLE, VERDICT_SINGLE_RUN,
};
use crate::cache::remote::{self, Remote, RemoteLookup, Unusable};
use crate::cache::store::DEFAULT_SCOPE;
use crate::cache::trust::signing_key;
use crate::cache::{
    restore, CacheKey, KeyInputs, Lookup, RestoreTargets, Restored, Scope, Store, Trust,
};
use crate::errors::Chain;
use crate::exit_code as exit;
use crate::sandbox::plan::{self, Plan};
use crate::sandbox::profile::Profile;
use crate::signing::{Password, SigningKey};

/// The cache as one build uses it: the store, the keys, the scope and the key, and the
/// remote cache when one is configured.
pub(super) struct CacheSession<'o> {
    pub(super) options: &'o CacheOptions,
    store: Store,
    trust: Trust,
    state_dir: PathBuf,
    scope: Scope,
    pub(super) key: CacheKey,
    inputs: KeyInputs,
    remote: Option<RemoteCache>,
}

/// The remote cache of a build: reachable, or set up in vain (the credentials of the
/// process that runs the build could not be read), which makes it unusable, not the build.
enum RemoteCache {
    // Boxed: the client is far larger than the other variant.
    Connected(Box<Remote>),
    Unusable { repository: String, reason: String },
}

impl RemoteCache {
    fn open(
        options: &hermetic_contract::build::RemoteCacheOptions,
        scope: &Scope,
    ) -> Result<Self, BuildError> {
        match Remote::connect(options, scope) {
            Ok(remote) => Ok(RemoteCache::Connected(Box::new(remote))),
            Err(error) if error.is_usage_error() => Err(error.into()),
            Err(error) => {
                let base = remote::parse_url(&options.url)?;
                Ok(RemoteCache::Unusable {
                    repository: format!("{base}/{}", scope.as_str()),
                    reason: Chain(&error).to_string(),
                })
            }
        }
    }

    fn report(&self, status: RemoteCacheStatus) -> RemoteCacheReport {
        let repository = match self {
            RemoteCache::Connected(remote) => remote.repository().to_string(),
            RemoteCache::Unusable { repository, .. } => repository.clone(),
        };
        RemoteCacheReport {
            repository,
            status,
            reason: None,
            manifest: None,
            signer: None,
            push: None,
            conflict: None,
        }
    }
}

/// An entry this build stored, and the key that signed it, for the push.
struct Stored {
    entry: EntryManifest,
    entry_dir: PathBuf,
    key: SigningKey,
}

impl<'o> CacheSession<'o> {
    pub(super) fn open(
        options: &'o CacheOptions,
        request: &BuildRequest,
        profile: &Profile,
        plan: &Plan,
    ) -> Result<Self, BuildError> {
        let scope = Scope::parse(options.scope.as_deref().unwrap_or(DEFAULT_SCOPE))?;
        let store = Store::open(&options.dir).map_err(BuildError::CacheUnusable)?;
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(crate::dirs::default_state_dir);
        let trust = Trust::load(&state_dir, &options.trust_keys)?;
        let inputs = KeyInputs::of_plan(profile, plan, &request.outputs, plan::ARCHIVE_ZSTD_LEVEL)?;
        let remote = match &options.remote {
            Some(remote) => Some(RemoteCache::open(remote, &scope)?),
            None => None,
        };
        Ok(Self {
            options,
            store,
            trust,
            state_dir,
            scope,
            key: inputs.key(),
            inputs,
            remote,
        })
    }

    /// Restores a usable entry to the artifact (and extract) paths, from the local store or
    /// else the remote cache, and returns true with the report finished; otherwise records
    /// the misses or refusals in `report.cache`.
    pub(super) fn lookup(&self, request: &BuildRequest, report: &mut BuildReport) -> bool {
        report.cache.key = Some(self.key.to_string());
        report.cache.scope = Some(self.scope.as_str().to_owned());
        report.cache.status = CacheStatus::Miss;
        if let Some(set_aside) = self.store.set_aside() {
            report.cache.reason = Some(format!(
                "the cache's layout could not be read: set aside in {} and started anew",
                set_aside.display()
            ));
        }
        let trusted = self.trust.keys_for(&self.scope);
        match restore(
            &self.store,
            &self.scope,
            &self.key,
            &trusted,
            request.single,
            targets(request),
        ) {
            Lookup::Hit(restored) => {
                report_hit(request, report, &restored);
                report.cache.remote = self
                    .remote
                    .as_ref()
                    .map(|remote| remote.report(RemoteCacheStatus::Skipped));
                return true;
            }
            Lookup::Miss { reason } => {
                if reason.is_some() {
                    report.cache.reason = reason;
                }
            }
            Lookup::Refused { error, quarantined } => {
                tracing::warn!("cache entry {} refused: {}", self.key, error.message());
                if quarantined.is_some() {
                    report.cache.status = CacheStatus::Quarantined;
                }
                report.cache.reason = Some(format!("{}: {}", error.reason(), error.message()));
                report.cache.step = Some(error.step());
                report.cache.quarantine = quarantined;
            }
        }
        self.lookup_remote(request, report)
    }

    /// The remote half of [`CacheSession::lookup`], after a local miss.
    fn lookup_remote(&self, request: &BuildRequest, report: &mut BuildReport) -> bool {
        let Some(remote_cache) = &self.remote else {
            return false;
        };
        let remote = match remote_cache {
            RemoteCache::Connected(remote) => remote,
            RemoteCache::Unusable { reason, .. } => {
                let mut remote_report = remote_cache.report(RemoteCacheStatus::Denied);
                remote_report.reason = Some(reason.clone());
                report.cache.remote = Some(remote_report);
                return false;
            }
        };
        let trusted = self.trust.keys_for(&self.scope);
        let lookup = remote::restore(
            remote,
            &self.store,
            &self.key,
            &trusted,
            request.single,
            targets(request),
            None,
        );
        let mut remote_report = remote_cache.report(RemoteCacheStatus::Miss);
        let hit = match lookup {
            RemoteLookup::Hit { restored, manifest } => {
                report_hit(request, report, &restored);
                remote_report.status = RemoteCacheStatus::Hit;
                remote_report.manifest = Some(manifest);
                remote_report.signer = Some(restored.signer);
                true
            }
            RemoteLookup::Miss { reason } => {
                remote_report.reason = Some(reason);
                false
            }
            RemoteLookup::Refused { error, quarantined } => {
                tracing::warn!(
                    "remote cache entry {} refused: {}",
                    remote.reference(&self.key),
                    error.message()
                );
                let reason = format!("{}: {}", error.reason(), error.message());
                if quarantined.is_some() {
                    remote_report.status = RemoteCacheStatus::Quarantined;
                    report.cache.status = CacheStatus::Quarantined;
                    report.cache.step = Some(error.step());
                    report.cache.quarantine = quarantined;
                    report.cache.reason = Some(reason.clone());
                }
                remote_report.reason = Some(reason);
                false
            }
            RemoteLookup::Unusable(unusable) => {
                tracing::warn!("remote cache {}: {unusable}", remote.repository());
                remote_report.status = match unusable {
                    Unusable::Unavailable(_) => RemoteCacheStatus::Unavailable,
                    Unusable::Denied(_) => RemoteCacheStatus::Denied,
                };
                remote_report.reason = Some(unusable.reason().to_owned());
                false
            }
        };
        report.cache.remote = Some(remote_report);
        hit
    }

    /// Stores the build's result if it may be cached: a reproducible dual run, or a single
    /// run when the options allow it; and only when readers of the scope will trust the
    /// signing key. Then pushes it when the remote cache is asked to publish.
    pub(super) fn store(&self, request: &BuildRequest, report: &mut BuildReport) {
        let stored = self.store_locally(request, report);
        if let Some(stored) = stored {
            self.push(stored, report);
        }
    }

    fn store_locally(&self, request: &BuildRequest, report: &mut BuildReport) -> Option<Stored> {
        let single_run = match report.verdict {
            BuildVerdict::Reproducible => false,
            BuildVerdict::Built if self.options.single_run => true,
            BuildVerdict::Built => {
                report.cache.reason =
                    Some("single-run results are stored only with --cache-single-run".to_owned());
                return None;
            }
            verdict @ (BuildVerdict::Nondeterministic | BuildVerdict::Failed) => {
                report.cache.reason = Some(format!("a {verdict} build is never cached"));
                return None;
            }
        };
        let output = report.output.as_ref()?;
        let manifest = Manifest::new(output.files.clone());
        if let Some((path, target)) = escaping_symlink(&manifest) {
            report.cache.reason = Some(format!(
                "not stored: output symlink {path} points outside the outputs (to {target})"
            ));
            return None;
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
                return None;
            }
        };
        let signer = key.verifying_key();
        if !self.trust.accepts(&self.scope, &signer) {
            report.cache.reason = Some(format!(
                "not stored: the signing key is not trusted for scope {} (pass it as \
                 --trust-key, or sign with a trusted --sign-key)",
                self.scope.as_str()
            ));
            return None;
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
                report.cache.entry = Some(path.clone());
                report.cache.signer = Some(signer.key_id());
                Some(Stored {
                    entry,
                    entry_dir: path,
                    key,
                })
            }
            Err(err) => {
                tracing::warn!("could not store the cache entry: {}", Chain(&err));
                report.cache.reason = Some(format!("not stored: {}", Chain(&err)));
                None
            }
        }
    }

    /// Pushes a stored result when the remote cache is asked to publish and the runner has
    /// a signing key of its own (the local key is this machine's: no other runner trusts
    /// it). A failed push is reported and changes nothing else.
    fn push(&self, stored: Stored, report: &mut BuildReport) {
        let Some(remote_cache) = &self.remote else {
            return;
        };
        if !self
            .options
            .remote
            .as_ref()
            .is_some_and(|remote| remote.push)
        {
            return;
        }
        let remote_report = report
            .cache
            .remote
            .get_or_insert_with(|| remote_cache.report(RemoteCacheStatus::Miss));
        if self.options.sign_key.is_none() {
            add_reason(
                remote_report,
                "not pushed: publishing needs a signing key of the runner's own (--sign-key)",
            );
            return;
        }
        let RemoteCache::Connected(remote) = remote_cache else {
            // The reason the registry cannot be used is already there.
            remote_report.push = Some(RemotePush::Failed);
            return;
        };
        let trusted = self.trust.keys_for(&self.scope);
        match remote::push(
            remote,
            &self.store,
            &stored.entry,
            &stored.entry_dir,
            &stored.key,
            &trusted,
            None,
        ) {
            Ok(pushed) => {
                if let Some(conflict) = &pushed.conflict {
                    tracing::warn!(
                        "cache conflict at {}: our entry manifest {} (archive {}), the \
                         registry's {} (archive {})",
                        remote.reference(&self.key),
                        conflict.ours.manifest,
                        conflict.ours.archive.as_deref().unwrap_or("unknown"),
                        conflict.theirs.manifest,
                        conflict.theirs.archive.as_deref().unwrap_or("unknown"),
                    );
                }
                remote_report.push = Some(pushed.outcome);
                remote_report.manifest = Some(pushed.manifest);
                remote_report.conflict = pushed.conflict;
            }
            Err(error) => {
                tracing::warn!("cache push failed: {}", Chain(&error));
                remote_report.push = Some(RemotePush::Failed);
                add_reason(remote_report, &Chain(&error).to_string());
            }
        }
    }
}

/// Adds why to what the remote report already says (the lookup's reason stays).
fn add_reason(report: &mut RemoteCacheReport, reason: &str) {
    report.reason = Some(match report.reason.take() {
        Some(earlier) => format!("{earlier}; {reason}"),
        None => reason.to_owned(),
    });
}

fn targets(request: &BuildRequest) -> RestoreTargets<'_> {
    RestoreTargets {
        artifact: Some(&request.artifact),
        extract: request.extract.as_deref(),
    }
}

/// The report of a build whose outputs were restored from the cache: nothing ran.
fn report_hit(request: &BuildRequest, report: &mut BuildReport, restored: &Restored) {
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
    report.cache.entry = Some(restored.entry_dir.clone());
    report.cache.signer = Some(restored.signer.clone());
}
