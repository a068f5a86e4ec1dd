//! A build as users ask for it (`hermetic build`, or a daemon job): run it twice (the
//! second time varied) and decide whether it is reproducible, or once when `single`;
//! either way the canonical run's outputs are archived. Produces the `hermetic.build/v1`
//! report; printing it is the caller's business.
//!
//! `execute` plans the build and decides its course; `cache` is the signed cache around it
//! (lookup and restore before, store after), `single` and `dual` the two ways it runs,
//! `outcome` what a run's end means for the report, `output` the archive kept (and
//! extracted), `partial` the archive while it is written, `log_relay` the canonical log.
mod cache;
mod dual;
mod log_relay;
mod outcome;
mod output;
mod partial;
mod single;

use std::io::Write;
use std::path::PathBuf;

use crate::archive::outpath::{OutputPath, OutputPathError};
use crate::cache::remote::RemoteSetupError;
use crate::cache::{KeyError, StoreError, TrustError};
use crate::exit_code as exit;
use crate::sandbox::cancel::Cancel;
use crate::sandbox::keep_failed::FailedTrees;
use crate::sandbox::plan::{self, PlanError, Request};
use crate::sandbox::profile::{self, ProfileError};

pub use hermetic_contract::build::{BuildRequest, CacheOptions, RemoteCacheOptions};
pub use hermetic_contract::report::{
    BuildMode, BuildReport, BuildVerdict, CacheReport, CacheStatus, Digests, LogReport,
    OutputReport, ProfileReport, RunReport, BUILD_REPORT_SCHEMA,
};

use cache::CacheSession;

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
    /// The cache directory cannot be used; the build runs uncached (see `execute`).
    #[error("--cache-dir: the cache cannot be used")]
    CacheUnusable(#[source] StoreError),
    #[error("cache keys")]
    CacheTrust(#[from] TrustError),
    #[error("cache key")]
    CacheKey(#[from] KeyError),
    #[error(transparent)]
    CacheRemote(#[from] RemoteSetupError),
    #[error(transparent)]
    Image(#[from] crate::image::root::UseError),
}

/// Where the canonical run's log (its stdout and stderr, in the order written) is copied;
/// called once. The other runs' output is kept internally and shown only when they fail.
pub type LogSink<'a> = &'a (dyn Fn() -> std::io::Result<Box<dyn Write + Send>> + Sync);

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
    // Held until the build is over: `image rm` refuses the image meanwhile.
    let (_image, plan) = plan_build(request, &profile, &outputs)?;
    let mut report = BuildReport {
        schema: BUILD_REPORT_SCHEMA.to_owned(),
        verdict: BuildVerdict::Failed,
        exit_code: exit::SANDBOX_FAILED,
        mode: if request.single {
            BuildMode::Single
        } else {
            BuildMode::Dual
        },
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
        cache: CacheReport::default(),
        source_left_out: Vec::new(),
        image: plan.image.clone(),
    };
    let cache = match &request.cache {
        Some(options) => match CacheSession::open(options, request, &profile, &plan) {
            Ok(session) => Some(session),
            // A cache that cannot be used never stops a build: it runs uncached, and says
            // why (a miss all the same for --require-cache).
            Err(BuildError::CacheUnusable(error)) => {
                let reason = crate::errors::error_chain(&error);
                tracing::warn!("building without the cache: {reason}");
                report.cache.status = CacheStatus::Disabled;
                report.cache.reason = Some(reason.clone());
                if options.require {
                    report.exit_code = exit::CACHE_MISS;
                    report.error = Some(format!(
                        "--require-cache: the cache cannot be used ({reason})"
                    ));
                    return Ok(report);
                }
                None
            }
            Err(other) => return Err(other),
        },
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
        single::build(request, &profile, &plan, report, log, cancel, keep_failed)?
    } else {
        dual::build(request, &profile, &plan, report, log, cancel, keep_failed)?
    };
    if let Some(cache) = &cache {
        cache.store(request, &mut report);
    }
    Ok(report)
}

/// The cache key `request` would be looked up by (`cache::key`), whether or not it uses
/// the cache: what "the same inputs" means to `hermetic drill run`, which never uses the
/// cache but compares a case with earlier results for the same key.
pub fn inputs_key(request: &BuildRequest) -> Result<crate::cache::CacheKey, BuildError> {
    let outputs = parse_outputs(&request.outputs)?;
    let profile = profile::load(&request.profile)?;
    // An image's digest is the key's toolchain.
    let (_image, plan) = plan_build(request, &profile, &outputs)?;
    let inputs = crate::cache::KeyInputs::of_plan(
        &profile,
        &plan,
        &request.outputs,
        plan::ARCHIVE_ZSTD_LEVEL,
    )?;
    Ok(inputs.key())
}

/// The image the request or profile names, held (the store's shared lock: keep it for as
/// long as the build uses the image), and the sandbox plan for `request`.
fn plan_build(
    request: &BuildRequest,
    profile: &profile::Profile,
    outputs: &[OutputPath],
) -> Result<(Option<crate::image::root::HeldImage>, plan::Plan), BuildError> {
    let image = crate::image::root::hold_for(request.image.as_deref(), profile.root.image())?;
    let image_root = image.as_ref().map(image_root);
    let plan = plan::plan(
        profile,
        &Request {
            command: &request.command,
            source: Some(&request.src),
            outputs: Some(outputs),
            source_date_epoch: request.source_date_epoch,
            image: image_root.as_ref(),
        },
    )?;
    Ok((image, plan))
}

/// What the planner needs of a held image.
pub(crate) fn image_root(held: &crate::image::root::HeldImage) -> plan::ImageRoot<'_> {
    plan::ImageRoot {
        tree: held.tree(),
        env: &held.env,
        working_dir: held.working_dir.as_deref(),
        reference: &held.pinned.reference,
        digest: held.pinned.digest.to_string(),
    }
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
