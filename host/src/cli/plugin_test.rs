//! `corral plugin test DIR`: a plugin's runs replayed from recordings, with no network,
//! and their graphs compared with committed snapshots.
//!
//! `DIR/corral-test.toml` is an ordinary `corral.toml` (its `plugin_dir` names where the
//! built component is); `DIR/recordings/<instance>.jsonl` are what `corral run --record
//! DIR/recordings` wrote; `DIR/snapshots/<instance>.json` is each instance's graph: every
//! object by `_key`, without `_rawData` (keys, types, classes, properties).

use super::runtime_for;
use crate::capabilities::http::tape::Tape;
use crate::config::{ConfigValue, CorralConfig, InstanceConfig};
use crate::plugin::runtime::Runtime;
use crate::run::{self, RunReport};
use anyhow::Context;
use corral_core::text::escape_lines;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub const TEST_CONFIG: &str = "corral-test.toml";

/// What a secret from an unset environment variable is in a replay: requests are never
/// sent, so no real credential is needed (and none is in the recording to match).
const PLACEHOLDER: &str = "corral-replay-placeholder";

/// Differences listed before the rest are only counted.
const MAX_SHOWN: usize = 30;

/// Each instance of `DIR/corral-test.toml` replayed and compared (or, with `update`, its
/// snapshot rewritten); exit 1 when any differs or fails.
pub async fn test(dir: &Path, update: bool) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(&dir.join(TEST_CONFIG))?;
    let rt = runtime_for(&config).await?;
    let mut failed = 0;
    for inst in &config.instances {
        match test_instance(&rt, dir, inst, update).await? {
            Ok(said) => println!("{}: {said}", inst.id),
            Err(why) => {
                failed += 1;
                print!("{}: FAILED\n{}", inst.id, escape_lines(&why));
            }
        }
    }
    if failed > 0 {
        println!("{failed} of {} instances failed", config.instances.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `Ok(Ok(what))` when the instance passed (or its snapshot was written),
/// `Ok(Err(why))` when it failed; `Err` when it could not be tried.
async fn test_instance(
    rt: &Runtime,
    dir: &Path,
    inst: &InstanceConfig,
    update: bool,
) -> anyhow::Result<Result<String, String>> {
    let plugin = rt
        .plugin(&inst.plugin)
        .await
        .with_context(|| format!("instance {:?}", inst.id))?;
    let mut r = run::resolve_instance(&with_placeholders(inst), plugin)
        .with_context(|| format!("instance {:?}", inst.id))?;
    let tape = Arc::new(Tape::load(&dir.join("recordings"), &r.id)?);
    r.tape = Some(tape.clone());
    let report = run::run_instance(&r, rt.hosts.clone()).await;
    if let Some(why) = failure(&report) {
        return Ok(Err(why));
    }
    // Fewer requests than were recorded is a change too (a plugin that swallowed a
    // failed request would otherwise pass).
    let unused = tape.unused();
    if !unused.is_empty() {
        let listed: String = unused
            .iter()
            .take(MAX_SHOWN)
            .map(|u| format!("  not requested: {u}\n"))
            .collect();
        return Ok(Err(format!(
            "{listed}  {} recorded answers were not requested\n",
            unused.len()
        )));
    }
    let graph = snapshot_of(&report);
    let path = snapshot_path(dir, &r.id);
    if update {
        write_snapshot(&path, &graph)?;
        return Ok(Ok(format!(
            "snapshot written, {} objects ({})",
            graph.len(),
            path.display()
        )));
    }
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<BTreeMap<String, Value>>(&text)
            .with_context(|| format!("{}: not a snapshot", path.display()))?,
        Err(e) => {
            return Ok(Err(format!(
                "{}: {e}; `corral plugin test --update` writes it\n",
                path.display()
            )));
        }
    };
    let differences = compare(&committed, &graph);
    if differences.is_empty() {
        Ok(Ok(format!("{} objects as in the snapshot", graph.len())))
    } else {
        Ok(Err(describe(&differences, &path)))
    }
}

/// The instance with every secret whose environment variable is unset given a
/// placeholder.
fn with_placeholders(inst: &InstanceConfig) -> InstanceConfig {
    let mut inst = inst.clone();
    for value in inst.config.values_mut() {
        if let ConfigValue::Env { env } = value
            && std::env::var_os(env.as_str()).is_none()
        {
            *value = ConfigValue::Secret {
                secret: PLACEHOLDER.into(),
            };
        }
    }
    inst
}

/// Why a replayed run failed: its validation or its steps' errors (a request without a
/// recording among them, by method and URL).
fn failure(report: &RunReport) -> Option<String> {
    if let Err(e) = &report.validation {
        return Some(format!("  validation failed: {e}\n"));
    }
    let steps: String = report
        .steps
        .iter()
        .filter_map(|s| Some(format!("  step {}: {}\n", s.info.id, s.error.as_ref()?)))
        .collect();
    (!steps.is_empty()).then_some(steps)
}

fn snapshot_path(dir: &Path, instance: &str) -> PathBuf {
    dir.join("snapshots").join(format!("{instance}.json"))
}

/// Every object by `_key`, without `_rawData` (the provider's payload, which the
/// recording already holds).
fn snapshot_of(report: &RunReport) -> BTreeMap<String, Value> {
    report
        .graph
        .entities()
        .into_iter()
        .chain(report.graph.relationships())
        .map(|o| {
            let mut object: Map<String, Value> = o.object;
            object.remove("_rawData");
            (o.key, Value::Object(object))
        })
        .collect()
}

fn write_snapshot(path: &Path, graph: &BTreeMap<String, Value>) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut text = serde_json::to_string_pretty(graph)?;
    text.push('\n');
    // Not through a symbolic link a checked-out project may hold there.
    crate::capabilities::http::tape::create_no_follow(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// How a run's graph differs from a snapshot, one line each.
fn compare(committed: &BTreeMap<String, Value>, graph: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, was) in committed {
        match graph.get(key) {
            None => out.push(format!("missing: {key}")),
            Some(now) if now != was => out.push(format!(
                "changed: {key}: {}",
                changed_properties(was, now).join(", ")
            )),
            Some(_) => {}
        }
    }
    out.extend(
        graph
            .keys()
            .filter(|k| !committed.contains_key(*k))
            .map(|k| format!("new: {k}")),
    );
    out
}

/// The properties whose values differ (or exist on one side only).
fn changed_properties(was: &Value, now: &Value) -> Vec<String> {
    let empty = Map::new();
    let (was, now) = (
        was.as_object().unwrap_or(&empty),
        now.as_object().unwrap_or(&empty),
    );
    let mut names: Vec<String> = was
        .keys()
        .chain(now.keys())
        .filter(|k| was.get(*k) != now.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

fn describe(differences: &[String], path: &Path) -> String {
    let mut text: String = differences
        .iter()
        .take(MAX_SHOWN)
        .map(|d| format!("  {d}\n"))
        .collect();
    if differences.len() > MAX_SHOWN {
        text.push_str(&format!("  … and {} more\n", differences.len() - MAX_SHOWN));
    }
    text.push_str(&format!(
        "  {} differences from {}; `corral plugin test --update` rewrites it if the change is meant\n",
        differences.len(),
        path.display()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_key_and_the_properties() {
        let committed = BTreeMap::from([
            (
                "a".to_string(),
                json!({"_type": "t", "name": "A", "os": "14"}),
            ),
            ("b".to_string(), json!({"_type": "t"})),
        ]);
        let graph = BTreeMap::from([
            (
                "a".to_string(),
                json!({"_type": "t", "name": "A", "os": "15", "new": 1}),
            ),
            ("c".to_string(), json!({"_type": "t"})),
        ]);
        assert_eq!(
            compare(&committed, &graph),
            ["changed: a: new, os", "missing: b", "new: c"]
        );
        assert!(compare(&graph, &graph).is_empty());
    }
}
