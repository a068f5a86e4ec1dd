//! The drill history: every finished drill of either kind (`hermetic.drill/v1`), never only
//! the latest. `drills` holds each whole report; `drill_results` one row per case or
//! attack, so that history queries (a case by name, the same inputs by cache key) and
//! dashboards reading the database need not parse reports.
use rusqlite::{params, OptionalExtension};

use hermetic::timestamp::parse_rfc3339;
use hermetic_contract::report::{DrillKind, DrillReport, DRILL_REPORT_SCHEMA};

use super::{Store, StoreError};

/// The tables, created when missing (store version 2).
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS drills (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        runner TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        finished_s INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        exit_code INTEGER NOT NULL,
        report TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS drills_by_kind ON drills (kind, finished_s);
    CREATE TABLE IF NOT EXISTS drill_results (
        drill_id TEXT NOT NULL REFERENCES drills (id),
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        result TEXT NOT NULL,
        digest TEXT,
        cache_key TEXT,
        duration_ms INTEGER NOT NULL,
        reason TEXT,
        PRIMARY KEY (drill_id, position)
    );
    CREATE INDEX IF NOT EXISTS drill_results_by_name ON drill_results (name);
    CREATE INDEX IF NOT EXISTS drill_results_by_key ON drill_results (cache_key);";

/// Which drills to list.
#[derive(Clone, Debug, Default)]
pub struct DrillQuery {
    pub kind: Option<DrillKind>,
    /// Only drills with a case or attack of this name, listing only those.
    pub case: Option<String>,
    /// Only drills with a case of these inputs, listing only those.
    pub cache_key: Option<String>,
    /// At most this many drills, newest first.
    pub limit: usize,
}

/// The newest drill of a kind, as `/metrics` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastDrill {
    pub kind: DrillKind,
    /// When it finished, in seconds since the Unix epoch.
    pub finished_s: i64,
    pub passed: bool,
}

