//! The cache-poisoning drill (`hermetic drill poison`, docs/drills-poison.md): would this
//! deployment's cache, with its keys (and its registry), refuse a poisoned entry?
//!
//! It never attacks the real entries. The real store is copied into a scratch directory
//! beside it; a real build (`hermetic build`, through the caller's [`DrillHost`]) stores
//! an entry there in a scope of the drill's own (`drill-<id>`), signed by a throwaway key
//! (the scratch state dir's local key) that only the drill trusts; with `--sign-key`
//! the same entry signed by the operator's key is attacked too, read with the operator's
//! trusted keys. Then each attack of the catalog ([`local::CATALOG`], and
//! [`remote::CATALOG`] against a scratch repository `REPO/drill-<id>` when a registry is
//! configured) is crafted against a fresh copy of that entry and run as a real restore,
//! by the functions builds use (`cache::restore`, `cache::remote::restore`), and judged
//! ([`judge`]): refused at the expected step, quarantined with a reason, an event logged,
//! the destination untouched, the next lookup a miss. Once per drill a real build runs
//! over a poisoned entry and must give the honest bytes. The scratch directory, and the
//! scratch repository's tags where the registry allows deletion, are removed at the end.
mod deployment;
mod judge;
mod local;
pub mod rawtar;
mod remote;
mod scratch;
mod subject;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use hermetic_contract::build::{BuildRequest, CacheOptions, RemoteCacheOptions};
use hermetic_contract::report::{
    AttackOutcome, AttackResult, BuildReport, CacheStatus, DrillKind, DrillReport, Finding,
    DRILL_REPORT_SCHEMA,
};

pub use deployment::{
    CACHE_DIR_OWNED_BY_ANOTHER_USER, CACHE_DIR_WRITABLE_BY_OTHERS, TRUSTED_KEY_UNREADABLE,
    TRUSTED_SCOPE_WRITABLE_BY_UNTRUSTED_KEY,
};
pub use remote::ScratchTags;

use crate::cache::entry::EntryManifest;
use crate::cache::trust::signing_key;
use crate::cache::{restore, CacheKey, Lookup, RestoreTargets, Scope, Store, StoreError};
use crate::cache::{ARCHIVE_FILE, BUNDLE_FILE};
use crate::errors::Chain;
use crate::exit_code as exit;
use crate::signing::{Bundle, Password, SigningKey, VerifyingKey};
use crate::timestamp::rfc3339;
use judge::{Before, Seen};
use local::{LocalAttack, Readers};
use scratch::Scratch;
use subject::{Subject, WorkDir};

/// `check` of the finding that the registry kept scratch tags it was asked to delete.
pub const SCRATCH_TAGS_LEFT: &str = "scratch-tags-left";

/// `target` of an attack on the local store, and on the registry.
pub const TARGET_LOCAL: &str = "local";
pub const TARGET_REMOTE: &str = "remote";
/// Prefix of the names of the attacks on the entry the operator's key signed.
pub const OPERATOR_KEY_PREFIX: &str = "operator-key/";

/// One attack of the catalog, as docs/drills-poison.md lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    pub name: &'static str,
    /// [`TARGET_LOCAL`] or [`TARGET_REMOTE`].
    pub target: &'static str,
    /// The rows of docs/restore-threats.md §7 it plays (remote attacks: none).
    pub rows: &'static str,
    /// The step that must refuse it, and the reason it gives.
    pub step: hermetic_contract::report::RestoreStep,
    pub reason: &'static str,
}

/// Every attack the drill runs, in order (with `--sign-key`, the local ones run twice).
pub fn catalog() -> Vec<CatalogEntry> {
    let local = local::CATALOG.iter().map(|attack| CatalogEntry {
        name: attack.name,
        target: TARGET_LOCAL,
        rows: attack.rows,
        step: attack.step,
        reason: attack.reason,
    });
    local.chain(remote::catalog()).collect()
}

