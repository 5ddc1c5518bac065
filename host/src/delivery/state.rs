//! The local graph state in SQLite (`data_dir/corral.db`, beside the run history): per
//! instance, every entity and relationship of its last run and each run's change set.
//! The index (key, type, content hash) is kept apart from the objects, so change
//! detection reads hashes only and loads the objects that changed. A run's changes are
//! written in one transaction, so a process killed mid-run or mid-write leaves the
//! previous state whole.

use crate::capabilities::graph::{GraphStore, Kind};
use crate::changes::{self, ChangeKind, ChangeSet, Previous, Seen, StateObject};
use crate::lock::LockExt;
use crate::run::RunReport;
use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS state_index (
    instance     TEXT NOT NULL,
    key          TEXT NOT NULL,
    type         TEXT NOT NULL,
    relationship INTEGER NOT NULL,
    hash         BLOB NOT NULL,
    PRIMARY KEY (instance, key)
);
CREATE TABLE IF NOT EXISTS state_objects (
    instance TEXT NOT NULL,
    key      TEXT NOT NULL,
    object   TEXT NOT NULL,
    PRIMARY KEY (instance, key)
);
CREATE TABLE IF NOT EXISTS graph_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS graph_changes_by_instance ON graph_changes(instance, seq);
CREATE INDEX IF NOT EXISTS state_index_by_type ON state_index(instance, type, key);
CREATE TABLE IF NOT EXISTS state_meta (
    instance TEXT PRIMARY KEY,
    redacted INTEGER NOT NULL,
    partial  INTEGER NOT NULL DEFAULT 0
);
";

/// States written before the index was split from the objects kept both in
/// `graph_objects` (hash as hex text, the same content hash).
const MIGRATE_V1: &str = "
INSERT OR REPLACE INTO state_index (instance, key, type, relationship, hash)
    SELECT instance, key, type, relationship, unhex(hash) FROM graph_objects;
INSERT OR REPLACE INTO state_objects (instance, key, object)
    SELECT instance, key, object FROM graph_objects;
DROP TABLE graph_objects;
";

pub struct GraphState {
    conn: Mutex<Connection>,
    /// The database file, for the read-only readers runs get.
    path: std::path::PathBuf,
}

/// What recording a run produced.
pub struct Recorded {
    /// `changes.json` as written, in an unnamed file of the data directory (gone when
    /// dropped or when the process dies): a baseline's lists every key, megabytes that
    /// are never held whole.
    pub document: std::fs::File,
    /// The document without its key lists: baseline, totals, per-type counts.
    pub summary: Value,
    /// The changes with their objects (only when asked for: see [`GraphState::record`]).
    pub changes: Vec<changes::Change>,
    pub baseline: bool,
}

