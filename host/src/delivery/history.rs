//! Run history in SQLite under `data_dir`: every run `corral serve` admits or `corral run` makes, with its
//! status, the plugin version and digest it ran on, and its counts. A run still queued or
//! running when its process died is marked failed at the next start, so none is lost.

use crate::lock::LockExt;
use crate::run::{Expected, RunReport, StepStatus};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The database file under `data_dir`.
pub const DB_FILE: &str = "corral.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    instance       TEXT NOT NULL,
    trigger        TEXT NOT NULL,
    status         TEXT NOT NULL,
    plugin_id      TEXT,
    plugin_version TEXT,
    plugin_digest  TEXT,
    generation     INTEGER,
    queued_at      INTEGER NOT NULL,
    started_at     INTEGER,
    ended_at       INTEGER,
    counts         TEXT,
    errors         TEXT NOT NULL DEFAULT '[]',
    pid            INTEGER,
    worker         TEXT,
    attempts       INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_instance ON runs(instance, seq);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Partial,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Partial => "partial",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "partial" => RunStatus::Partial,
            _ => RunStatus::Failed,
        }
    }
}

/// What a finished run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    pub entities: u64,
    pub relationships: u64,
    pub requests: u64,
    pub warnings: u64,
    pub denials: u64,
    pub limit_hits: u64,
    pub rejections: u64,
}

/// Opens (creating) `data_dir/corral.db` for one of its users (run history, graph
/// state): WAL so readers never block the writer, a busy timeout because `corral run`
/// and `corral serve` may write at once, and the user's schema.
pub fn open_database(data_dir: &Path, schema: &str) -> anyhow::Result<(Connection, PathBuf)> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot create data_dir: {e}", data_dir.display()))?;
    let path = data_dir.join(DB_FILE);
    let conn = Connection::open(&path)
        .and_then(|c| {
            c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
            c.busy_timeout(std::time::Duration::from_secs(30))?;
            c.execute_batch(schema)?;
            Ok(c)
        })
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((conn, path))
}

/// Databases written before runs recorded their process (or, later, their worker)
/// lack those columns.
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (name, ty) in [
        ("pid", "INTEGER"),
        ("worker", "TEXT"),
        ("attempts", "INTEGER"),
    ] {
        let has: bool = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('runs') WHERE name = ?1",
            [name],
            |r| r.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE runs ADD COLUMN {name} {ty}"))?;
        }
    }
    Ok(())
}

/// A run's errors as the JSON array the `errors` column holds.
fn error_list(errors: &[impl AsRef<str>]) -> String {
    let list = errors.iter().map(|e| serde_json::Value::from(e.as_ref()));
    serde_json::Value::Array(list.collect()).to_string()
}

/// Whether a process with this id exists (Linux: `/proc`; elsewhere every recorded
/// process counts as gone, which is right after a restart).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// How a run ended, as the history records it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: RunStatus,
    pub counts: Option<RunCounts>,
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn failed(error: String) -> Self {
        Outcome {
            status: RunStatus::Failed,
            counts: None,
            errors: vec![error],
        }
    }

    /// `succeeded` when every step did, `partial` when some steps produced data and
    /// others failed, else `failed`.
    pub fn of(report: &RunReport) -> Self {
        let counts = RunCounts {
            entities: report.graph.entity_count() as u64,
            relationships: report.graph.relationship_count() as u64,
            requests: report.requests,
            warnings: report.warnings,
            denials: report.denials.len() as u64,
            limit_hits: report.limit_hits.len() as u64,
            rejections: report.rejections.len() as u64,
        };
        let mut errors: Vec<String> = report.validation.clone().err().into_iter().collect();
        errors.extend(
            report
                .steps
                .iter()
                .filter_map(|s| Some(format!("step {}: {}", s.info.id, s.error.as_ref()?))),
        );
        let produced = report.steps.iter().any(|s| {
            matches!(
                s.status,
                StepStatus::Success | StepStatus::PartialSuccessDueToDependencyFailure
            )
        });
        let status = if report.succeeded() {
            RunStatus::Succeeded
        } else if report.validation.is_ok() && produced {
            RunStatus::Partial
        } else {
            RunStatus::Failed
        };
        Outcome {
            status,
            counts: Some(counts),
            errors,
        }
    }
}