/// What the drill attacks, and with which keys.
pub struct PoisonOptions {
    /// The deployment's cache dir: copied, never written.
    pub cache_dir: PathBuf,
    /// Where the scratch directory goes; beside the cache dir when absent.
    pub scratch_parent: Option<PathBuf>,
    /// The deployment's trusted keys (`--trust-key`, the config's).
    pub trust_keys: Vec<PathBuf>,
    /// The operator's signing key: when given, an entry it signs is attacked too.
    pub sign_key: Option<PathBuf>,
    /// The deployment's state dir (its local key is looked at, never created).
    pub state_dir: PathBuf,
    /// The deployment's registry: its scratch repository `REPO/drill-<id>` is attacked.
    pub remote: Option<RemoteCacheOptions>,
    /// Directories (as the build sees them, e.g. under /usr) copied into the drill's
    /// entry, so that its attacks run on an entry as large as the deployment's (symlinks
    /// in them are left out).
    pub payload: Vec<PathBuf>,
    /// The profile of the drill's builds.
    pub profile: String,
    /// Who runs the drill, for the report.
    pub runner: String,
}

/// What the drill needs from its caller.
pub trait DrillHost {
    /// Runs a build exactly as `hermetic build` does (the drill's first build makes the
    /// entry it attacks; its last checks that a build over a poisoned entry gives the
    /// honest bytes).
    fn build(&mut self, request: &BuildRequest) -> Result<BuildReport, String>;

    /// Called once each attack is judged, in catalog order.
    fn judged(&mut self, _attack: &AttackResult) {}
}

/// Why the drill could not run (not an attack that got through: those are `accepted`).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("the cache dir {path} cannot be drilled")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to prepare the drill's scratch directory at {path}")]
    Scratch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the scratch copy of the cache")]
    Store(#[from] StoreError),
    #[error("the drill's build ({step}) did not give an entry to attack: {reason}")]
    Build { step: &'static str, reason: String },
    #[error("the drill's key or --sign-key")]
    Key(#[from] crate::cache::TrustError),
    #[error(
        "the honest entry does not restore ({signer}), so no refusal would mean anything: {reason}"
    )]
    Control { signer: String, reason: String },
    #[error("the drill's scratch repository")]
    RemoteSetup(#[from] crate::cache::remote::RemoteSetupError),
    #[error("the drill's scratch repository {repository}: {step}: {reason}")]
    Registry {
        repository: String,
        step: &'static str,
        reason: String,
    },
}

fn scratch_error(path: &Path) -> impl Fn(io::Error) -> DrillError + '_ {
    move |source| DrillError::Scratch {
        path: path.to_owned(),
        source,
    }
}

