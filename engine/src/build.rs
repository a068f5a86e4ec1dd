//! A build as users ask for it (`hermetic build`, or a daemon job): run it twice (the
//! second time varied) and decide whether it is reproducible, or once when `single`;
//! either way the canonical run's outputs are archived. Produces the `hermetic.build/v1`
//! report; printing it is the caller's business.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use serde::Serialize;

use crate::archive::extract::{extract_verified, ExtractLimits};
use crate::archive::manifest::{FileEntry, Manifest};
use crate::archive::outpath::{OutputPath, OutputPathError};
use crate::cache::entry::{
    builder_id, escaping_symlink, ArchiveDigests, Builder, EntryManifest, ENTRY_SCHEMA,
    VERDICT_REPRODUCIBLE, VERDICT_SINGLE_RUN,
};
use crate::cache::store::DEFAULT_SCOPE;
use crate::cache::trust::signing_key;
use crate::cache::{
    restore, CacheKey, KeyError, KeyInputs, Lookup, RestoreTargets, Scope, Store, StoreError,
    Trust, TrustError,
};
use crate::errors::{error_chain, Chain};
use crate::exit_code as exit;
use crate::repro::compare::{Difference, DifferenceKind};
use crate::repro::dual::{self, DualOptions, RunIo, RunName, RunRecord, SuspectedCause, Verdict};
use crate::repro::explain;
use crate::repro::vary::Varied;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::keep_failed::FailedTrees;
use crate::sandbox::launch::{self, AppliedLayers, BuildStatus, Launch, PackedOutputs, RunOutcome};
use crate::sandbox::plan::{self, PinReport, Plan, PlanError, Request};
use crate::sandbox::profile::{self, Profile, ProfileError};
use crate::sandbox::SandboxError;
use crate::signing::Password;

pub use hermetic_contract::build::{BuildRequest, CacheOptions};

/// Version of the build report. Changelog:
/// - hermetic.build/v1: first version (single and dual runs).
pub const BUILD_REPORT_SCHEMA: &str = "hermetic.build/v1";

/// How much of a non-canonical run's output is kept to show when it fails.
const CAPTURED_LOG_BYTES: usize = 64 * 1024;