/// A run as `GET /runs/{runId}` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub instance: String,
    /// `schedule` or `api`.
    pub trigger: String,
    pub status: RunStatus,
    pub plugin_id: Option<String>,
    pub plugin_version: Option<String>,
    pub plugin_digest: Option<String>,
    pub generation: Option<u64>,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub counts: Option<RunCounts>,
    pub errors: Vec<String>,
    /// The cluster worker that ran it (`null` when the serving process ran it itself).
    pub worker: Option<String>,
    /// How many times it was started (a cluster run is redelivered when its worker dies).
    pub attempts: Option<u64>,
    #[serde(skip)]
    pub started_at_ms: Option<u64>,
}

/// The plugin a run started on.
pub struct RunPlugin<'a> {
    pub id: &'a str,
    pub version: &'a str,
    pub digest: &'a str,
    pub generation: u64,
}

pub struct History {
    conn: Mutex<Connection>,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: run history: {source}")]
pub struct HistoryError {
    path: PathBuf,
    source: rusqlite::Error,
}

type Result<T> = std::result::Result<T, HistoryError>;

/// Run ids are `run-<n>`: n never repeats, across restarts too (AUTOINCREMENT).
fn run_id(seq: i64) -> String {
    format!("run-{seq}")
}

fn parse_run_id(id: &str) -> Option<i64> {
    id.strip_prefix("run-")?.parse().ok()
}

impl History {
    /// Opens (creating) the database in `data_dir` and marks runs left in flight by a
    /// previous process as failed. Returns how many were marked.
    pub fn open(data_dir: &Path) -> anyhow::Result<(History, usize)> {
        let history = History::open_kept(data_dir)?;
        let recovered = history.recover()?;
        Ok((history, recovered))
    }