/// Runs the drill; the report lists every attack (in catalog order) and every finding.
/// `remote_tags` learns what happened to the scratch repository's tags.
pub fn run(
    options: &PoisonOptions,
    password: &Password,
    host: &mut dyn DrillHost,
    remote_tags: &mut ScratchTags,
) -> Result<DrillReport, DrillError> {
    let started = SystemTime::now();
    let id = drill_id(started);
    let mut findings = Vec::new();
    let operator_keys = deployment::trusted_keys(&options.trust_keys, &mut findings);
    deployment::scope_trust(
        &options.cache_dir,
        &options.state_dir,
        &operator_keys,
        &mut findings,
    );
    deployment::cache_dir_permissions(&options.cache_dir, &mut findings);
    let cache_meta = fs::metadata(&options.cache_dir).map_err(|source| DrillError::CacheDir {
        path: options.cache_dir.clone(),
        source,
    })?;
    if !cache_meta.is_dir() {
        return Err(DrillError::CacheDir {
            path: options.cache_dir.clone(),
            source: io::Error::from(io::ErrorKind::NotADirectory),
        });
    }
    let parent = match &options.scratch_parent {
        Some(parent) => parent.clone(),
        None => beside(&options.cache_dir),
    };
    let scratch = Scratch::create(&parent, &id)?;
    let cache_copy = scratch.path("cache");
    scratch::copy_tree(&options.cache_dir, &cache_copy).map_err(scratch_error(&cache_copy))?;
    let store = Store::open(&cache_copy)?;
    let scope = Scope::parse(&format!("drill-{id}"))?;

    let drill = Drill::prepare(options, &scratch, store, scope, host)?;
    // The drill's key, read again from its scratch state dir: a signing key is not Clone.
    let drill_signer = signing_key(&drill.state_dir, None, &Password::new(Vec::new()))?;
    let mut subjects = vec![drill.subject_signed_by(
        drill_signer,
        [&[drill.drill_key.verifying_key()][..], &operator_keys].concat(),
        "",
    )?];
    if let Some(path) = &options.sign_key {
        let operator = signing_key(&drill.state_dir, Some(path), password)?;
        subjects.push(drill.subject_signed_by(
            operator,
            operator_keys.clone(),
            OPERATOR_KEY_PREFIX,
        )?);
    }

    let mut attacks = Vec::new();
    for (subject, prefix) in &subjects {
        control(subject, &drill.work_root)?;
        for attack in local::CATALOG {
            let result = run_local(subject, attack, prefix, &drill.work_root);
            host.judged(&result);
            attacks.push(result);
        }
    }
    if let Some(remote) = &options.remote {
        let (subject, _) = &subjects[0];
        let results = remote::run(remote, subject, &drill.work_root, host, remote_tags)?;
        attacks.extend(results);
    }
    for (tag, why) in &remote_tags.left {
        findings.push(Finding {
            check: SCRATCH_TAGS_LEFT.to_owned(),
            path: remote_tags
                .repository
                .as_ref()
                .map(|repository| format!("{repository}:{tag}")),
            detail: format!(
                "the registry did not delete the drill's scratch tag {tag} ({why}); enable \
                 deletion (distribution: REGISTRY_STORAGE_DELETE_ENABLED=true) or remove the \
                 drill-* repositories by hand"
            ),
        });
    }
    let (first, _) = &subjects[0];
    if !first
        .honest_archive_intact()
        .map_err(scratch_error(&first.honest_archive))?
    {
        return Err(DrillError::Scratch {
            path: first.honest_archive.clone(),
            source: io::Error::other("an attack changed the drill's honest copy of the archive"),
        });
    }
    let fresh = drill.fresh_build(first, host)?;
    if let Err(problem) = fresh {
        for attack in &mut attacks {
            attack.outcome = AttackOutcome::Accepted;
            attack.detail.push_str(&format!("; {problem}"));
        }
    }
    drop(subjects);
    drop(drill);
    drop(scratch);

    let passed = attacks
        .iter()
        .all(|attack| attack.outcome == AttackOutcome::Refused);
    Ok(DrillReport {
        schema: DRILL_REPORT_SCHEMA.to_owned(),
        kind: DrillKind::Poison,
        id,
        runner: options.runner.clone(),
        started: rfc3339(started),
        finished: rfc3339(SystemTime::now()),
        passed,
        exit_code: if passed {
            exit::SUCCESS
        } else {
            exit::NONDETERMINISTIC
        },
        cases: Vec::new(),
        attacks,
        findings,
    })
}

/// `<unix seconds>-<pid>`: unique per drill on a machine, and a valid scope and
/// repository component.
fn drill_id(started: SystemTime) -> String {
    let secs = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}-{}", std::process::id())
}

/// The drill's build: [`local::BUILD_SCRIPT`], then the payload copied into
/// `out/zz-payload/<n>` (after the entries the hostile archives are written against).
fn build_script(payload: &[PathBuf]) -> String {
    let mut script = local::BUILD_SCRIPT.to_owned();
    if !payload.is_empty() {
        script.push_str(" && mkdir -p out/zz-payload");
        for (n, dir) in payload.iter().enumerate() {
            let quoted = dir.to_string_lossy().replace('\'', "'\\''");
            script.push_str(&format!(" && cp -r '{quoted}' out/zz-payload/{n}"));
        }
        script.push_str(" && find out/zz-payload -type l -delete");
    }
    script
}

/// The directory the cache dir is in (the scratch copy goes on the same file system).
fn beside(cache_dir: &Path) -> PathBuf {
    match cache_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The drill's build and the honest entry it stored.
struct Drill<'s> {
    store: Store,
    scope: Scope,
    key: CacheKey,
    entry: EntryManifest,
    /// The entry's bundle as the build signed it.
    bundle: Bundle,
    drill_key: SigningKey,
    state_dir: PathBuf,
    honest_archive: PathBuf,
    spare: PathBuf,
    work_root: PathBuf,
    request: BuildRequest,
    scratch: &'s Scratch,
}