/// A request that cannot be built as asked (a usage or configuration error, exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("--output {path}")]
    OutputPath {
        path: String,
        #[source]
        source: OutputPathError,
    },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("--extract {0}: already exists; name a new directory")]
    ExtractExists(PathBuf),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("--artifact {path}: {message}")]
    Artifact { path: PathBuf, message: String },
    #[error("failed to set up the build's output streams")]
    Streams(#[source] std::io::Error),
    #[error("--cache-dir")]
    CacheStore(#[from] StoreError),
    #[error("cache keys")]
    CacheTrust(#[from] TrustError),
    #[error("cache key")]
    CacheKey(#[from] KeyError),
}

/// Where the canonical run's log (its stdout and stderr, in the order written) is copied;
/// called once. The other runs' output is kept internally and shown only when they fail.
pub type LogSink<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Write + Send>> + Sync);

/// The canonical run's log as it was relayed: its digest goes into provenance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogReport {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub schema: &'static str,
    /// "built" (single) | "reproducible" | "nondeterministic" | "failed"
    pub verdict: &'static str,
    pub exit_code: i32,
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub profile: ProfileReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pins: Option<PinReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<AppliedLayers>,
    pub runs: Vec<RunReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub varied: Option<Vec<Varied>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Vec<Difference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspected_causes: Option<Vec<SuspectedCause>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain_report: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogReport>,
    pub cache: CacheReport,
}

/// What the cache did for a build.
#[derive(Debug, Default, Serialize)]
pub struct CacheReport {
    /// `hit` (restored, nothing ran), `miss` (no usable entry), `quarantined` (an entry
    /// was refused and quarantined; the build ran fresh) or `disabled`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whether this build's result was stored as a new entry.
    pub stored: bool,
    /// Why the entry was refused, the lookup missed, or the result was not stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The restore step that refused the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<PathBuf>,
    /// The entry restored or stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<PathBuf>,
    /// Key id of the key that signed the restored or stored entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProfileReport {
    pub name: String,
    pub origin: String,
    pub sha256: String,
    /// BLAKE3 of the rootfs tree, for profiles that use one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs_blake3: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub name: RunName,
    /// The command's exit code (128 + signal when killed, 124 on timeout); absent when
    /// the sandbox could not be set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<Digests>,
}

#[derive(Debug, Serialize)]
pub struct OutputReport {
    pub archive: PathBuf,
    pub digest: Digests,
    pub size: u64,
    pub manifest_blake3: String,
    /// Set when the archive is kept for inspection only ("nondeterministic"): it must not
    /// be cached, signed or shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extracted_to: Option<PathBuf>,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Digests {
    pub sha256: String,
    pub blake3: String,
}

impl From<&PackedOutputs> for Digests {
    fn from(packed: &PackedOutputs) -> Self {
        Digests {
            sha256: packed.sha256.clone(),
            blake3: packed.blake3.clone(),
        }
    }
}

/// Runs the build described by `request`. An error is a request that cannot be built as
/// asked; whatever happens once the build starts (a failed command, a sandbox error, a
/// nondeterministic result) is in the report, with its exit code.
/// `cancel`, when given, lets another thread kill the build's sandboxes; `keep_failed`,
/// when given, gets the build dir of every run whose command fails.
pub fn execute(
    request: &BuildRequest,
    log: LogSink<'_>,
    cancel: Option<&Cancel>,
    keep_failed: Option<&FailedTrees>,
) -> Result<BuildReport, BuildError> {
    let outputs = parse_outputs(&request.outputs)?;
    let profile = profile::load(&request.profile)?;
    if let Some(dest) = &request.extract {
        if dest.symlink_metadata().is_ok() {
            return Err(BuildError::ExtractExists(dest.clone()));
        }
    }
    let plan = plan::plan(
        &profile,
        &Request {
            command: &request.command,
            source: Some(&request.src),
            outputs: Some(&outputs),
            source_date_epoch: request.source_date_epoch,
        },
    )?;
    let mut report = BuildReport {
        schema: BUILD_REPORT_SCHEMA,
        verdict: "failed",
        exit_code: exit::SANDBOX_FAILED,
        mode: if request.single { "single" } else { "dual" },
        error: None,
        profile: ProfileReport {
            name: profile.name.clone(),
            origin: profile.origin.clone(),
            sha256: profile.sha256.clone(),
            rootfs_blake3: plan.rootfs_blake3.clone(),
        },
        pins: Some(plan.pins()),
        sandbox: None,
        runs: Vec::new(),
        varied: None,
        differences: None,
        suspected_causes: None,
        explain_report: None,
        output: None,
        log: None,
        cache: CacheReport {
            status: "disabled",
            ..CacheReport::default()
        },
    };
    let cache = match &request.cache {
        Some(options) => Some(CacheSession::open(options, request, &profile, &plan)?),
        None => None,
    };
    if let Some(cache) = &cache {
        if cache.lookup(request, &mut report) {
            return Ok(report);
        }
        if cache.options.require {
            report.exit_code = exit::CACHE_MISS;
            report.error = Some(format!(
                "--require-cache: no usable cache entry for key {}{}",
                cache.key,
                report
                    .cache
                    .reason
                    .as_ref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            ));
            return Ok(report);
        }
    }
    let mut report = if request.single {
        build_single(request, &profile, &plan, report, log, cancel, keep_failed)?
    } else {
        build_dual(request, &profile, &plan, report, log, cancel, keep_failed)?
    };
    if let Some(cache) = &cache {
        cache.store(request, &mut report);
    }
    Ok(report)
}

/// The cache as one build uses it: the store, the keys, the scope and the key.
struct CacheSession<'o> {
    options: &'o CacheOptions,
    store: Store,
    trust: Trust,
    state_dir: PathBuf,
    scope: Scope,
    key: CacheKey,
    inputs: KeyInputs,
}

