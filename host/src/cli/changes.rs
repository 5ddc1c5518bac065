//! `corral changes`: what a run of an instance changed.

use super::load_instance;
use crate::config::CorralConfig;
use crate::delivery::state::GraphState;
use anyhow::bail;
use corral_core::text::escape_lines;
use serde_json::{Map, Value};
use std::path::Path;
use std::process::ExitCode;

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
