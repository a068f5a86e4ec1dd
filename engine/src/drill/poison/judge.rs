//! What counts as refused: the checks the drill makes of every restore of a poisoned
//! entry (docs/drills-poison.md). Any check that fails makes the attack `accepted`, with
//! the failed check in its detail.
use std::fs;
use std::path::{Path, PathBuf};

use hermetic_contract::report::RestoreStep;

use crate::cache::quarantine::{
    QuarantineEvent, QuarantineRecord, QUARANTINE_EVENT, REASON_FILE, REMOTE_SOURCE,
};
use crate::cache::Store;

/// What a restore did with a poisoned entry, as the drill saw it.
pub(super) enum Seen {
    /// Restored: the attack went through.
    Restored,
    /// A plain miss: nothing refused, nothing quarantined.
    Miss(String),
    Refused {
        step: RestoreStep,
        reason: String,
        message: String,
        quarantined: Option<PathBuf>,
    },
}

impl Seen {
    /// Where the refused entry was quarantined.
    pub(super) fn quarantined(&self) -> Option<&Path> {
        match self {
            Seen::Refused { quarantined, .. } => quarantined.as_deref(),
            Seen::Restored | Seen::Miss(_) => None,
        }
    }
}

/// Removes a judged attack's quarantine directory (in the scratch store): an attack on a
/// large entry leaves an archive of that size there, and a drill's worth of them would
/// fill the disk.
pub(super) fn discard(quarantined: Option<&Path>) -> std::io::Result<()> {
    match quarantined {
        Some(dir) => fs::remove_dir_all(dir),
        None => Ok(()),
    }
}

/// What the checks found.
pub(super) struct Verdict {
    pub refused_at: Option<RestoreStep>,
    /// Checks that failed; empty when the attack was refused in every respect.
    pub failed: Vec<String>,
    /// What was seen, in one line.
    pub seen: String,
    /// What was checked besides, for the detail of a refused attack.
    pub checked: &'static str,
}

/// What the checks of a refusal cover.
pub(super) const CHECKED_REFUSAL: &str =
    "quarantined with its reason, event logged, destination untouched, next lookup a miss";
/// What the checks of an expected miss cover.
pub(super) const CHECKED_MISS: &str =
    "nothing quarantined, destination untouched, nothing committed to the local store";

/// The state around a restore that the drill compares before and after.
pub(super) struct Before {
    pub events: usize,
    pub quarantined: usize,
    pub work: Vec<(String, Vec<u8>)>,
}

pub(super) fn events_in(store: &Store) -> Vec<String> {
    fs::read_to_string(store.events_path())
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

pub(super) fn quarantined_in(store: &Store) -> usize {
    fs::read_dir(store.quarantine_dir()).map_or(0, Iterator::count)
}

/// Checks a refusal that should quarantine: the step, the record, the event. The work
/// dir and the next lookup are the caller's (they differ between local and remote).
pub(super) fn refusal(
    store: &Store,
    from_registry: bool,
    seen: Seen,
    expected_step: RestoreStep,
    expected_reason: &str,
    before: &Before,
) -> Verdict {
    let (step, reason, message, quarantined) = match seen {
        Seen::Restored => {
            return Verdict {
                refused_at: None,
                failed: vec!["the poisoned entry was restored".to_owned()],
                seen: "restored".to_owned(),
                checked: CHECKED_REFUSAL,
            }
        }
        Seen::Miss(reason) => {
            return Verdict {
                refused_at: None,
                failed: vec![format!(
                    "a miss without a refusal, nothing quarantined ({reason})"
                )],
                seen: "miss".to_owned(),
                checked: CHECKED_REFUSAL,
            }
        }
        Seen::Refused {
            step,
            reason,
            message,
            quarantined,
        } => (step, reason, message, quarantined),
    };
    let mut failed = Vec::new();
    if step != expected_step {
        failed.push(format!(
            "refused at step {step} ({reason}: {message}), expected step {expected_step}"
        ));
    }
    match &quarantined {
        None => failed.push("not quarantined".to_owned()),
        Some(path) => {
            if let Err(problem) = check_record(path, step, &reason, from_registry) {
                failed.push(problem);
            }
            if let Err(problem) = check_event(store, path, before.events) {
                failed.push(problem);
            }
        }
    }
    let mut seen = format!("refused at {step} ({reason})");
    if reason != expected_reason {
        seen.push_str(&format!(", where the catalog names {expected_reason}"));
    }
    Verdict {
        refused_at: Some(step),
        failed,
        seen,
        checked: CHECKED_REFUSAL,
    }
}

/// The quarantine record names the refusal (and, for an entry from a registry, where it
/// came from).
fn check_record(
    dir: &Path,
    step: RestoreStep,
    reason: &str,
    from_registry: bool,
) -> Result<(), String> {
    let path = dir.join(REASON_FILE);
    let bytes = fs::read(&path).map_err(|error| format!("no {} ({error})", path.display()))?;
    let record: QuarantineRecord = serde_json::from_slice(&bytes)
        .map_err(|error| format!("{} is not a quarantine record ({error})", path.display()))?;
    if record.step != step || record.reason != reason {
        return Err(format!(
            "{} says {} ({}), the restore said {step} ({reason})",
            path.display(),
            record.step,
            record.reason
        ));
    }
    if from_registry
        && (record.source.as_deref() != Some(REMOTE_SOURCE) || record.reference.is_none())
    {
        return Err(format!(
            "{} does not say the entry came from the registry (source {:?}, reference {:?})",
            path.display(),
            record.source,
            record.reference
        ));
    }
    Ok(())
}

/// A `cache_quarantine` event, logged since `before` lines, names the quarantine dir.
fn check_event(store: &Store, quarantined: &Path, before: usize) -> Result<(), String> {
    let logged = events_in(store).into_iter().skip(before).any(|line| {
        serde_json::from_str::<QuarantineEvent>(&line)
            .is_ok_and(|event| event.event == QUARANTINE_EVENT && event.path == quarantined)
    });
    if logged {
        Ok(())
    } else {
        Err(format!(
            "no {QUARANTINE_EVENT} event in {} names {}",
            store.events_path().display(),
            quarantined.display()
        ))
    }
}