impl<'s> Drill<'s> {
    /// Runs the drill's first build, which stores the entry every attack starts from.
    fn prepare(
        options: &PoisonOptions,
        scratch: &'s Scratch,
        store: Store,
        scope: Scope,
        host: &mut dyn DrillHost,
    ) -> Result<Self, DrillError> {
        let src = scratch.path("src");
        let state_dir = scratch.path("state");
        let spare = scratch.path("spare");
        let work_root = scratch.path("work");
        for dir in [&src, &state_dir, &spare, &work_root] {
            fs::create_dir(dir).map_err(scratch_error(dir))?;
        }
        let input = src.join("in.txt");
        fs::write(&input, "hermetic drill poison\n").map_err(scratch_error(&input))?;
        let request = BuildRequest {
            profile: options.profile.clone(),
            src,
            outputs: vec!["out".to_owned()],
            artifact: scratch.path("first.tar.zst"),
            extract: None,
            single: false,
            explain: false,
            source_date_epoch: None,
            command: vec!["sh".into(), "-c".into(), build_script(&options.payload)],
            image: None,
            cache: Some(Box::new(CacheOptions {
                dir: store.root().to_owned(),
                scope: Some(scope.as_str().to_owned()),
                state_dir: Some(state_dir.clone()),
                ..CacheOptions::default()
            })),
        };
        let report = host.build(&request).map_err(|reason| DrillError::Build {
            step: "first build",
            reason,
        })?;
        let failed = |reason: String| DrillError::Build {
            step: "first build",
            reason,
        };
        if report.exit_code != exit::SUCCESS || !report.cache.stored {
            return Err(failed(format!(
                "exit code {}, {}",
                report.exit_code,
                report
                    .error
                    .or(report.cache.reason)
                    .unwrap_or_else(|| "nothing stored".to_owned())
            )));
        }
        let key = report
            .cache
            .key
            .as_deref()
            .and_then(|key| CacheKey::parse(key).ok())
            .ok_or_else(|| failed("the report names no cache key".to_owned()))?;
        let drill_key = signing_key(&state_dir, None, &Password::new(Vec::new()))?;
        let entry_dir = store.entry_dir(&scope, &key);
        let bundle_path = entry_dir.join(BUNDLE_FILE);
        let bundle = fs::read(&bundle_path)
            .map_err(|error| failed(format!("{}: {error}", bundle_path.display())))
            .and_then(|bytes| {
                Bundle::from_json_limited(&bytes, crate::cache::restore::MAX_ENTRY_BUNDLE_BYTES)
                    .map_err(|error| failed(Chain(&error).to_string()))
            })?;
        let entry = EntryManifest::open(&bundle, &[drill_key.verifying_key()])
            .map_err(|error| failed(Chain(&error).to_string()))?
            .entry;
        // A link, not a copy: attacks never write through it (they unlink first), and
        // `Subject::honest_archive_intact` checks that they did not.
        let honest_archive = scratch.path("honest.tar.zst");
        let stored = entry_dir.join(ARCHIVE_FILE);
        fs::hard_link(&stored, &honest_archive)
            .or_else(|_| fs::copy(&stored, &honest_archive).map(drop))
            .map_err(scratch_error(&honest_archive))?;
        Ok(Drill {
            store,
            scope,
            key,
            entry,
            bundle,
            drill_key,
            state_dir,
            honest_archive,
            spare,
            work_root,
            request,
            scratch,
        })
    }

    /// The honest entry signed by `signer`, read with `trusted`.
    fn subject_signed_by(
        &self,
        signer: SigningKey,
        trusted: Vec<VerifyingKey>,
        prefix: &'static str,
    ) -> Result<(Subject, &'static str), DrillError> {
        let bundle = if signer.verifying_key().hint() == self.drill_key.verifying_key().hint() {
            self.bundle.clone()
        } else {
            self.entry.sign(&signer)
        };
        let subject = Subject {
            store: self.store.clone(),
            scope: self.scope.clone(),
            key: self.key.clone(),
            entry: self.entry.clone(),
            bundle,
            honest_archive: self.honest_archive.clone(),
            signer,
            trusted,
            spare: self.spare.clone(),
        };
        Ok((subject, prefix))
    }

