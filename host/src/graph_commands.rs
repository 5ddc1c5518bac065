//! The commands over a collected graph: `corral sync` (upload the last one),
//! `corral changes` (what a run changed) and `corral query` (the local state, filtered).

use crate::config::{CorralConfig, InstanceConfig};
use crate::jupiterone::JupiterOne;
use crate::oneshot::SyncTarget;
use crate::query::Filter;
use crate::state::GraphState;
use anyhow::{Context as _, bail};
use corral_core::text::escape_lines;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The JupiterOne client and each instance's integration instance id, or an error
/// naming what the config lacks.
pub fn sync_target(
    config: &CorralConfig,
    instances: &[&InstanceConfig],
) -> anyhow::Result<SyncTarget> {
    let path = config.path.display();
    let j1 = config.jupiterone.as_ref().with_context(|| {
        format!("{path}: syncing needs a [jupiterone] table (api_base_url, account, api_key)")
    })?;
    let client = JupiterOne::new(j1).with_context(|| path.to_string())?;
    let integration_instance_ids = instances
        .iter()
        .map(|i| {
            i.integration_instance_id.clone().with_context(|| {
                format!(
                    "{path}: instance {:?}: syncing needs integration_instance_id",
                    i.id
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(SyncTarget {
        client,
        integration_instance_ids,
    })
}

fn load_instance<'a>(config: &'a CorralConfig, id: &str) -> anyhow::Result<&'a InstanceConfig> {
    config
        .instance(id)
        .with_context(|| format!("{}: no instance with id {id:?}", config.path.display()))
}

/// `corral sync`: exit 0 when the job was finalized, 1 when it was aborted.
pub async fn sync(path: &Path, id: &str, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(path)?;
    let inst = load_instance(&config, id)?;
    let target = sync_target(&config, &[inst])?;
    let dir = out.unwrap_or_else(|| config.data_dir.join("out")).join(id);
    let graph = crate::jupiterone::read_collected(&dir)?;
    match crate::sync::sync_collected(&target.client, &target.integration_instance_ids[0], graph)
        .await
    {
        Ok(synced) => {
            println!("{id}: {}", synced.describe());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "{}",
                escape_lines(&format!("error: {id}: sync failed: {e:#}"))
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// `corral changes`: the change set of the instance's latest run, or of `run`.
pub fn changes(path: &Path, id: &str, run: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(path)?;
    load_instance(&config, id)?;
    let state = GraphState::open(&config.data_dir)?;
    let Some(doc) = state.changes(id, run)? else {
        match run {
            Some(r) => bail!("instance {id:?} has no recorded changes for run {r:?}"),
            None => bail!("instance {id:?} has no recorded runs yet (run it first)"),
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", escape_lines(&describe_changes(&doc)));
    }
    Ok(ExitCode::SUCCESS)
}

/// The change set in plain words: `+` created, `~` updated (with before → after), `-`
/// deleted, per `_type`.
pub fn describe_changes(doc: &Value) -> String {
    let mut out = format!(
        "{} {}\n",
        doc["instance"].as_str().unwrap_or(""),
        doc["runId"].as_str().unwrap_or("")
    );
    out.push_str(&crate::changes::console_summary(doc));
    let empty = Map::new();
    for (ty, c) in doc["types"].as_object().unwrap_or(&empty) {
        out.push_str(&format!("  {ty}\n"));
        for key in c["created"].as_array().into_iter().flatten() {
            out.push_str(&format!("    + {}\n", key.as_str().unwrap_or("")));
        }
        for u in c["updated"].as_array().into_iter().flatten() {
            out.push_str(&format!("    ~ {}\n", u["_key"].as_str().unwrap_or("")));
            for (prop, change) in u["properties"].as_object().unwrap_or(&empty) {
                out.push_str(&format!(
                    "        {prop}: {} -> {}\n",
                    change["before"], change["after"]
                ));
            }
        }
        for key in c["deleted"].as_array().into_iter().flatten() {
            out.push_str(&format!("    - {}\n", key.as_str().unwrap_or("")));
        }
    }
    out
}

/// `corral query`: matching objects as a table (instance, `_type`, `_key`,
/// `displayName` and the filtered properties) or as JSON lines.
pub fn query(
    path: &Path,
    instance: Option<&str>,
    type_glob: Option<&str>,
    filters: &[String],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(path)?;
    if let Some(id) = instance {
        load_instance(&config, id)?;
    }
    let filters: Vec<Filter> = filters
        .iter()
        .map(|f| Filter::parse(f).map_err(|e| anyhow::anyhow!("--where: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let state = GraphState::open(&config.data_dir)?;
    let rows: Vec<(String, Map<String, Value>)> = state
        .select(instance, type_glob)?
        .into_iter()
        .filter(|(_, o)| filters.iter().all(|f| f.matches(o)))
        .collect();
    if json {
        for (inst, mut o) in rows {
            o.remove("_rawData");
            o.insert("_instance".into(), inst.into());
            println!("{}", Value::Object(o));
        }
    } else {
        print!("{}", escape_lines(&query_table(&rows, &filters)));
    }
    Ok(ExitCode::SUCCESS)
}

fn query_table(rows: &[(String, Map<String, Value>)], filters: &[Filter]) -> String {
    let mut columns = vec!["_type".to_string(), "_key".into(), "displayName".into()];
    for f in filters {
        if !columns.contains(&f.property) {
            columns.push(f.property.clone());
        }
    }
    let cell = |o: &Map<String, Value>, c: &str| match o.get(c) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let mut table: Vec<Vec<String>> = vec![
        std::iter::once("instance".to_string())
            .chain(columns.clone())
            .collect(),
    ];
    for (inst, o) in rows {
        table.push(
            std::iter::once(inst.clone())
                .chain(columns.iter().map(|c| cell(o, c)))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} objects\n", rows.len()));
    out
}