impl GraphState {
    pub fn open(data_dir: &Path) -> anyhow::Result<GraphState> {
        let (mut conn, path) = crate::delivery::history::open_database(data_dir, SCHEMA)?;
        migrate(&mut conn)
            .with_context(|| format!("{}: migrating the graph state", path.display()))?;
        Ok(GraphState {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// A reader of `instance`'s previous graph for its next run, with a read-only
    /// connection of its own (opened when first read), so a run never waits on the
    /// writes of another run's delivery.
    pub fn previous(&self, instance: &str) -> PreviousState {
        PreviousState {
            path: self.path.clone(),
            instance: instance.to_string(),
            conn: std::sync::OnceLock::new(),
            cursors: Mutex::default(),
            next_cursor: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// Every stored object of `instance`, by key (tests and small tools: this holds
    /// them all).
    pub fn objects(&self, instance: &str) -> anyhow::Result<HashMap<String, StateObject>> {
        let conn = self.conn.locked();
        let mut stmt = conn.prepare(
            "SELECT i.key, i.type, i.relationship, o.object FROM state_index i
             JOIN state_objects o ON o.instance = i.instance AND o.key = i.key
             WHERE i.instance = ?1",
        )?;
        let rows = stmt.query_map([instance], |r| {
            Ok(StateObject {
                key: r.get(0)?,
                type_name: r.get(1)?,
                relationship: r.get(2)?,
                object: parse_object(&r.get::<_, String>(3)?),
            })
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let o = row?;
            out.insert(o.key.clone(), o);
        }
        Ok(out)
    }

    /// Compares the run's graph with the state, then writes the new state and the
    /// change set in one transaction. Objects of the run's partial types that it did
    /// not emit stay as they were. `keep_changes`: also return each change with its
    /// object (alert rules match on them).
    pub fn record(
        &self,
        run_id: &str,
        report: &RunReport,
        keep_changes: bool,
    ) -> anyhow::Result<Recorded> {
        let partial: BTreeSet<String> = report.partial_types().into_iter().collect();
        let graph = &report.graph;
        self.record_graph(&report.instance_id, run_id, graph, &partial, keep_changes)
    }

    /// [`GraphState::record`] for a graph and its partial types.
    pub fn record_graph(
        &self,
        instance: &str,
        run_id: &str,
        graph: &GraphStore,
        partial: &BTreeSet<String>,
        keep_changes: bool,
    ) -> anyhow::Result<Recorded> {
        let mut conn = self.conn.locked();
        // The write lock from the start: a read transaction upgraded later fails at once
        // (SQLITE_BUSY_SNAPSHOT) if the run history committed in between.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let recording = Recording {
            instance,
            run_id,
            graph,
            partial,
            keep_changes,
            document: tempfile::tempfile_in(dir)
                .with_context(|| format!("{}: cannot create a file", dir.display()))?,
        };
        let recorded = record_in(&tx, recording)
            .with_context(|| format!("instance {instance}: writing the graph state"))?;
        tx.commit()
            .with_context(|| format!("instance {instance}: writing the graph state"))?;
        Ok(recorded)
    }

    /// Whether `run` of `instance` has its change set stored (written with the state, in
    /// one transaction).
    pub fn has_changes(&self, instance: &str, run: &str) -> anyhow::Result<bool> {
        let conn = self.conn.locked();
        Ok(conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM graph_changes WHERE instance = ?1 AND run_id = ?2)",
            params![instance, run],
            |row| row.get(0),
        )?)
    }

    /// The change set of `run`, or of the instance's latest run.
    pub fn changes(&self, instance: &str, run: Option<&str>) -> anyhow::Result<Option<Value>> {
        let conn = self.conn.locked();
        let text: Option<String> = match run {
            Some(r) => conn
                .query_row(
                    "SELECT CAST(document AS TEXT) FROM graph_changes
                     WHERE instance = ?1 AND run_id = ?2",
                    params![instance, r],
                    |row| row.get(0),
                )
                .optional()?,
            None => conn
                .query_row(
                    "SELECT CAST(document AS TEXT) FROM graph_changes
                     WHERE instance = ?1 ORDER BY seq DESC LIMIT 1",
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
            "SELECT i.instance, i.type, o.object FROM state_index i
             JOIN state_objects o ON o.instance = i.instance AND o.key = i.key
             WHERE ?1 IS NULL OR i.instance = ?1 ORDER BY i.instance, i.type, i.key",
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

/// One instance's graph as its last delivered run left it (objects of partial types
/// included), read by its next run (see `capabilities::graph::PreviousGraph`).
pub struct PreviousState {
    path: std::path::PathBuf,
    instance: String,
    conn: std::sync::OnceLock<Result<Mutex<Connection>, String>>,
    /// The pages handed out: cursor → (`_type`, the last key of the page before). A page
    /// is read after that key through the index, never by skipping rows, so a call costs
    /// its page whatever the cursor; a cursor not handed out gives an empty page.
    cursors: Mutex<HashMap<u32, (String, String)>>,
    next_cursor: std::sync::atomic::AtomicU32,
}

/// Cursors a run's reader keeps; past them, the oldest are forgotten.
const MAX_CURSORS: usize = 4096;

/// Only an instance whose stored objects never held a redacted secret, and whose last
/// recorded run was complete, is read. After a partial run the state mixes that run's
/// types with older ones (a failed step's types keep the run before's objects), which a
/// connector re-emitting from it would take for one consistent graph: its next run sees
/// no previous graph and collects everything, as a first run does.
const READABLE: &str = "NOT EXISTS (SELECT 1 FROM state_meta m WHERE m.instance = ?1
    AND (m.redacted > 0 OR m.partial > 0))";

impl PreviousState {
    /// A cursor for the page after `last_key`.
    fn issue_cursor(&self, type_name: &str, last_key: String) -> Option<u32> {
        let cursor = self
            .next_cursor
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if cursor == 0 || cursor == u32::MAX {
            return None;
        }
        let mut cursors = self.cursors.locked();
        if cursors.len() >= MAX_CURSORS {
            cursors.clear();
        }
        cursors.insert(cursor, (type_name.to_string(), last_key));
        Some(cursor)
    }

    /// A `state_meta` flag of the instance (`redacted` or `partial`).
    fn flag(&self, column: &'static str) -> anyhow::Result<bool> {
        self.with_conn(|c| {
            let value: Option<i64> = c
                .query_row(
                    &format!("SELECT {column} FROM state_meta WHERE instance = ?1"),
                    [&self.instance],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(value.unwrap_or(0) > 0)
        })
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let conn = self.conn.get_or_init(|| {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(&self.path, flags)
                .and_then(|c| {
                    c.busy_timeout(std::time::Duration::from_secs(30))?;
                    Ok(Mutex::new(c))
                })
                .map_err(|e| format!("{}: {e}", self.path.display()))
        });
        match conn {
            Ok(c) => Ok(f(&c.locked())?),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }
}

impl crate::capabilities::graph::PreviousGraph for PreviousState {
    fn object(&self, key: &str) -> anyhow::Result<Option<(String, String)>> {
        self.with_conn(|c| {
            c.query_row(
                &format!(
                    "SELECT i.type, o.object FROM state_index i
                     JOIN state_objects o ON o.instance = i.instance AND o.key = i.key
                     WHERE i.instance = ?1 AND i.key = ?2 AND {READABLE}"
                ),
                params![self.instance, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
    }

    fn page(
        &self,
        type_name: &str,
        cursor: u32,
        limit: u32,
    ) -> anyhow::Result<(Vec<String>, Option<u32>)> {
        let after = match cursor {
            0 => String::new(),
            c => match self.cursors.locked().get(&c) {
                Some((t, key)) if t == type_name => key.clone(),
                _ => return Ok((Vec::new(), None)),
            },
        };
        let rows: Vec<(String, String)> = self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT i.key, o.object FROM state_index i
                 JOIN state_objects o ON o.instance = i.instance AND o.key = i.key
                 WHERE i.instance = ?1 AND i.type = ?2 AND i.key > ?3 AND {READABLE}
                 ORDER BY i.key LIMIT ?4"
            ))?;
            // One more than asked: whether there is a next page.
            let rows = stmt.query_map(
                params![self.instance, type_name, after, i64::from(limit) + 1],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect()
        })?;
        let more = rows.len() > limit as usize;
        let mut texts = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last = String::new();
        for (key, text) in rows.into_iter().take(limit as usize) {
            last = key;
            texts.push(text);
        }
        let next = if more {
            self.issue_cursor(type_name, last)
        } else {
            None
        };
        Ok((texts, next))
    }

    fn held_redactions(&self) -> anyhow::Result<bool> {
        self.flag("redacted")
    }

    fn was_partial(&self) -> anyhow::Result<bool> {
        self.flag("partial")
    }
}

/// States written before the partial flag existed may hold a partial run's mix: each such
/// instance is flagged, so its next run collects everything once. Checked and added in
/// one write transaction, so two processes opening an old state at once both start.
fn add_partial_flag(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let has: bool = tx.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('state_meta') WHERE name = 'partial'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        tx.execute_batch(
            "ALTER TABLE state_meta ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;
             UPDATE state_meta SET partial = 1 WHERE instance <> '';",
        )?;
    }
    tx.commit()
}

/// States written before the redaction flag existed: an instance whose stored objects
/// hold the redaction marker is flagged (its previous graph is never read back); the
/// row of instance `""` (no instance has that id) records that this was done.
const BACKFILL_REDACTED: &str = "
INSERT OR IGNORE INTO state_meta (instance, redacted)
    SELECT DISTINCT instance, 1 FROM state_objects WHERE instr(object, '[REDACTED]') > 0;
INSERT OR IGNORE INTO state_meta (instance, redacted) VALUES ('', 0);
";

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    add_partial_flag(conn)?;
    let backfilled: bool = conn.query_row(
        "SELECT COUNT(*) FROM state_meta WHERE instance = ''",
        [],
        |r| r.get(0),
    )?;
    if !backfilled {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(BACKFILL_REDACTED)?;
        tx.commit()?;
    }
    let old: bool = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'graph_objects'",
        [],
        |r| r.get(0),
    )?;
    if old {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATE_V1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The previous state's index of `instance`.
fn previous(tx: &Transaction<'_>, instance: &str) -> rusqlite::Result<Previous> {
    let count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM state_index WHERE instance = ?1",
        [instance],
        |r| r.get(0),
    )?;
    let mut previous = Previous::builder(usize::try_from(count).unwrap_or(0));
    let mut stmt = tx.prepare("SELECT rowid, key, hash FROM state_index WHERE instance = ?1")?;
    let mut rows = stmt.query([instance])?;
    while let Some(row) = rows.next()? {
        let key = row.get_ref(1)?.as_str()?;
        previous.add(row.get(0)?, key, row.get_ref(2)?.as_blob()?);
    }
    Ok(previous.finish())
}

/// What [`GraphState::record_graph`] records.
struct Recording<'a> {
    instance: &'a str,
    run_id: &'a str,
    graph: &'a GraphStore,
    partial: &'a BTreeSet<String>,
    keep_changes: bool,
    /// Where the change set document is written.
    document: std::fs::File,
}

fn record_in(tx: &Transaction<'_>, r: Recording<'_>) -> anyhow::Result<Recorded> {
    let Recording {
        instance,
        run_id,
        graph,
        partial,
        keep_changes,
        mut document,
    } = r;
    let mut previous = previous(tx, instance)?;
    let baseline = previous.is_empty();
    // Sticky: once an object of the instance was stored redacted, its previous graph is
    // never read back (`capabilities::graph::previous`). Not sticky: whether this run was
    // partial (the next complete run makes the state one graph again).
    tx.execute(
        "INSERT INTO state_meta (instance, redacted, partial) VALUES (?1, ?2, ?3)
         ON CONFLICT(instance) DO UPDATE SET redacted = MAX(redacted, excluded.redacted),
         partial = excluded.partial",
        params![
            instance,
            i64::try_from(graph.redacted()).unwrap_or(i64::MAX),
            i64::from(!partial.is_empty())
        ],
    )?;
    // The baseline is all "created": its objects are not wanted for alerts, and its keys
    // are listed from the state once written, not held.
    let mut set = if baseline {
        ChangeSet::baseline()
    } else {
        ChangeSet::new(keep_changes)
    };
    let mut upsert_index = tx.prepare_cached(
        "INSERT OR REPLACE INTO state_index (instance, key, type, relationship, hash)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut upsert_object = tx.prepare_cached(
        "INSERT OR REPLACE INTO state_objects (instance, key, object) VALUES (?1, ?2, ?3)",
    )?;
    let mut old_object =
        tx.prepare_cached("SELECT object FROM state_objects WHERE instance = ?1 AND key = ?2")?;
    graph.scan(|item| {
        let seen = previous.observe(item.key, item.hash);
        if seen == Seen::Unchanged {
            return Ok(());
        }
        let relationship = item.group.kind == Kind::Relationship;
        let type_name = &item.group.type_name;
        let text = std::str::from_utf8(item.json)?;
        let (kind, properties, object) = match seen {
            Seen::Updated => {
                let before: Option<String> = old_object
                    .query_row(params![instance, item.key], |r| r.get(0))
                    .optional()?;
                let after = parse_object(text);
                let before = before.as_deref().map(parse_object).unwrap_or_default();
                let properties = changes::changed_properties(&before, &after);
                (ChangeKind::Updated, properties, Some(after))
            }
            _ => {
                let object = set.keeps_objects().then(|| parse_object(text));
                (ChangeKind::Created, BTreeMap::new(), object)
            }
        };
        upsert_index.execute(params![
            instance,
            item.key,
            type_name,
            relationship,
            &item.hash[..]
        ])?;
        upsert_object.execute(params![instance, item.key, text])?;
        let object = object
            .filter(|_| set.keeps_objects())
            .map(|object| StateObject {
                key: item.key.to_string(),
                type_name: type_name.clone(),
                relationship,
                object,
            });
        set.add(kind, item.key, type_name, properties, object);
        Ok(())
    })?;
    delete_unseen(tx, instance, &previous, partial, &mut set)?;
    let (summary, changes) = if baseline {
        let out = std::io::BufWriter::new(&mut document);
        let summary = baseline_changes(tx, instance, run_id, partial, set, out)?;
        (summary, Vec::new())
    } else {
        let (text, summary, changes) = set.finish(instance, run_id, baseline, partial)?;
        document.write_all(text.as_bytes())?;
        (summary, changes)
    };
    store_document(tx, instance, run_id, &mut document)?;
    Ok(Recorded {
        document,
        summary,
        changes,
        baseline,
    })
}

/// Copies the change set document from `file` into its `graph_changes` row a piece at
/// a time (SQLite's incremental blob writes), never holding it whole.
fn store_document(
    tx: &Transaction<'_>,
    instance: &str,
    run_id: &str,
    file: &mut std::fs::File,
) -> anyhow::Result<()> {
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    let len = i64::try_from(len).context("the change set is too large to store")?;
    tx.execute(
        "INSERT INTO graph_changes (instance, run_id, document) VALUES (?1, ?2, zeroblob(?3))",
        params![instance, run_id, len],
    )?;
    let mut blob = tx.blob_open(
        rusqlite::MAIN_DB,
        "graph_changes",
        "document",
        tx.last_insert_rowid(),
        false,
    )?;
    let copied = std::io::copy(file, &mut blob)?;
    anyhow::ensure!(
        i64::try_from(copied) == Ok(len),
        "the change set document changed while it was stored ({copied} of {len} bytes)"
    );
    Ok(())
}

/// A baseline's change set document, its created keys read back in order from the
/// state just written (see [`ChangeSet::baseline`]).
fn baseline_changes(
    tx: &Transaction<'_>,
    instance: &str,
    run_id: &str,
    partial: &BTreeSet<String>,
    set: ChangeSet,
    out: impl Write,
) -> anyhow::Result<Value> {
    let keys: i64 = tx.query_row(
        "SELECT COUNT(*) FROM state_index WHERE instance = ?1",
        [instance],
        |r| r.get(0),
    )?;
    let total = usize::try_from(keys).unwrap_or(0);
    let mut stmt = tx.prepare_cached(
        "SELECT type, key FROM state_index WHERE instance = ?1 ORDER BY type, key",
    )?;
    let rows = stmt.query_map([instance], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let rows = rows.map(|r| r.map_err(anyhow::Error::from));
    set.finish_baseline((instance, run_id), partial, rows, total, out)
}

/// Deletes what the run did not emit, but for its partial types, and records the
/// deletions.
fn delete_unseen(
    tx: &Transaction<'_>,
    instance: &str,
    previous: &Previous,
    partial: &BTreeSet<String>,
    set: &mut ChangeSet,
) -> anyhow::Result<()> {
    let mut row = tx.prepare_cached(
        "SELECT i.key, i.type, i.relationship, o.object FROM state_index i
         LEFT JOIN state_objects o ON o.instance = i.instance AND o.key = i.key
         WHERE i.rowid = ?1",
    )?;
    let mut delete_index =
        tx.prepare_cached("DELETE FROM state_index WHERE instance = ?1 AND key = ?2")?;
    let mut delete_object =
        tx.prepare_cached("DELETE FROM state_objects WHERE instance = ?1 AND key = ?2")?;
    for rowid in previous.unseen() {
        let (key, type_name, relationship, text): (String, String, bool, Option<String>) = row
            .query_row([rowid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        if partial.contains(&type_name) {
            continue;
        }
        delete_index.execute(params![instance, key])?;
        delete_object.execute(params![instance, key])?;
        let object = set.keeps_objects().then(|| StateObject {
            key: key.clone(),
            type_name: type_name.clone(),
            relationship,
            object: text.as_deref().map(parse_object).unwrap_or_default(),
        });
        set.add(
            ChangeKind::Deleted,
            &key,
            &type_name,
            BTreeMap::new(),
            object,
        );
    }
    Ok(())
}

fn parse_object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::graph::NewObject;
    use serde_json::json;
    use std::io::Read;

    fn graph(objects: &[Value]) -> GraphStore {
        let mut g = GraphStore::default();
        for o in objects {
            let o = o.as_object().unwrap();
            g.insert(NewObject {
                kind: Kind::Entity,
                step: "s",
                type_name: o["_type"].as_str().unwrap(),
                key: o["_key"].as_str().unwrap(),
                stored: o,
                raw_data: None,
                original: None,
            })
            .unwrap();
        }
        g.seal().unwrap();
        g
    }

    /// The change set document `rec` wrote, read from the start.
    fn read_document(rec: &Recorded) -> String {
        let mut file = &rec.document;
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    }

    fn device(key: &str, os: &str) -> Value {
        json!({"_key": key, "_type": "d", "_class": ["Device"], "name": key, "os": os})
    }

    #[test]
    fn a_state_of_the_earlier_layout_is_migrated_and_diffed_by_hash() {
        let dir = std::env::temp_dir().join(format!("corral-state-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        {
            // The one-table layout of earlier versions, with its hex hashes.
            let conn = Connection::open(dir.join(crate::delivery::history::DB_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE graph_objects (instance TEXT NOT NULL, key TEXT NOT NULL,
                 type TEXT NOT NULL, relationship INTEGER NOT NULL, hash TEXT NOT NULL,
                 object TEXT NOT NULL, PRIMARY KEY (instance, key));",
            )
            .unwrap();
            for (key, os) in [
                ("device-0001", "14"),
                ("device-0002", "14"),
                ("other-0003", "1"),
            ] {
                let o = device(key, os);
                let hash =
                    hex::encode(corral_core::canonical::content_hash(o.as_object().unwrap()));
                let ty = if key.starts_with("other") { "o" } else { "d" };
                conn.execute(
                    "INSERT INTO graph_objects VALUES ('i', ?1, ?2, 0, ?3, ?4)",
                    params![key, ty, hash, o.to_string()],
                )
                .unwrap();
            }
        }
        let state = GraphState::open(&dir).unwrap();
        assert_eq!(state.objects("i").unwrap().len(), 3);
        // device-0001 as it was, device-0002 updated, other-0003 (a partial type) absent.
        let run = graph(&[device("device-0001", "14"), device("device-0002", "15")]);
        let partial = BTreeSet::from(["o".to_string()]);
        let rec = state
            .record_graph("i", "run-2", &run, &partial, true)
            .unwrap();
        let doc: Value = serde_json::from_str(&read_document(&rec)).unwrap();
        assert!(!rec.baseline);
        assert_eq!(
            doc["totals"],
            json!({"created": 0, "updated": 1, "deleted": 0})
        );
        assert_eq!(
            doc["types"]["d"]["updated"],
            json!([{"_key": "device-0002", "properties": {"os": {"before": "14", "after": "15"}}}])
        );
        assert_eq!(rec.changes.len(), 1);
        assert_eq!(rec.changes[0].object.object["os"], "15");
        // Not partial any more: other-0003 is deleted, and the state is the run's graph.
        let rec = state
            .record_graph("i", "run-3", &run, &BTreeSet::new(), false)
            .unwrap();
        assert_eq!(
            rec.summary["totals"],
            json!({"created": 0, "updated": 0, "deleted": 1})
        );
        assert!(rec.changes.is_empty());
        let mut keys: Vec<String> = state.objects("i").unwrap().into_keys().collect();
        keys.sort();
        assert_eq!(keys, ["device-0001", "device-0002"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `g` with one more object stored redacted (it held a secret value).
    fn with_redacted(objects: &[Value], redacted: &Value) -> GraphStore {
        let mut g = GraphStore::default();
        for o in objects.iter().chain([redacted]) {
            let map = o.as_object().unwrap();
            let original = std::ptr::eq(o, redacted).then(|| b"as emitted".to_vec());
            g.insert(NewObject {
                kind: Kind::Entity,
                step: "s",
                type_name: map["_type"].as_str().unwrap(),
                key: map["_key"].as_str().unwrap(),
                stored: map,
                raw_data: None,
                original,
            })
            .unwrap();
        }
        g.seal().unwrap();
        g
    }

    #[test]
    fn a_state_meta_without_the_partial_flag_gains_it() {
        use crate::capabilities::graph::PreviousGraph;
        let dir = std::env::temp_dir().join(format!("corral-state-meta-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Connection::open(dir.join("corral.db"))
            .unwrap()
            .execute_batch(&format!(
                "{}
                 INSERT INTO state_meta VALUES ('i', 0), ('', 0);
                 INSERT INTO state_index VALUES ('i', 'device-0001', 'd', 0, x'00');
                 INSERT INTO state_objects VALUES ('i', 'device-0001', '{{\"_key\":\"device-0001\"}}');",
                SCHEMA.replace(",\n    partial  INTEGER NOT NULL DEFAULT 0", "")
            ))
            .unwrap();
        let state = GraphState::open(&dir).unwrap();
        let devices = vec![device("device-0001", "14")];
        let (none, partial): (BTreeSet<String>, BTreeSet<String>) =
            (BTreeSet::new(), ["d".to_string()].into());
        // Whether the old state mixed two runs is unknown: not read until a complete
        // run (and opening it again changes nothing).
        let _ = GraphState::open(&dir).unwrap();
        assert_eq!(state.previous("i").object("device-0001").unwrap(), None);
        state
            .record_graph("i", "run-1", &graph(&devices), &none, false)
            .unwrap();
        assert!(state.previous("i").object("device-0001").unwrap().is_some());
        state
            .record_graph("i", "run-2", &graph(&devices), &partial, false)
            .unwrap();
        assert_eq!(state.previous("i").object("device-0001").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_next_run_reads_the_previous_graph_by_key_and_by_type_in_pages() {
        use crate::capabilities::graph::PreviousGraph;
        let dir = std::env::temp_dir().join(format!("corral-state-prev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = GraphState::open(&dir).unwrap();
        let none = BTreeSet::new();
        let devices: Vec<Value> = (1..=5)
            .map(|n| device(&format!("device-{n:04}"), "14"))
            .collect();
        // Before any run: an empty previous graph.
        let reader = state.previous("i");
        assert_eq!(reader.object("device-0001").unwrap(), None);
        assert_eq!(reader.page("d", 0, 10).unwrap(), (Vec::new(), None));
        state
            .record_graph("i", "run-1", &graph(&devices), &none, false)
            .unwrap();
        let reader = state.previous("i");
        let (ty, text) = reader.object("device-0003").unwrap().unwrap();
        assert_eq!(ty, "d");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), devices[2]);
        assert_eq!(state.previous("other").object("device-0003").unwrap(), None);
        // Pages in key order; a cursor is handed out with each page and names the key
        // the next page starts after; the last page has no next.
        let (first, next) = reader.page("d", 0, 2).unwrap();
        assert_eq!(first.len(), 2);
        let (_, next) = reader.page("d", next.unwrap(), 2).unwrap();
        let (last, end) = reader.page("d", next.unwrap(), 2).unwrap();
        assert_eq!((last.len(), end), (1, None));
        let key = |t: &str| serde_json::from_str::<Value>(t).unwrap()["_key"].clone();
        assert_eq!(key(&first[0]), "device-0001");
        assert_eq!(key(&last[0]), "device-0005");
        // A cursor never handed out, or handed out for another type, reads nothing.
        assert_eq!(
            reader.page("d", u32::MAX, 1000).unwrap(),
            (Vec::new(), None)
        );
        let (_, c) = reader.page("d", 0, 1).unwrap();
        assert_eq!(
            reader.page("o", c.unwrap(), 10).unwrap(),
            (Vec::new(), None)
        );
        assert!(!reader.held_redactions().unwrap());
        // After a partial run the state is no one run's graph: it reads as empty until
        // a complete run is recorded.
        let partial: BTreeSet<String> = ["o".to_string()].into();
        state
            .record_graph("i", "run-p", &graph(&devices), &partial, false)
            .unwrap();
        let reader = state.previous("i");
        assert_eq!(reader.object("device-0003").unwrap(), None);
        assert_eq!(reader.page("d", 0, 10).unwrap(), (Vec::new(), None));
        assert!(reader.was_partial().unwrap());
        state
            .record_graph("i", "run-c", &graph(&devices), &none, false)
            .unwrap();
        assert!(state.previous("i").object("device-0003").unwrap().is_some());
        assert!(!state.previous("i").was_partial().unwrap());
        // A run that stored an object redacted closes the previous graph for good.
        let secret = device("device-0009", "[REDACTED]");
        state
            .record_graph(
                "i",
                "run-2",
                &with_redacted(&devices, &secret),
                &none,
                false,
            )
            .unwrap();
        assert!(state.previous("i").held_redactions().unwrap());
        state
            .record_graph("i", "run-3", &graph(&devices), &none, false)
            .unwrap();
        assert!(state.previous("i").held_redactions().unwrap(), "sticky");
        assert!(!state.previous("other").held_redactions().unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_change_set_is_stored_from_its_file_and_the_file_goes_with_the_record() {
        let dir = std::env::temp_dir().join(format!("corral-state-doc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = GraphState::open(&dir).unwrap();
        let files = || {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(crate::delivery::history::DB_FILE))
                .collect();
            names.sort();
            names
        };
        let devices: Vec<Value> = (0..300)
            .map(|i| device(&format!("device-{i:04}-\u{e9}\"q"), "14"))
            .collect();
        let rec = state
            .record_graph("i", "run-1", &graph(&devices), &BTreeSet::new(), false)
            .unwrap();
        let doc: Value = serde_json::from_str(&read_document(&rec)).unwrap();
        assert_eq!(doc["types"]["d"]["created"].as_array().unwrap().len(), 300);
        assert_eq!(state.changes("i", Some("run-1")).unwrap(), Some(doc));
        assert!(state.has_changes("i", "run-1").unwrap());
        assert!(!state.has_changes("i", "run-2").unwrap());
        // The document's file has no name: nothing is left if the process dies.
        assert_eq!(files(), Vec::<String>::new());
        drop(rec);
        // A document stored as text by an earlier version reads back the same.
        state
            .conn
            .locked()
            .execute(
                "INSERT INTO graph_changes (instance, run_id, document) VALUES ('i', 'old', ?1)",
                ["{\"baseline\":false}"],
            )
            .unwrap();
        assert_eq!(
            state.changes("i", Some("old")).unwrap(),
            Some(json!({"baseline": false}))
        );
        assert_eq!(
            state.changes("i", None).unwrap(),
            Some(json!({"baseline": false}))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