    /// A real build over a poisoned entry (the catalog's first attack): the entry is
    /// refused and quarantined, the build runs, and its archive is the honest one.
    fn fresh_build(
        &self,
        subject: &Subject,
        host: &mut dyn DrillHost,
    ) -> Result<Result<(), String>, DrillError> {
        let attack = &local::CATALOG[0];
        subject
            .plant()
            .map_err(scratch_error(&subject.entry_dir()))?;
        (attack.craft)(subject).map_err(scratch_error(&subject.entry_dir()))?;
        let mut request = self.request.clone();
        request.artifact = self.scratch.path("fresh.tar.zst");
        let report = host.build(&request).map_err(|reason| DrillError::Build {
            step: "fresh build",
            reason,
        })?;
        let problem = if report.exit_code != exit::SUCCESS {
            Some(format!("exit code {}", report.exit_code))
        } else if report.cache.status != CacheStatus::Quarantined {
            Some(format!(
                "cache status {}, not quarantined, over the `{}` entry",
                report.cache.status, attack.name
            ))
        } else {
            match crate::digest::sha256_file(&request.artifact) {
                Ok(sha256) if sha256 == self.entry.archive.sha256 => None,
                Ok(_) => Some("its archive is not the honest entry's bytes".to_owned()),
                Err(error) => Some(format!("{}: {error}", request.artifact.display())),
            }
        };
        Ok(match problem {
            None => Ok(()),
            Some(problem) => Err(format!(
                "the real build after a refusal did not give the honest bytes: {problem}"
            )),
        })
    }
}

/// The honest entry must restore, byte for byte, or no refusal would mean anything.
fn control(subject: &Subject, work_root: &Path) -> Result<(), DrillError> {
    let failed = |reason: String| DrillError::Control {
        signer: subject.signer.verifying_key().key_id(),
        reason,
    };
    subject
        .plant()
        .map_err(scratch_error(&subject.entry_dir()))?;
    let work = WorkDir::create(work_root.join("control")).map_err(scratch_error(work_root))?;
    let lookup = restore(
        &subject.store,
        &subject.scope,
        &subject.key,
        &subject.trusted,
        false,
        work.targets(),
    );
    let result = match lookup {
        Lookup::Hit(_) => match crate::digest::sha256_file(work.artifact()) {
            Ok(sha256) if sha256 == subject.entry.archive.sha256 => Ok(()),
            _ => Err(failed(
                "the restored archive is not the honest one".to_owned(),
            )),
        },
        Lookup::Miss { reason } => Err(failed(format!("a miss: {reason:?}"))),
        Lookup::Refused { error, .. } => Err(failed(error.message())),
    };
    fs::remove_dir_all(&work.root).map_err(scratch_error(&work.root))?;
    result
}

/// Runs one local attack and judges it.
fn run_local(
    subject: &Subject,
    attack: &LocalAttack,
    prefix: &str,
    work_root: &Path,
) -> AttackResult {
    let started = Instant::now();
    let verdict = attack_local(subject, attack, work_root).unwrap_or_else(not_run);
    result(
        format!("{prefix}{}", attack.name),
        TARGET_LOCAL,
        attack.step,
        verdict,
        started,
    )
}

/// The verdict on an attack the drill could not make or run: accepted, since nothing
/// showed it refused.
fn not_run(error: impl std::fmt::Display) -> judge::Verdict {
    judge::Verdict {
        refused_at: None,
        failed: vec![format!("the drill could not run the attack: {error}")],
        seen: "not run".to_owned(),
        checked: judge::CHECKED_REFUSAL,
    }
}

