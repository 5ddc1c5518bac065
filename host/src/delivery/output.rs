//! Writing a run in JupiterOne's `collect` layout:
//! `DIR/<id>/graph/<stepId>/entities/<type>-<n>.json` (`{"entities": […]}`), the same for
//! relationships, at most 500 objects of one `_type` per file; `summary.json`; and the
//! run log as `log.jsonl`; the change set as `changes.json`. The directory is built
//! beside the old one (in the tree the run before swapped out, `run_dir`) and swapped in
//! whole, so a reader never sees half a run.

use crate::capabilities::graph::GraphStore;
use crate::delivery::run_dir::{RunDir, TreeFile};
use crate::run::{RunReport, StepStatus};
use anyhow::Context;
use corral_core::text::escape_controls;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Objects of one `_type` per file, as JupiterOne's collector writes them.
pub const MAX_PER_FILE: usize = 500;

/// The change set beside the graph (see `changes.rs`).
pub const CHANGES_FILE: &str = "changes.json";

/// Writes `report` to `out/<instance id>/`, replacing what was there, with the run's
/// change set (the file `changes`, from its start) as `changes.json` when there is one.
/// The tree is built beside it and swapped in whole (`run_dir`).
pub fn write_run(
    out: &Path,
    report: &RunReport,
    changes: Option<&std::fs::File>,
) -> anyhow::Result<PathBuf> {
    let id = component(&report.instance_id)?;
    let mut tree = RunDir::claim(out, id)?;
    write_objects_in(&mut tree, &report.graph)?;
    write_json(&mut tree, "summary.json", &summary(report))?;
    write_log(&mut tree, report)?;
    if let Some(doc) = changes {
        let mut file = tree.file(CHANGES_FILE.into())?;
        copy_changes(doc, &mut file)
            .with_context(|| format!("{}: cannot write", file.path().display()))?;
        file.finish()?;
    }
    tree.install(out, id)
}

/// Writes the change set document `doc` (a file, read from its start) to `path`, a
/// piece at a time, with the mode a new file gets.
pub fn write_changes(doc: &std::fs::File, path: &Path) -> anyhow::Result<()> {
    std::fs::File::create(path)
        .and_then(|mut file| copy_changes(doc, &mut file))
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// `doc` from its start into `to`.
fn copy_changes(mut doc: &std::fs::File, to: &mut impl Write) -> std::io::Result<()> {
    doc.seek(SeekFrom::Start(0))?;
    std::io::copy(&mut doc, to).map(|_| ())
}

/// [`write_objects_in`] a new directory `dir`.
pub fn write_objects(dir: &Path, graph: &GraphStore) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    write_objects_in(&mut RunDir::at(dir.to_path_buf()), graph)
}

/// Each group (step, kind, `_type`) in files of [`MAX_PER_FILE`] objects under
/// `graph/` of `tree`, streamed from the run's spool: one object in memory at a time.
fn write_objects_in(tree: &mut RunDir, graph: &GraphStore) -> anyhow::Result<()> {
    let mut groups: Vec<_> = graph.groups().iter().collect();
    groups.sort_by(|a, b| (&a.step, a.kind, &a.type_name).cmp(&(&b.step, b.kind, &b.type_name)));
    // Two emitted `_type`s can be stored as one (each redacted to the same text): their
    // files are numbered on from each other, never written over.
    let mut next_file: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for group in groups {
        // Step ids and types are checked at load and at emit; checked again here, so
        // no identifier can ever name a path outside this run's directory.
        let kind = group.kind.plural();
        let folder = Path::new("graph").join(component(&group.step)?).join(kind);
        let type_name = component(&group.type_name)?;
        tree.dir(&folder)?;
        let first = next_file.entry((&group.step, kind, type_name)).or_insert(0);
        let mut file: Option<ObjectFile> = None;
        let mut written = 0usize;
        graph.scan_group(group, |item| {
            let f = match &mut file {
                Some(f) if !written.is_multiple_of(MAX_PER_FILE) => f,
                _ => {
                    if let Some(full) = file.take() {
                        full.finish()?;
                    }
                    let n = *first + written / MAX_PER_FILE;
                    let rel = folder.join(format!("{type_name}-{n}.json"));
                    file.insert(ObjectFile::create(tree.file(rel)?, kind)?)
                }
            };
            f.push(item.json)?;
            written += 1;
            Ok(())
        })?;
        if let Some(last) = file {
            last.finish()?;
        }
        *first += written.div_ceil(MAX_PER_FILE);
    }
    Ok(())
}

/// One `{"<kind>": [ … ]}` file being written.
struct ObjectFile {
    out: std::io::BufWriter<TreeFile>,
    first: bool,
}