impl<'o> CacheSession<'o> {
    fn open(
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
    fn lookup(&self, request: &BuildRequest, report: &mut BuildReport) -> bool {
        report.cache.key = Some(self.key.to_string());
        report.cache.scope = Some(self.scope.as_str().to_owned());
        report.cache.status = "miss";
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
                    "built"
                } else {
                    "reproducible"
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
                report.cache.status = "hit";
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
                    report.cache.status = "quarantined";
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
    fn store(&self, request: &BuildRequest, report: &mut BuildReport) {
        let single_run = match report.verdict {
            "reproducible" => false,
            "built" if self.options.single_run => true,
            "built" => {
                report.cache.reason =
                    Some("single-run results are stored only with --cache-single-run".to_owned());
                return;
            }
            _ => {
                report.cache.reason = Some(format!("a {} build is never cached", report.verdict));
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

fn build_single(
    request: &BuildRequest,
    profile: &Profile,
    plan: &Plan,
    mut report: BuildReport,
    log: LogSink<'_>,
    cancel: Option<&Cancel>,
    keep_failed: Option<&FailedTrees>,
) -> Result<BuildReport, BuildError> {
    let partial = PartialArtifact::create(&request.artifact, "")?;
    let artifact = partial.file.try_clone().map_err(|err| partial.error(err))?;
    let relay = LogRelay::start(log()).map_err(BuildError::Streams)?;
    let (stdout, stderr) = relay.streams().map_err(BuildError::Streams)?;
    let outcome = launch::run(Launch {
        spec: &plan.spec,
        cgroup_policy: profile.cgroup,
        stdout,
        stderr,
        artifact: Some(artifact),
        cancel,
        keep_failed: keep_failed.map(|trees| (trees, RunName::A.kept_tree_name())),
        early: None,
    });
    report.log = Some(relay.finish());
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            report.error = Some(error_chain(&err));
            return Ok(report);
        }
    };
    report.sandbox = Some(outcome.layers.clone());
    report.runs.push(run_report(RunName::A, Ok(&outcome)));
    match judge(&outcome) {
        Err(message) => {
            report.exit_code = exit::BUILD_FAILED;
            report.error = Some(message);
        }
        Ok(packed) => keep_archive(
            request,
            partial,
            packed,
            None,
            "built",
            exit::SUCCESS,
            &mut report,
        ),
    }
    Ok(report)
}

fn build_dual(
    request: &BuildRequest,
    profile: &Profile,
    plan: &Plan,
    mut report: BuildReport,
    log: LogSink<'_>,
    cancel: Option<&Cancel>,
    keep_failed: Option<&FailedTrees>,
) -> Result<BuildReport, BuildError> {
    let partials: Mutex<Vec<(RunName, PartialArtifact)>> = Mutex::new(Vec::new());
    let captured: Mutex<Vec<(RunName, JoinHandle<Vec<u8>>)>> = Mutex::new(Vec::new());
    let canonical_log: Mutex<Option<LogRelay>> = Mutex::new(None);
    let io = |name: RunName| -> std::io::Result<RunIo> {
        let suffix = match name {
            RunName::A => "",
            RunName::B => ".run-b",
            RunName::C => ".run-c",
        };
        let partial =
            PartialArtifact::create(&request.artifact, suffix).map_err(std::io::Error::other)?;
        let artifact = partial.file.try_clone()?;
        let archive_path = partial.temp.clone();
        partials.lock().expect("not poisoned").push((name, partial));
        let (stdout, stderr) = if name == RunName::A {
            let relay = LogRelay::start(log())?;
            let streams = relay.streams()?;
            *canonical_log.lock().expect("not poisoned") = Some(relay);
            streams
        } else {
            // The other runs would interleave with the canonical log; keep their tail for
            // a failure report instead.
            let (reader, writer) = std::io::pipe()?;
            let handle = std::thread::spawn(move || keep_tail(reader));
            captured.lock().expect("not poisoned").push((name, handle));
            (OwnedFd::from(writer.try_clone()?), OwnedFd::from(writer))
        };
        Ok(RunIo {
            stdout,
            stderr,
            artifact,
            archive_path,
        })
    };
    // The variation is derived from the inputs, so rebuilding the same inputs varies the
    // same way and reports (and provenance) stay comparable.
    let seed = {
        let spec = serde_json::to_vec(&plan.spec).unwrap_or_default();
        let digest = blake3::hash(&spec);
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
    };
    let options = DualOptions {
        cgroup_policy: profile.cgroup,
        cancel,
        seed,
        noise_pass: true,
        keep_failed,
    };
    let outcome = dual::run(&plan.spec, &options, &io).map_err(BuildError::Streams)?;
    let logs: Vec<(RunName, Vec<u8>)> = captured
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|(name, handle)| (name, handle.join().unwrap_or_default()))
        .collect();
    let mut partials = partials.into_inner().expect("not poisoned");
    report.log = canonical_log
        .into_inner()
        .expect("not poisoned")
        .map(LogRelay::finish);

    report.varied = Some(outcome.varied.clone());
    report.sandbox = outcome.runs[0]
        .result
        .as_ref()
        .ok()
        .map(|o| o.layers.clone());
    for record in &outcome.runs {
        let mut run = run_report(record.name, record.result.as_ref());
        run.output_digest = record.packed().map(Digests::from);
        report.runs.push(run);
    }
    let mut take_a = || {
        let index = partials
            .iter()
            .position(|(name, _)| *name == RunName::A)
            .expect("run a has an artifact");
        partials.swap_remove(index).1
    };
    match outcome.verdict {
        Verdict::Failed => {
            let (code, error) = failure_of(&outcome.runs);
            report.exit_code = code;
            report.error = Some(error);
            for (name, log) in &logs {
                let failed = outcome
                    .runs
                    .iter()
                    .any(|r| r.name == *name && !dual::command_succeeded(r));
                if failed && !log.is_empty() {
                    tracing::warn!(
                        "output of run {name:?} (last {} bytes):\n{}",
                        log.len(),
                        String::from_utf8_lossy(log)
                    );
                }
            }
        }
        Verdict::Reproducible => {
            let packed = outcome.runs[0]
                .packed()
                .expect("reproducible runs have outputs")
                .clone();
            keep_archive(
                request,
                take_a(),
                &packed,
                None,
                "reproducible",
                exit::SUCCESS,
                &mut report,
            );
        }
        Verdict::Nondeterministic => {
            let packed = outcome.runs[0]
                .packed()
                .expect("compared runs have outputs")
                .clone();
            if request.explain {
                match explain_differences(request, &outcome.differences, &outcome.runs) {
                    Ok(path) => report.explain_report = Some(path),
                    Err(err) => tracing::warn!("could not write the explanation: {}", Chain(&err)),
                }
            }
            report.differences = Some(outcome.differences.clone());
            report.suspected_causes = Some(outcome.suspected.clone());
            keep_archive(
                request,
                take_a(),
                &packed,
                Some("nondeterministic"),
                "nondeterministic",
                exit::NONDETERMINISTIC,
                &mut report,
            );
        }
    }
    Ok(report)
}

/// Moves the canonical archive into place and fills in the report (and extracts it when
/// asked; never a flagged one).
fn keep_archive(
    request: &BuildRequest,
    partial: PartialArtifact,
    packed: &PackedOutputs,
    flagged: Option<&'static str>,
    verdict: &'static str,
    code: i32,
    report: &mut BuildReport,
) {
    let archive = match partial.commit() {
        Ok(archive) => archive,
        Err(err) => {
            report.exit_code = exit::SANDBOX_FAILED;
            report.error = Some(error_chain(&err));
            return;
        }
    };
    let mut output = OutputReport {
        archive,
        digest: packed.into(),
        size: packed.size,
        manifest_blake3: packed.manifest.blake3_hex(),
        flagged,
        extracted_to: None,
        files: packed.manifest.files.clone(),
    };
    report.verdict = verdict;
    report.exit_code = code;
    if let (Some(dest), None) = (&request.extract, flagged) {
        match extract(&output.archive, packed, dest) {
            Ok(()) => output.extracted_to = Some(dest.clone()),
            Err(message) => {
                report.verdict = "failed";
                report.exit_code = exit::SANDBOX_FAILED;
                report.error = Some(message);
            }
        }
    }
    report.output = Some(output);
}

/// The exit code and message of a failed dual build: a sandbox error wins (5), else the
/// commands' statuses (1), all shown.
fn failure_of(runs: &[RunRecord]) -> (i32, String) {
    let mut parts = Vec::new();
    let mut code = exit::BUILD_FAILED;
    for record in runs {
        let part = match &record.result {
            Err(err) => {
                code = exit::SANDBOX_FAILED;
                format!("run {:?}: {}", record.name, Chain(err))
            }
            Ok(outcome) => match judge(outcome) {
                Ok(_) => format!("run {:?}: succeeded", record.name),
                Err(message) => format!("run {:?}: {message}", record.name),
            },
        };
        parts.push(part);
    }
    let only_one = runs.iter().filter(|r| dual::command_succeeded(r)).count() == 1;
    let prefix = if only_one {
        "only one run failed (itself a sign of nondeterminism); "
    } else {
        ""
    };
    (code, format!("{prefix}{}", parts.join("; ")))
}

/// Writes the explanation next to the artifact: diffoscope's text report when diffoscope
/// is installed, else the built-in per-file summary.
fn explain_differences(
    request: &BuildRequest,
    differences: &[Difference],
    runs: &[RunRecord],
) -> std::io::Result<PathBuf> {
    const MAX_FILES: usize = 10;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
    const MAX_REPORT: u64 = 4 << 20;
    let wanted: BTreeSet<String> = differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::Content)
        .take(MAX_FILES)
        .map(|d| d.path.clone())
        .collect();
    let read = |name: RunName| -> std::io::Result<BTreeMap<String, Vec<u8>>> {
        let record = runs
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| std::io::Error::other(format!("run {name:?} is missing")))?;
        explain::read_archived_files(&record.archive_path, &wanted, 64 << 20)
    };
    let (files_a, files_b) = (read(RunName::A)?, read(RunName::B)?);

    let diffoscope_report = sibling(&request.artifact, ".diffoscope.txt");
    let scratch = std::env::temp_dir().join(format!("hermetic-explain-{}", std::process::id()));
    let diffoscope = (|| -> std::io::Result<bool> {
        let (a, b) = (
            write_tree(&scratch.join("a"), &files_a)?,
            write_tree(&scratch.join("b"), &files_b)?,
        );
        Ok(matches!(
            explain::run_diffoscope(&a, &b, &diffoscope_report, TIMEOUT, MAX_REPORT),
            Some(Ok(())) if diffoscope_report.exists()
        ))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    if diffoscope? {
        return Ok(diffoscope_report);
    }
    let summary_path = sibling(&request.artifact, ".explain.txt");
    let mut summary =
        String::from("hermetic: built-in explanation (install diffoscope for a full report)\n\n");
    let empty = Vec::new();
    for path in &wanted {
        let a = files_a.get(path).unwrap_or(&empty);
        let b = files_b.get(path).unwrap_or(&empty);
        summary.push_str(&explain::summarise_file(path, a, b));
    }
    std::fs::write(&summary_path, summary)?;
    Ok(summary_path)
}

fn write_tree(root: &Path, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    for (path, content) in files {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
    }
    Ok(root.to_path_buf())
}

fn sibling(artifact: &Path, suffix: &str) -> PathBuf {
    let mut name = artifact.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    artifact.with_file_name(name)
}

/// Copies a run's log to the caller's sink while hashing it. One pipe serves as both
/// stdout and stderr, so the log keeps the order in which the build wrote it.
struct LogRelay {
    writer: std::io::PipeWriter,
    thread: JoinHandle<LogReport>,
}

impl LogRelay {
    fn start(sink: std::io::Result<Box<dyn Write + Send>>) -> std::io::Result<Self> {
        let mut sink = sink?;
        let (mut reader, writer) = std::io::pipe()?;
        let thread = std::thread::spawn(move || {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            let mut bytes = 0u64;
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                bytes += n as u64;
                // A sink that stops accepting (a closed terminal) must not stop the build.
                let _ = sink.write_all(&buffer[..n]);
            }
            let _ = sink.flush();
            LogReport {
                sha256: hex::encode(hasher.finalize()),
                bytes,
            }
        });
        Ok(LogRelay { writer, thread })
    }

    fn streams(&self) -> std::io::Result<(OwnedFd, OwnedFd)> {
        Ok((
            OwnedFd::from(self.writer.try_clone()?),
            OwnedFd::from(self.writer.try_clone()?),
        ))
    }

    /// Waits for the log's end (every copy of the pipe closed) and returns its digest.
    fn finish(self) -> LogReport {
        drop(self.writer);
        self.thread.join().unwrap_or_default()
    }
}

fn keep_tail(mut reader: std::io::PipeReader) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > CAPTURED_LOG_BYTES {
            kept.drain(..kept.len() - CAPTURED_LOG_BYTES);
        }
    }
    kept
}

