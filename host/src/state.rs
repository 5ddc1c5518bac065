//! The local graph state in SQLite (`data_dir/corral.db`, beside the run history): per
//! instance, every entity and relationship of its last run (key, type, content hash, the
//! object) and each run's change set. A run's changes are written in one transaction, so
//! a process killed mid-run or mid-write leaves the previous state whole.

use crate::changes::{self, Change, StateObject};
use crate::lock::LockExt;
use crate::run::RunReport;
use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS graph_objects (
    instance     TEXT NOT NULL,
    key          TEXT NOT NULL,
    type         TEXT NOT NULL,
    relationship INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    object       TEXT NOT NULL,
    PRIMARY KEY (instance, key)
);
CREATE INDEX IF NOT EXISTS graph_objects_by_type ON graph_objects(instance, type);
CREATE TABLE IF NOT EXISTS graph_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS graph_changes_by_instance ON graph_changes(instance, seq);
";

pub struct GraphState {
    conn: Mutex<Connection>,
}

/// What recording a run produced.
pub struct Recorded {
    /// `changes.json`.
    pub document: Value,
    pub changes: Vec<Change>,
}

impl GraphState {
    pub fn open(data_dir: &Path) -> anyhow::Result<GraphState> {
        let (conn, _) = crate::history::open_database(data_dir, SCHEMA)?;
        Ok(GraphState {
            conn: Mutex::new(conn),
        })
    }

    /// The stored objects of `instance`, by key.
    pub fn objects(&self, instance: &str) -> anyhow::Result<HashMap<String, StateObject>> {
        let conn = self.conn.locked();
        let mut stmt = conn.prepare(
            "SELECT key, type, relationship, hash, object FROM graph_objects WHERE instance = ?1",
        )?;
        let rows = stmt.query_map([instance], |r| {
            Ok(StateObject {
                key: r.get(0)?,
                type_name: r.get(1)?,
                relationship: r.get(2)?,
                hash: r.get(3)?,
                object: parse_object(&r.get::<_, String>(4)?),
            })
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let o = row?;
            out.insert(o.key.clone(), o);
        }
        Ok(out)
    }

    /// Compares the run's graph with the state, then writes the new state and the change
    /// set in one transaction. Objects of the run's partial types that it did not emit
    /// stay as they were.
    pub fn record(&self, run_id: &str, report: &RunReport) -> anyhow::Result<Recorded> {
        let current = report
            .graph
            .entities
            .iter()
            .map(|s| StateObject::new(s.object.clone(), false))
            .chain(
                report
                    .graph
                    .relationships
                    .iter()
                    .map(|s| StateObject::new(s.object.clone(), true)),
            )
            .collect();
        let partial: BTreeSet<String> = report.partial_types().into_iter().collect();
        self.record_objects(&report.instance_id, run_id, current, &partial)
    }

    /// [`GraphState::record`] for objects from anywhere (the benchmarks).
    pub fn record_objects(
        &self,
        instance: &str,
        run_id: &str,
        current: Vec<StateObject>,
        partial: &BTreeSet<String>,
    ) -> anyhow::Result<Recorded> {
        let previous = self.objects(instance)?;
        let diff = changes::diff(&previous, current, partial);
        let document = changes::document(instance, run_id, diff.baseline, partial, &diff.changes);
        self.write(instance, run_id, &diff, &document)
            .with_context(|| format!("instance {instance}: writing the graph state"))?;
        Ok(Recorded {
            document,
            changes: diff.changes,
        })
    }

    fn write(
        &self,
        instance: &str,
        run_id: &str,
        diff: &changes::Diff,
        document: &Value,
    ) -> rusqlite::Result<()> {
        let mut conn = self.conn.locked();
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare(
                "INSERT OR REPLACE INTO graph_objects (instance, key, type, relationship, hash, object)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for o in &diff.upserts {
                let text = serde_json::to_string(&o.object).expect("JSON values serialise");
                upsert.execute(params![
                    instance,
                    o.key,
                    o.type_name,
                    o.relationship,
                    o.hash,
                    text
                ])?;
            }
            let mut delete =
                tx.prepare("DELETE FROM graph_objects WHERE instance = ?1 AND key = ?2")?;
            for key in &diff.deletions {
                delete.execute(params![instance, key])?;
            }
            tx.execute(
                "INSERT INTO graph_changes (instance, run_id, document) VALUES (?1, ?2, ?3)",
                params![instance, run_id, document.to_string()],
            )?;
        }
        tx.commit()
    }

    /// The change set of `run`, or of the instance's latest run.
    pub fn changes(&self, instance: &str, run: Option<&str>) -> anyhow::Result<Option<Value>> {
        let conn = self.conn.locked();
        let text: Option<String> = match run {
            Some(r) => conn
                .query_row(
                    "SELECT document FROM graph_changes WHERE instance = ?1 AND run_id = ?2",
                    params![instance, r],
                    |row| row.get(0),
                )
                .optional()?,
            None => conn
                .query_row(
                    "SELECT document FROM graph_changes WHERE instance = ?1 ORDER BY seq DESC LIMIT 1",
                    [instance],
                    |row| row.get(0),
                )
                .optional()?,
        };
        Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::Null)))
    }

    /// Stored objects of one instance (or all) whose `_type` matches `type_glob`, with
    /// their instance.
    pub fn select(
        &self,
        instance: Option<&str>,
        type_glob: Option<&str>,
    ) -> anyhow::Result<Vec<(String, Map<String, Value>)>> {
        let conn = self.conn.locked();
        let mut stmt = conn.prepare(
            "SELECT instance, type, object FROM graph_objects
             WHERE ?1 IS NULL OR instance = ?1 ORDER BY instance, type, key",
        )?;
        let rows = stmt.query_map([instance], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (inst, ty, text) = row?;
            if type_glob.is_none_or(|g| crate::policy::glob_match(g, &ty)) {
                out.push((inst, parse_object(&text)));
            }
        }
        Ok(out)
    }
}

fn parse_object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}