    /// Opens the database leaving unfinished runs as they are: a cluster coordinator's
    /// runs live on in JetStream and are reconciled against it instead.
    pub fn open_kept(data_dir: &Path) -> anyhow::Result<History> {
        let (conn, path) = open_database(data_dir, SCHEMA)?;
        let wrap = |source| HistoryError {
            path: path.clone(),
            source,
        };
        add_columns(&conn).map_err(wrap)?;
        Ok(History {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// Marks failed the runs left queued or running by a process that is gone. Runs of a
    /// live process (a `corral run` beside this `corral serve`) are its own to finish.
    fn recover(&self) -> Result<usize> {
        let conn = self.conn.locked();
        let orphans: Vec<i64> = conn
            .prepare("SELECT seq, pid FROM runs WHERE status IN ('queued', 'running')")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<u32>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.wrap(e))?
            .into_iter()
            .filter(|(_, pid)| pid.is_none_or(|p| p == std::process::id() || !process_alive(p)))
            .map(|(seq, _)| seq)
            .collect();
        let errors = error_list(&["corral stopped while this run was in flight"]);
        for seq in &orphans {
            conn.execute(
                "UPDATE runs SET status = 'failed', errors = ?2, ended_at = ?3 WHERE seq = ?1",
                params![seq, errors, crate::capabilities::log::now_ms() as i64],
            )
            .map_err(|e| self.wrap(e))?;
        }
        Ok(orphans.len())
    }

    fn wrap(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a newly admitted run; returns its id.
    pub fn queue(&self, instance: &str, trigger: &str, at_ms: u64) -> Result<String> {
        let conn = self.conn.locked();
        conn.execute(
            "INSERT INTO runs (instance, trigger, status, queued_at, pid)
             VALUES (?1, ?2, 'queued', ?3, ?4)",
            params![instance, trigger, at_ms as i64, std::process::id()],
        )
        .map_err(|e| self.wrap(e))?;
        Ok(run_id(conn.last_insert_rowid()))
    }

    pub fn start(&self, run: &str, plugin: &RunPlugin, at_ms: u64) -> Result<()> {
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET status = 'running', plugin_id = ?2, plugin_version = ?3,
                 plugin_digest = ?4, generation = ?5, started_at = ?6, attempts = 1
                 WHERE seq = ?1",
                params![
                    parse_run_id(run),
                    plugin.id,
                    plugin.version,
                    plugin.digest,
                    plugin.generation as i64,
                    at_ms as i64
                ],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    pub fn finish(
        &self,
        run: &str,
        status: RunStatus,
        counts: Option<&RunCounts>,
        errors: &[String],
        at_ms: u64,
    ) -> Result<()> {
        let counts = counts.map(|c| serde_json::to_string(c).expect("counts serialise"));
        let errors = error_list(errors);
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET status = ?2, counts = ?3, errors = ?4, ended_at = ?5 WHERE seq = ?1",
                params![parse_run_id(run), status.as_str(), counts, errors, at_ms as i64],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    /// Records the generation a run was queued on a cluster with; it stays queued.
    pub fn plan(&self, run: &str, plugin: &RunPlugin) -> Result<()> {
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET plugin_id = ?2, plugin_version = ?3, plugin_digest = ?4,
                 generation = ?5 WHERE seq = ?1",
                params![
                    parse_run_id(run),
                    plugin.id,
                    plugin.version,
                    plugin.digest,
                    plugin.generation as i64
                ],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    /// Marks a queued cluster run running on `worker` (a later attempt moves it).
    pub fn taken(&self, run: &str, worker: &str, attempts: u64, at_ms: u64) -> Result<()> {
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET status = 'running', worker = ?2, attempts = ?3, started_at = ?4
                 WHERE seq = ?1 AND status IN ('queued', 'running')",
                params![
                    parse_run_id(run),
                    worker,
                    i64::try_from(attempts).unwrap_or(i64::MAX),
                    at_ms as i64
                ],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    /// Records which worker ran a cluster run, in how many attempts, and when it started.
    pub fn ran_on(
        &self,
        run: &str,
        worker: &str,
        attempts: u64,
        started_ms: Option<u64>,
    ) -> Result<()> {
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET worker = ?2, attempts = ?3, started_at = COALESCE(?4, started_at)
                 WHERE seq = ?1",
                params![
                    parse_run_id(run),
                    worker,
                    i64::try_from(attempts).unwrap_or(i64::MAX),
                    started_ms.map(|m| m as i64)
                ],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    /// Runs still queued or running, as (run id, instance), oldest first.
    pub fn unfinished(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn.locked();
        let mut stmt = conn
            .prepare(
                "SELECT seq, instance FROM runs WHERE status IN ('queued', 'running') ORDER BY seq",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map([], |r| Ok((run_id(r.get(0)?), r.get(1)?)))
            .map_err(|e| self.wrap(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.wrap(e))
    }

    /// Marks one unfinished run failed with `reason`.
    pub fn fail_one(&self, run: &str, reason: &str) -> Result<()> {
        let errors = error_list(&[reason]);
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET status = 'failed', errors = ?2, ended_at = ?3
                 WHERE seq = ?1 AND status IN ('queued', 'running')",
                params![
                    parse_run_id(run),
                    errors,
                    crate::capabilities::log::now_ms() as i64
                ],
            )
            .map_err(|e| self.wrap(e))?;
        Ok(())
    }

    /// Marks this process's queued and running runs failed with `reason`; returns how
    /// many.
    pub fn fail_unfinished(&self, reason: &str) -> Result<usize> {
        let errors = error_list(&[reason]);
        self.conn
            .locked()
            .execute(
                "UPDATE runs SET status = 'failed', errors = ?1, ended_at = ?2
                 WHERE status IN ('queued', 'running') AND pid = ?3",
                params![
                    errors,
                    crate::capabilities::log::now_ms() as i64,
                    std::process::id()
                ],
            )
            .map_err(|e| self.wrap(e))
    }

    pub fn get(&self, run: &str) -> Result<Option<RunRecord>> {
        let Some(seq) = parse_run_id(run) else {
            return Ok(None);
        };
        let conn = self.conn.locked();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM runs WHERE seq = ?1"),
            [seq],
            record,
        )
        .optional()
        .map_err(|e| self.wrap(e))
    }

    /// What the instance's last successful run cost: the requests it made and the
    /// objects it emitted (nothing known: none).
    pub fn expected(&self, instance: &str) -> Result<Expected> {
        let conn = self.conn.locked();
        let counts: Option<String> = conn
            .query_row(
                "SELECT counts FROM runs WHERE instance = ?1 AND status = 'succeeded'
                 AND counts IS NOT NULL ORDER BY seq DESC LIMIT 1",
                [instance],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.wrap(e))?;
        let counts = counts.and_then(|c| serde_json::from_str::<RunCounts>(&c).ok());
        Ok(Expected {
            requests: counts.as_ref().map(|c| c.requests),
            objects: counts.map(|c| c.entities.saturating_add(c.relationships)),
        })
    }

    /// The newest runs, of one instance or all, newest first.
    pub fn recent(&self, instance: Option<&str>, limit: u32) -> Result<Vec<RunRecord>> {
        let conn = self.conn.locked();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM runs WHERE ?1 IS NULL OR instance = ?1
                 ORDER BY seq DESC LIMIT ?2"
            ))
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map(params![instance, limit], record)
            .map_err(|e| self.wrap(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.wrap(e))
    }
}

const COLUMNS: &str = "seq, instance, trigger, status, plugin_id, plugin_version, plugin_digest,
    generation, queued_at, started_at, ended_at, counts, errors, worker, attempts";

fn record(row: &rusqlite::Row) -> rusqlite::Result<RunRecord> {
    let ms = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(|v| v as u64))
    };
    let counts: Option<String> = row.get(11)?;
    let errors: String = row.get(12)?;
    let started_at_ms = ms(9)?;
    Ok(RunRecord {
        run_id: run_id(row.get(0)?),
        instance: row.get(1)?,
        trigger: row.get(2)?,
        status: RunStatus::parse(&row.get::<_, String>(3)?),
        plugin_id: row.get(4)?,
        plugin_version: row.get(5)?,
        plugin_digest: row.get(6)?,
        generation: ms(7)?,
        queued_at: rfc3339(ms(8)?.unwrap_or_default()),
        started_at: started_at_ms.map(rfc3339),
        ended_at: ms(10)?.map(rfc3339),
        counts: counts.and_then(|c| serde_json::from_str(&c).ok()),
        errors: serde_json::from_str(&errors).unwrap_or_default(),
        worker: row.get(13)?,
        attempts: ms(14)?,
        started_at_ms,
    })
}

/// Epoch milliseconds as an RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_392_000_000), "2026-11-23T00:00:00.000Z");
    }

    #[test]
    fn the_last_successful_runs_counts_are_the_estimate() {
        let dir = std::env::temp_dir().join(format!("corral-history-req-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (h, _) = History::open(&dir).unwrap();
        assert_eq!(h.expected("a").unwrap(), Expected::default());
        let counts = |requests| RunCounts {
            requests,
            entities: requests / 2,
            relationships: 1,
            ..RunCounts::default()
        };
        for (instance, status, requests) in [
            ("a", RunStatus::Succeeded, 10_052),
            ("a", RunStatus::Failed, 3),
            ("b", RunStatus::Succeeded, 7),
        ] {
            let run = h.queue(instance, "api", 1).unwrap();
            h.finish(&run, status, Some(&counts(requests)), &[], 2)
                .unwrap();
        }
        // A failed run and another instance's run are not the estimate.
        let expected = |requests, objects| Expected {
            requests: Some(requests),
            objects: Some(objects),
        };
        assert_eq!(h.expected("a").unwrap(), expected(10_052, 5_027));
        assert_eq!(h.expected("b").unwrap(), expected(7, 4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn runs_survive_reopening_and_unfinished_ones_fail() {
        let dir = std::env::temp_dir().join(format!("corral-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (h, recovered) = History::open(&dir).unwrap();
        assert_eq!(recovered, 0);
        let done = h.queue("a", "api", 1_000).unwrap();
        let plugin = RunPlugin {
            id: "kandji",
            version: "1.0.0",
            digest: "abc",
            generation: 2,
        };
        h.start(&done, &plugin, 1_001).unwrap();
        let counts = RunCounts {
            entities: 5,
            ..Default::default()
        };
        h.finish(&done, RunStatus::Succeeded, Some(&counts), &[], 1_002)
            .unwrap();
        let running = h.queue("a", "schedule", 2_000).unwrap();
        h.start(&running, &plugin, 2_001).unwrap();
        drop(h);

        let (h, recovered) = History::open(&dir).unwrap();
        assert_eq!(recovered, 1);
        let r = h.get(&done).unwrap().unwrap();
        assert_eq!(r.status, RunStatus::Succeeded);
        assert_eq!(r.counts, Some(counts));
        assert_eq!(
            (r.plugin_digest.as_deref(), r.generation),
            (Some("abc"), Some(2))
        );
        let r = h.get(&running).unwrap().unwrap();
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.errors, ["corral stopped while this run was in flight"]);
        assert_ne!(h.queue("a", "api", 3_000).unwrap(), running);
        assert_eq!(h.recent(Some("a"), 10).unwrap().len(), 3);
        assert!(h.get("run-999").unwrap().is_none());
        assert!(h.get("nonsense").unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