/// The build's outputs when it succeeded, else why it failed.
fn judge(outcome: &RunOutcome) -> Result<&PackedOutputs, String> {
    if let Some((program, errno)) = &outcome.exec_failure {
        return Err(format!(
            "cannot execute `{program}` in the sandbox: {}",
            std::io::Error::from_raw_os_error(*errno)
        ));
    }
    match outcome.status {
        BuildStatus::Exited(0) => {}
        BuildStatus::Exited(code) => {
            return Err(format!("the build command exited with status {code}"))
        }
        BuildStatus::Signaled(signal) => {
            return Err(format!("the build command was killed by signal {signal}"))
        }
        BuildStatus::TimedOut => {
            return Err("the build exceeded the profile's timeout and was killed".into())
        }
    }
    match &outcome.outputs {
        Some(Ok(packed)) => Ok(packed),
        Some(Err(message)) => Err(message.clone()),
        None => Err("the sandbox reported no outputs".into()),
    }
}

fn run_report(name: RunName, outcome: Result<&RunOutcome, &SandboxError>) -> RunReport {
    match outcome {
        Err(err) => RunReport {
            name,
            exit_status: None,
            signal: None,
            timed_out: false,
            duration_ms: 0,
            setup_ms: None,
            error: Some(error_chain(&err)),
            output_digest: None,
        },
        Ok(outcome) => RunReport {
            name,
            exit_status: Some(outcome.status.shell_code()),
            signal: match outcome.status {
                BuildStatus::Signaled(signal) => Some(signal),
                _ => None,
            },
            timed_out: outcome.status == BuildStatus::TimedOut,
            duration_ms: outcome.duration.as_millis() as u64,
            setup_ms: outcome.setup.map(|d| d.as_secs_f64() * 1000.0),
            error: judge(outcome).err(),
            output_digest: None,
        },
    }
}