impl ObjectFile {
    fn create(file: TreeFile, kind: &str) -> anyhow::Result<ObjectFile> {
        let mut out = std::io::BufWriter::with_capacity(64 << 10, file);
        write!(out, "{{\"{kind}\":[")?;
        Ok(ObjectFile { out, first: true })
    }

    fn push(&mut self, json: &[u8]) -> anyhow::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.out.write_all(json)?;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out.write_all(b"]}\n")?;
        self.out
            .flush()
            .with_context(|| format!("{}: cannot write", self.out.get_ref().path().display()))?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.finish()
    }
}

/// `name` if it is one plain path component: not empty, `.` or `..`, no separator,
/// no NUL, at most 200 bytes.
pub fn component(name: &str) -> anyhow::Result<&str> {
    let plain = !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0']);
    anyhow::ensure!(
        plain,
        "{name:?} cannot name a file or directory of the output"
    );
    Ok(name)
}

fn write_json(tree: &mut RunDir, name: &str, value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_file(tree, name, text.as_bytes())
}

fn write_log(tree: &mut RunDir, report: &RunReport) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in &report.log {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    write_file(tree, "log.jsonl", text.as_bytes())
}

fn write_file(tree: &mut RunDir, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = tree.file(name.into())?;
    file.write_all(bytes)
        .with_context(|| format!("{}: cannot write", file.path().display()))?;
    file.finish()
}

/// Counts of each `_type` a step emitted.
fn encountered(report: &RunReport, step: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for g in report.graph.groups().iter().filter(|g| g.step == step) {
        *counts.entry(g.type_name.clone()).or_insert(0) += g.len();
    }
    counts
}

/// `summary.json`: JupiterOne's fields, plus a `corral` section with the run's facts.
pub fn summary(report: &RunReport) -> Value {
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|s| {
            let counts = encountered(report, &s.info.id);
            json!({
                "id": s.info.id,
                "name": s.info.name,
                "status": s.status,
                "declaredTypes": s.info.declared_types(),
                "encounteredTypes": counts.keys().collect::<Vec<_>>(),
                "encounteredTypeCounts": counts,
                "partialTypes": report.step_partial_types(s),
                "duration": s.duration.as_millis() as u64,
                "dependsOn": s.info.depends_on,
                "error": s.error,
            })
        })
        .collect();
    json!({
        "integrationStepResults": steps,
        "metadata": { "partialDatasets": { "types": report.partial_types() } },
        "corral": {
            "instance": report.instance_id,
            "instanceName": report.instance_name,
            "plugin": {
                "id": report.plugin_id, "version": report.plugin_version,
                "digest": report.plugin_digest, "source": report.plugin_source,
            },
            "startedAt": report.started_at_ms,
            "endedAt": report.ended_at_ms,
            "status": if report.succeeded() { "succeeded" } else { "failed" },
            "validation": match &report.validation { Ok(()) => json!({"ok": true}), Err(e) => json!({"ok": false, "error": e}) },
            "counts": {
                "entities": report.graph.entity_count(),
                "relationships": report.graph.relationship_count(),
                "requests": report.requests,
                "warnings": report.warnings,
                "denials": report.denials.len(),
                "limitHits": report.limit_hits.len(),
                "rejected": report.rejections.len(),
                "logLinesDropped": report.log_dropped,
            },
            "denials": report.denials,
            "limitHits": report.limit_hits,
            "rejections": report.rejections,
            "dataModel": {
                "version": crate::datamodel::DATA_MODEL_VERSION,
                "missingRequired": report.graph.missing_required(),
            },
        }
    })
}

/// A few lines a person can read: outcome, counts per step, where the output went.
pub fn console_summary(report: &RunReport, dest: Option<&Path>) -> String {
    let mut out = String::new();
    let outcome = if report.succeeded() {
        "succeeded"
    } else {
        "FAILED"
    };
    out.push_str(&format!(
        "{} (plugin {} {}): {outcome} in {:.1} s, {} requests, {} entities, {} relationships\n",
        report.instance_id,
        report.plugin_id,
        report.plugin_version,
        report.duration.as_secs_f64(),
        report.requests,
        report.graph.entity_count(),
        report.graph.relationship_count(),
    ));
    if let Err(e) = &report.validation {
        out.push_str(&format!("  validation failed: {}\n", escape_controls(e)));
    }
    let width = report
        .steps
        .iter()
        .map(|s| s.info.id.len())
        .max()
        .unwrap_or(0)
        + 2;
    for s in &report.steps {
        let counts: Vec<String> = encountered(report, &s.info.id)
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        let status = serde_json::to_value(s.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<width$} {:<10} {}\n",
            s.info.id,
            status,
            counts.join(", ")
        ));
        if let Some(e) = &s.error {
            // The guest wrote it: one line, controls escaped, so it cannot forge output.
            out.push_str(&format!("  {:<width$} error: {}\n", "", escape_controls(e)));
        }
    }
    let notes = [
        (report.warnings, "warnings"),
        (report.denials.len() as u64, "denials"),
        (report.limit_hits.len() as u64, "limit hits"),
        (report.rejections.len() as u64, "rejected objects"),
    ];
    let notes: Vec<String> = notes
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    if !notes.is_empty() {
        out.push_str(&format!(
            "  {} (see log.jsonl and summary.json)\n",
            notes.join(", ")
        ));
    }
    out.push_str(&rejection_warning(report));
    if let Some(d) = dest {
        out.push_str(&format!("  output: {}\n", d.display()));
    }
    out
}

