//! Job records in SQLite, so the job list survives a daemon restart; and the drill
//! history (`drills`).
mod drills;

pub use drills::{DrillQuery, LastDrill};

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};

use hermetic_contract::report::BuildReport;
use hermetic_contract::wire::{
    Digests, Job, JobKind, JobRequest, JobState, JobVerdict, WIRE_SCHEMA,
};

/// Version of the database layout (SQLite `user_version`). Changelog:
/// - 1: first version (`jobs`).
/// - 2: the drill history (`drills`, `drill_results`); a version 1 database gains the
///   tables when opened, its jobs untouched.
pub const STORE_VERSION: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the job database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to create the job database's tables")]
    Schema(#[source] rusqlite::Error),
    #[error("job database version {found} is not supported (expected {STORE_VERSION})")]
    Version { found: i64 },
    #[error("failed to record a job")]
    Insert(#[source] rusqlite::Error),
    #[error("failed to update job {id}")]
    Update {
        id: u64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to read the job records")]
    Read(#[source] rusqlite::Error),
    #[error("failed to encode a job request")]
    Encode(#[source] serde_json::Error),
    #[error("failed to record drill {id}")]
    RecordDrill {
        id: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("drill {id} is already recorded")]
    DrillExists { id: String },
    #[error("drill {id} is not a {schema} report: {reason}")]
    BadDrill {
        id: String,
        schema: &'static str,
        reason: String,
    },
}

/// How a job ended, as recorded.
#[derive(Clone, Debug, Default)]
pub struct Finish {
    pub verdict: Option<JobVerdict>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub digests: Option<Digests>,
    pub report: Option<Box<BuildReport>>,
}

pub struct Store {
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "id, kind, state, request, submitted_at_ms, started_at_ms, \
     finished_at_ms, verdict, exit_code, error, sha256, blake3, log_path";

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(StoreError::Schema)?;
        if !(0..=STORE_VERSION).contains(&version) {
            return Err(StoreError::Version { found: version });
        }
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS jobs (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 kind TEXT NOT NULL,
                 state TEXT NOT NULL,
                 request TEXT NOT NULL,
                 submitted_at_ms INTEGER NOT NULL,
                 started_at_ms INTEGER,
                 finished_at_ms INTEGER,
                 verdict TEXT,
                 exit_code INTEGER,
                 error TEXT,
                 sha256 TEXT,
                 blake3 TEXT,
                 log_path TEXT NOT NULL DEFAULT '',
                 report TEXT
             );
             {}
             PRAGMA user_version = {STORE_VERSION};",
            drills::SCHEMA
        ))
        .map_err(StoreError::Schema)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a new queued job; `log_path` gets the job's id.
    ///
    /// The id is chosen here, as AUTOINCREMENT would (one past the largest ever used), so
    /// the row is written whole in one statement and one commit.
    pub fn insert(
        &self,
        request: &JobRequest,
        now_ms: u64,
        log_path: impl Fn(u64) -> PathBuf,
    ) -> Result<Job, StoreError> {
        let json = serde_json::to_string(request).map_err(StoreError::Encode)?;
        let conn = self.conn();
        let last: i64 = conn
            .prepare_cached(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)",
            )
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(StoreError::Insert)?;
        let id = last as u64 + 1;
        let log = log_path(id);
        execute_cached(
            &conn,
            "INSERT INTO jobs (id, kind, state, request, submitted_at_ms, log_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id as i64,
                request.kind().as_str(),
                JobState::Queued.as_str(),
                json,
                now_ms as i64,
                log.to_string_lossy()
            ],
        )
        .map_err(StoreError::Insert)?;
        Ok(Job {
            schema: WIRE_SCHEMA.into(),
            id,
            kind: request.kind(),
            state: JobState::Queued,
            request: request.clone(),
            submitted_at_ms: now_ms,
            started_at_ms: None,
            finished_at_ms: None,
            verdict: None,
            exit_code: None,
            error: None,
            digests: None,
            log_path: log,
            report: None,
        })
    }

    pub fn mark_running(&self, id: u64, now_ms: u64) -> Result<(), StoreError> {
        execute_cached(
            &self.conn(),
            "UPDATE jobs SET state = ?1, started_at_ms = ?2 WHERE id = ?3",
            params![JobState::Running.as_str(), now_ms as i64, id as i64],
        )
        .map(drop)
        .map_err(|source| StoreError::Update { id, source })
    }

    pub fn finish(
        &self,
        id: u64,
        state: JobState,
        now_ms: u64,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let report = finish
            .report
            .as_deref()
            .and_then(|report| report_text(id, report));
        execute_cached(
            &self.conn(),
            "UPDATE jobs SET state = ?1, finished_at_ms = ?2, verdict = ?3, exit_code = ?4,
             error = ?5, sha256 = ?6, blake3 = ?7, report = ?8 WHERE id = ?9",
            params![
                state.as_str(),
                now_ms as i64,
                finish.verdict.map(JobVerdict::as_str),
                finish.exit_code,
                finish.error,
                finish.digests.as_ref().map(|d| d.sha256.clone()),
                finish.digests.as_ref().map(|d| d.blake3.clone()),
                report,
                id as i64
            ],
        )
        .map(drop)
        .map_err(|source| StoreError::Update { id, source })
    }

    /// One job, with its full report.
    pub fn get(&self, id: u64) -> Result<Option<Job>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(&format!("SELECT {COLUMNS}, report FROM jobs WHERE id = ?1"))
            .map_err(StoreError::Read)?;
        statement
            .query_row(params![id as i64], |row| {
                let mut job = job_from_row(row)?;
                let report: Option<String> = row.get(13)?;
                job.report = report.and_then(|text| {
                    serde_json::from_str(&text)
                        .inspect_err(|err| {
                            tracing::warn!(
                                job = id,
                                "the recorded build report is unreadable: {err}"
                            )
                        })
                        .ok()
                });
                Ok(job)
            })
            .optional()
            .map_err(StoreError::Read)
    }

    /// The newest `limit` jobs, newest first, without their reports.
    pub fn list(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
            ))
            .map_err(StoreError::Read)?;
        let jobs = statement
            .query_map(params![limit as i64], job_from_row)
            .map_err(StoreError::Read)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::Read)?;
        Ok(jobs)
    }

    /// Marks every job left queued or running (by a daemon that stopped without finishing
    /// them) as interrupted; returns their ids.
    pub fn interrupt_unfinished(&self, now_ms: u64) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(StoreError::Read)?;
        let ids = {
            let mut statement = tx
                .prepare("SELECT id FROM jobs WHERE state IN ('queued', 'running')")
                .map_err(StoreError::Read)?;
            let ids = statement
                .query_map([], |row| row.get::<_, i64>(0))
                .map_err(StoreError::Read)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::Read)?;
            ids.into_iter().map(|id| id as u64).collect::<Vec<_>>()
        };
        for &id in &ids {
            tx.execute(
                "UPDATE jobs SET state = ?1, finished_at_ms = ?2, \
                 error = 'the daemon stopped before the job finished' WHERE id = ?3",
                params![JobState::Interrupted.as_str(), now_ms as i64, id as i64],
            )
            .map_err(|source| StoreError::Update { id, source })?;
        }
        tx.commit().map_err(StoreError::Read)?;
        Ok(ids)
    }
}