impl Store {
    /// Keeps a finished drill and each of its results. A drill id is recorded once: a
    /// second report with the same id is refused, never merged or replaced.
    pub fn record_drill(&self, report: &DrillReport) -> Result<(), StoreError> {
        let bad = |reason: String| StoreError::BadDrill {
            id: report.id.clone(),
            schema: DRILL_REPORT_SCHEMA,
            reason,
        };
        if report.schema != DRILL_REPORT_SCHEMA {
            return Err(bad(format!("schema is {:?}", report.schema)));
        }
        if report.id.is_empty() {
            return Err(bad("the id is empty".into()));
        }
        let finished_s = parse_rfc3339(&report.finished).ok_or_else(|| {
            bad(format!(
                "finished {:?} is not an RFC 3339 UTC time",
                report.finished
            ))
        })?;
        let failed = |source| StoreError::RecordDrill {
            id: report.id.clone(),
            source,
        };
        let text = serde_json::to_string(report).map_err(StoreError::Encode)?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(failed)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM drills WHERE id = ?1",
                params![report.id],
                |_| Ok(()),
            )
            .optional()
            .map_err(failed)?;
        if exists.is_some() {
            return Err(StoreError::DrillExists {
                id: report.id.clone(),
            });
        }
        tx.execute(
            "INSERT INTO drills (id, kind, runner, started, finished, finished_s, passed,
             exit_code, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                report.id,
                report.kind.as_str(),
                report.runner,
                report.started,
                report.finished,
                finished_s,
                report.passed,
                report.exit_code,
                text
            ],
        )
        .map_err(failed)?;
        for (position, row) in report.results().iter().enumerate() {
            tx.execute(
                "INSERT INTO drill_results (drill_id, position, name, result, digest,
                 cache_key, duration_ms, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    report.id,
                    position as i64,
                    row.name,
                    row.result,
                    row.digest,
                    row.cache_key,
                    row.duration_ms as i64,
                    row.reason
                ],
            )
            .map_err(failed)?;
        }
        tx.commit().map_err(failed)
    }

    /// Recorded drills, newest first (by when they finished, then by when recorded).
    pub fn drills(&self, query: &DrillQuery) -> Result<Vec<DrillReport>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT id, report FROM drills
                 WHERE (?1 IS NULL OR kind = ?1)
                   AND (?2 IS NULL OR id IN (SELECT drill_id FROM drill_results WHERE name = ?2))
                   AND (?3 IS NULL OR id IN
                        (SELECT drill_id FROM drill_results WHERE cache_key = ?3))
                 ORDER BY finished_s DESC, rowid DESC LIMIT ?4",
            )
            .map_err(StoreError::Read)?;
        let rows = statement
            .query_map(
                params![
                    query.kind.map(DrillKind::as_str),
                    query.case,
                    query.cache_key,
                    query.limit as i64
                ],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .map_err(StoreError::Read)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::Read)?;
        let mut drills = Vec::with_capacity(rows.len());
        for (id, text) in rows {
            let mut report: DrillReport = match serde_json::from_str(&text) {
                Ok(report) => report,
                Err(err) => {
                    tracing::warn!(drill = id, "the recorded drill report is unreadable: {err}");
                    continue;
                }
            };
            if let Some(name) = &query.case {
                report.cases.retain(|case| case.name == *name);
                report.attacks.retain(|attack| attack.name == *name);
            }
            if let Some(key) = &query.cache_key {
                report
                    .cases
                    .retain(|case| case.cache_key.as_deref() == Some(key.as_str()));
                report.attacks.clear();
            }
            drills.push(report);
        }
        Ok(drills)
    }

    /// The newest drill of each kind that has one.
    pub fn last_drills(&self) -> Result<Vec<LastDrill>, StoreError> {
        let conn = self.conn();
        let mut last = Vec::new();
        for &kind in DrillKind::ALL {
            let found = conn
                .prepare_cached(
                    "SELECT finished_s, passed FROM drills WHERE kind = ?1
                     ORDER BY finished_s DESC, rowid DESC LIMIT 1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row(params![kind.as_str()], |row| {
                            Ok(LastDrill {
                                kind,
                                finished_s: row.get(0)?,
                                passed: row.get(1)?,
                            })
                        })
                        .optional()
                })
                .map_err(StoreError::Read)?;
            last.extend(found);
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use hermetic_contract::report::{
        AttackOutcome, AttackResult, CaseResult, CaseVerdict, DrillReport,
    };

    use super::*;

    fn case(name: &str, key: &str, digest: &str, verdict: CaseVerdict) -> CaseResult {
        CaseResult {
            name: name.into(),
            verdict,
            digest: Some(digest.into()),
            cache_key: Some(key.into()),
            duration_ms: 10,
            reason: None,
            differences: vec![],
            drifted_from: None,
            jobs: vec![],
        }
    }

    fn drill(id: &str, kind: DrillKind, finished: &str, cases: Vec<CaseResult>) -> DrillReport {
        DrillReport {
            schema: DRILL_REPORT_SCHEMA.into(),
            kind,
            id: id.into(),
            runner: "runner-a".into(),
            started: finished.into(),
            finished: finished.into(),
            passed: cases
                .iter()
                .all(|case| case.verdict == CaseVerdict::Reproducible),
            exit_code: 0,
            cases,
            attacks: vec![],
            findings: vec![],
        }
    }

    #[test]
    fn every_drill_is_kept_and_queries_pick_cases_by_name_and_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("jobs.sqlite")).unwrap();
        let first = drill(
            "d1",
            DrillKind::Determinism,
            "2026-12-01T00:00:00Z",
            vec![
                case("hello", "k1", "sha256:aa", CaseVerdict::Reproducible),
                case("other", "k2", "sha256:cc", CaseVerdict::Reproducible),
            ],
        );
        let second = drill(
            "d2",
            DrillKind::Determinism,
            "2026-12-02T00:00:00Z",
            vec![case("hello", "k1", "sha256:bb", CaseVerdict::Drifted)],
        );
        let mut poison = drill("p1", DrillKind::Poison, "2026-12-03T00:00:00Z", vec![]);
        poison.attacks.push(AttackResult {
            name: "byte-flipped".into(),
            target: "local".into(),
            outcome: AttackOutcome::Refused,
            expected_step: "archive".into(),
            refused_at: Some("archive".into()),
            detail: "refused".into(),
            duration_ms: 3,
        });
        for report in [&first, &second, &poison] {
            store.record_drill(report).unwrap();
        }
        assert!(matches!(
            store.record_drill(&first),
            Err(StoreError::DrillExists { .. })
        ));

        let all = store
            .drills(&DrillQuery {
                limit: 10,
                ..DrillQuery::default()
            })
            .unwrap();
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["p1", "d2", "d1"]);
        assert_eq!(all[2], first);

        let by_key = store
            .drills(&DrillQuery {
                cache_key: Some("k1".into()),
                limit: 10,
                ..DrillQuery::default()
            })
            .unwrap();
        let digests: Vec<_> = by_key
            .iter()
            .flat_map(|d| d.cases.iter().map(|c| c.digest.clone().unwrap()))
            .collect();
        assert_eq!(digests, ["sha256:bb", "sha256:aa"]);

        let other = store
            .drills(&DrillQuery {
                case: Some("other".into()),
                kind: Some(DrillKind::Determinism),
                limit: 10,
                ..DrillQuery::default()
            })
            .unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].cases.len(), 1);
        assert_eq!(other[0].cases[0].name, "other");

        let last = store.last_drills().unwrap();
        assert_eq!(
            last,
            [
                LastDrill {
                    kind: DrillKind::Determinism,
                    finished_s: parse_rfc3339("2026-12-02T00:00:00Z").unwrap(),
                    passed: false,
                },
                LastDrill {
                    kind: DrillKind::Poison,
                    finished_s: parse_rfc3339("2026-12-03T00:00:00Z").unwrap(),
                    passed: true,
                },
            ]
        );
    }

    #[test]
    fn a_report_of_another_schema_or_time_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("jobs.sqlite")).unwrap();
        let mut report = drill("d1", DrillKind::Determinism, "yesterday", vec![]);
        assert!(matches!(
            store.record_drill(&report),
            Err(StoreError::BadDrill { .. })
        ));
        report.finished = "2026-12-01T00:00:00Z".into();
        report.schema = "hermetic.drill/v0".into();
        assert!(matches!(
            store.record_drill(&report),
            Err(StoreError::BadDrill { .. })
        ));
        assert!(store.last_drills().unwrap().is_empty());
    }

    #[test]
    fn a_version_1_database_gains_the_drill_tables_and_keeps_its_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE jobs (
                     id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                     state TEXT NOT NULL, request TEXT NOT NULL,
                     submitted_at_ms INTEGER NOT NULL, started_at_ms INTEGER,
                     finished_at_ms INTEGER, verdict TEXT, exit_code INTEGER, error TEXT,
                     sha256 TEXT, blake3 TEXT, log_path TEXT NOT NULL DEFAULT '', report TEXT
                 );
                 INSERT INTO jobs (kind, state, request, submitted_at_ms, log_path)
                 VALUES ('run', 'succeeded',
                         '{\"kind\":\"run\",\"profile\":\"default\",\"src\":\"/s\",\"command\":[\"true\"]}',
                         5, '/logs/1.log');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(1).unwrap().unwrap().submitted_at_ms, 5);
        store
            .record_drill(&drill(
                "d1",
                DrillKind::Determinism,
                "2026-12-01T00:00:00Z",
                vec![],
            ))
            .unwrap();
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, super::super::STORE_VERSION);
    }
}