/// Rejected objects are a warning a person sees: how many, which types are therefore
/// kept as they were (partial), and the first reasons.
fn rejection_warning(report: &RunReport) -> String {
    const SHOWN: usize = 3;
    if report.rejections.is_empty() {
        return String::new();
    }
    let types: BTreeSet<&String> = report.rejected_types.values().flatten().collect();
    let types: Vec<&str> = types.into_iter().map(String::as_str).collect();
    let mut out = format!(
        "  warning: {} objects rejected; nothing of {} is deleted this run (partial)\n",
        report.rejections.len(),
        if types.is_empty() {
            "their types".to_string()
        } else {
            types.join(", ")
        }
    );
    for r in report.rejections.iter().take(SHOWN) {
        let what = if r.resource.is_empty() {
            "(no _key)"
        } else {
            &r.resource
        };
        out.push_str(&format!(
            "    {} {}: {}\n",
            r.step,
            escape_controls(what),
            escape_controls(&r.rule)
        ));
    }
    if report.rejections.len() > SHOWN {
        out.push_str(&format!(
            "    … {} more in summary.json (corral.rejections)\n",
            report.rejections.len() - SHOWN
        ));
    }
    out
}

/// One line per run: instance, plugin, steps ok/failed, objects, requests, denials, time.
pub fn summary_table(reports: &[&RunReport]) -> String {
    let mut out = format!(
        "{:<20} {:<12} {:>9} {:>9} {:>13} {:>9} {:>8} {:>8}\n",
        "instance", "plugin", "steps ok", "failed", "entities", "relations", "requests", "denials"
    );
    for r in reports {
        let ok = r
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Success | StepStatus::Disabled))
            .count();
        let failed = r.steps.len() - ok + usize::from(r.validation.is_err());
        out.push_str(&format!(
            "{:<20} {:<12} {:>9} {:>9} {:>13} {:>9} {:>8} {:>8}  {:.1} s\n",
            r.instance_id,
            r.plugin_id,
            ok,
            failed,
            r.graph.entity_count(),
            r.graph.relationship_count(),
            r.requests,
            r.denials.len(),
            r.duration.as_secs_f64()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::graph::{Kind, NewObject};

    #[test]
    fn types_stored_as_one_name_are_numbered_on_not_overwritten() {
        let mut g = GraphStore::default();
        for (emitted, n) in [("t_secretone", 3), ("t_secrettwo", 2)] {
            for i in 0..n {
                let key = format!("{emitted}-{i:04}");
                let stored = json!({"_key": key, "_type": "t_[REDACTED]", "_class": ["Device"], "name": key});
                g.insert(NewObject {
                    kind: Kind::Entity,
                    step: "s",
                    type_name: emitted,
                    key: &key,
                    stored: stored.as_object().unwrap(),
                    raw_data: None,
                    original: Some(b"{}".to_vec()),
                })
                .unwrap();
            }
        }
        g.seal().unwrap();
        let dir = std::env::temp_dir().join(format!("corral-output-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_objects(&dir, &g).unwrap();
        let folder = dir.join("graph/s/entities");
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["t_[REDACTED]-0.json", "t_[REDACTED]-1.json"]);
        let count: usize = names
            .iter()
            .map(|n| {
                let doc: Value =
                    serde_json::from_slice(&std::fs::read(folder.join(n)).unwrap()).unwrap();
                doc["entities"].as_array().unwrap().len()
            })
            .sum();
        assert_eq!(count, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_plain_components_name_output_paths() {
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "a\\b", "a\0b"] {
            assert!(component(bad).is_err(), "{bad:?}");
        }
        assert!(component(&"x".repeat(201)).is_err());
        assert_eq!(component("fetch-devices").unwrap(), "fetch-devices");
    }
}