fn extract(archive: &Path, packed: &PackedOutputs, dest: &Path) -> Result<(), String> {
    let file = File::open(archive)
        .map_err(|err| format!("failed to open {}: {err}", archive.display()))?;
    extract_verified(
        std::io::BufReader::new(file),
        &packed.manifest,
        dest,
        &ExtractLimits::default(),
    )
    .map(|_| ())
    .map_err(|err| {
        format!(
            "failed to extract the outputs into {}: {}",
            dest.display(),
            Chain(&err)
        )
    })
}

fn parse_outputs(raw: &[String]) -> Result<Vec<OutputPath>, BuildError> {
    let default = ["out".to_string()];
    let raw = if raw.is_empty() { &default[..] } else { raw };
    raw.iter()
        .map(|path| {
            OutputPath::parse(path).map_err(|source| BuildError::OutputPath {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

/// An archive while it is written: a temporary file beside the destination, renamed into
/// place only when it is kept, removed otherwise. Nobody ever sees half an archive.
struct PartialArtifact {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartialArtifact {
    fn create(dest: &Path, run_suffix: &str) -> Result<Self, BuildError> {
        let artifact_error = |message: String| BuildError::Artifact {
            path: dest.to_path_buf(),
            message,
        };
        let name = dest
            .file_name()
            .ok_or_else(|| artifact_error("not a file name".into()))?;
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(artifact_error(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        remove_stale_partials(&dir, &name.to_string_lossy());
        let temp = dir.join(format!(
            ".{}{run_suffix}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp)
            .map_err(|err| artifact_error(format!("failed to create {}: {err}", temp.display())))?;
        Ok(PartialArtifact {
            file,
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    fn error(&self, err: std::io::Error) -> BuildError {
        BuildError::Artifact {
            path: self.dest.clone(),
            message: err.to_string(),
        }
    }

    fn commit(mut self) -> std::io::Result<PathBuf> {
        self.file.sync_all()?;
        std::fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        Ok(self.dest.clone())
    }
}

/// Removes the partial archives for `name` in `dir` that a killed build left behind (a
/// process that died before its `Drop` ran: SIGKILL, a crash, a killed daemon): those whose
/// writer's pid is gone. The next build of the same artifact sweeps them, with the same
/// file access it creates its own with.
fn remove_stale_partials(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes = ["", ".run-b", ".run-c"].map(|suffix| format!(".{name}{suffix}.partial-"));
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let writer = prefixes
            .iter()
            .find_map(|prefix| file_name.strip_prefix(prefix.as_str()))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = writer {
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
            if !alive && is_file {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for PartialArtifact {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