fn result(
    name: String,
    target: &str,
    expected: hermetic_contract::report::RestoreStep,
    verdict: judge::Verdict,
    started: Instant,
) -> AttackResult {
    let judge::Verdict {
        refused_at,
        failed,
        seen,
        checked,
    } = verdict;
    let (outcome, detail) = if failed.is_empty() {
        (AttackOutcome::Refused, format!("{seen}; {checked}"))
    } else {
        (
            AttackOutcome::Accepted,
            format!("{seen}; failed: {}", failed.join("; ")),
        )
    };
    AttackResult {
        name,
        target: target.to_owned(),
        outcome,
        expected_step: expected.as_str().to_owned(),
        refused_at: refused_at.map(|step| step.as_str().to_owned()),
        detail,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

fn attack_local(
    subject: &Subject,
    attack: &LocalAttack,
    work_root: &Path,
) -> io::Result<judge::Verdict> {
    subject.plant()?;
    let readers = (attack.craft)(subject)?;
    let trusted = match &readers {
        Readers::Trusted => subject.trusted.as_slice(),
        Readers::Only(keys) => keys.as_slice(),
    };
    let work = WorkDir::create(work_root.join(attack.name))?;
    let before = Before {
        events: judge::events_in(&subject.store).len(),
        quarantined: judge::quarantined_in(&subject.store),
        work: work.snapshot()?,
    };
    let lookup = restore(
        &subject.store,
        &subject.scope,
        &subject.key,
        trusted,
        false,
        work.targets(),
    );
    let seen = match lookup {
        Lookup::Hit(_) => Seen::Restored,
        Lookup::Miss { reason } => Seen::Miss(reason.unwrap_or_else(|| "no entry".to_owned())),
        Lookup::Refused { error, quarantined } => Seen::Refused {
            step: error.step(),
            reason: error.reason().to_owned(),
            message: error.message(),
            quarantined,
        },
    };
    let quarantined = seen.quarantined().map(Path::to_owned);
    let mut verdict = judge::refusal(
        &subject.store,
        false,
        seen,
        attack.step,
        attack.reason,
        &before,
    );
    if work.snapshot()? != before.work {
        verdict
            .failed
            .push("the destination or the artifact changed".to_owned());
    }
    match restore(
        &subject.store,
        &subject.scope,
        &subject.key,
        trusted,
        false,
        RestoreTargets::default(),
    ) {
        Lookup::Miss { reason: None } => {}
        Lookup::Hit(_) => verdict
            .failed
            .push("the next lookup restored the entry".to_owned()),
        Lookup::Miss {
            reason: Some(reason),
        } => verdict
            .failed
            .push(format!("the next lookup found an entry ({reason})")),
        Lookup::Refused { error, .. } => verdict.failed.push(format!(
            "the next lookup found the entry again ({})",
            error.reason()
        )),
    }
    fs::remove_dir_all(&work.root)?;
    judge::discard(quarantined.as_deref())?;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/drills-poison.md lists every attack the drill runs, with its target, the step
    /// that must refuse it and the reason, and nothing else.
    #[test]
    fn the_docs_list_every_attack_with_its_step_and_reason() {
        let doc = include_str!("../../../../docs/drills-poison.md");
        let catalog = catalog();
        assert!(
            catalog.len() >= 25,
            "the issue asks for at least 25 attacks"
        );
        for attack in &catalog {
            let start = format!("| `{}` |", attack.name);
            let row = doc
                .lines()
                .find(|line| line.starts_with(&start))
                .unwrap_or_else(|| panic!("docs/drills-poison.md has no row for {}", attack.name));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[2], attack.target, "{row}");
            if !attack.rows.is_empty() {
                assert_eq!(cells[3], attack.rows, "{row}");
            }
            assert_eq!(cells[4], attack.step.as_str(), "{row}");
            assert!(cells[5].contains(&format!("`{}`", attack.reason)), "{row}");
        }
        let rows = doc
            .lines()
            .filter(|line| {
                line.starts_with("| `") && line.contains(" | local |")
                    || line.contains(" | remote |")
            })
            .count();
        assert_eq!(rows, catalog.len());
        let mut names: Vec<_> = catalog.iter().map(|attack| attack.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), catalog.len(), "attack names are unique");
    }

    #[test]
    fn the_payload_is_copied_after_the_entries_hostile_archives_are_written_against() {
        assert_eq!(build_script(&[]), local::BUILD_SCRIPT);
        let script = build_script(&[PathBuf::from("/usr/lib/gcc"), PathBuf::from("/o'dd")]);
        assert!(script.starts_with(local::BUILD_SCRIPT));
        assert!(
            script.contains(" && cp -r '/usr/lib/gcc' out/zz-payload/0"),
            "{script}"
        );
        assert!(
            script.contains(" && cp -r '/o'\\''dd' out/zz-payload/1"),
            "{script}"
        );
        assert!(script.ends_with(" && find out/zz-payload -type l -delete"));
    }
}