/// Runs `sql` as a cached prepared statement: every statement on a job's way is one, since
/// parsing the SQL again cost more than running it.
fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// A build report as recorded. One that cannot be written as JSON (a path that is not
/// UTF-8) is left out rather than losing the job's end.
fn report_text(id: u64, report: &BuildReport) -> Option<String> {
    serde_json::to_string(report)
        .inspect_err(|err| tracing::warn!(job = id, "the build report is not recorded: {err}"))
        .ok()
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let decode = |index: usize, message: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            message.into(),
        )
    };
    let kind: String = row.get(1)?;
    let state: String = row.get(2)?;
    let request: String = row.get(3)?;
    let verdict: Option<String> = row.get(7)?;
    let sha256: Option<String> = row.get(10)?;
    let blake3: Option<String> = row.get(11)?;
    let log_path: String = row.get(12)?;
    let optional_ms = |index: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(index)?.map(|ms| ms as u64))
    };
    Ok(Job {
        schema: WIRE_SCHEMA.into(),
        id: row.get::<_, i64>(0)? as u64,
        kind: match kind.as_str() {
            "run" => JobKind::Run,
            "build" => JobKind::Build,
            other => return Err(decode(1, format!("unknown job kind {other:?}"))),
        },
        state: JobState::parse(&state)
            .ok_or_else(|| decode(2, format!("unknown job state {state:?}")))?,
        request: serde_json::from_str(&request).map_err(|err| decode(3, err.to_string()))?,
        submitted_at_ms: row.get::<_, i64>(4)? as u64,
        started_at_ms: optional_ms(5)?,
        finished_at_ms: optional_ms(6)?,
        verdict: verdict
            .map(|verdict| {
                JobVerdict::parse(&verdict)
                    .ok_or_else(|| decode(7, format!("unknown verdict {verdict:?}")))
            })
            .transpose()?,
        exit_code: row.get(8)?,
        error: row.get(9)?,
        digests: sha256
            .zip(blake3)
            .map(|(sha256, blake3)| Digests { sha256, blake3 }),
        log_path: PathBuf::from(log_path),
        report: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hermetic_contract::report::RunVerdict;
    use hermetic_contract::wire::RunRequest;

    fn request() -> JobRequest {
        JobRequest::Run(RunRequest {
            profile: "default".into(),
            src: "/src".into(),
            source_date_epoch: None,
            command: vec!["/bin/true".into()],
            image: None,
        })
    }

    fn log_path(id: u64) -> PathBuf {
        PathBuf::from(format!("/logs/{id}.log"))
    }

    #[test]
    fn ids_count_up_across_reopening_and_each_record_names_its_own_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite");
        let store = Store::open(&path).unwrap();
        let first = store.insert(&request(), 1, log_path).unwrap();
        let second = store.insert(&request(), 2, log_path).unwrap();
        assert_eq!((first.id, second.id), (1, 2));
        drop(store);

        let store = Store::open(&path).unwrap();
        let third = store.insert(&request(), 3, log_path).unwrap();
        assert_eq!(third.id, 3);
        let stored = store.get(2).unwrap().unwrap();
        assert_eq!(stored.log_path, PathBuf::from("/logs/2.log"));
        assert_eq!(stored.state, JobState::Queued);
        assert_eq!(stored.submitted_at_ms, 2);
    }

    #[test]
    fn a_job_goes_from_queued_to_running_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("jobs.sqlite")).unwrap();
        let id = store.insert(&request(), 10, log_path).unwrap().id;
        store.mark_running(id, 11).unwrap();
        assert_eq!(store.get(id).unwrap().unwrap().state, JobState::Running);
        let finish = Finish {
            verdict: Some(JobVerdict::Run(RunVerdict::Exited)),
            exit_code: Some(0),
            ..Finish::default()
        };
        store.finish(id, JobState::Succeeded, 12, &finish).unwrap();
        let job = store.get(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        assert_eq!(
            (job.started_at_ms, job.finished_at_ms),
            (Some(11), Some(12))
        );
        assert_eq!(job.exit_code, Some(0));
        assert_eq!(job.verdict, Some(JobVerdict::Run(RunVerdict::Exited)));
        assert!(store.get(id + 1).unwrap().is_none());
    }
}
