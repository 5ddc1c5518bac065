//! `corral query`: the local graph state, filtered by type and `PROPERTY OP VALUE`.

use super::load_instance;
use crate::config::CorralConfig;
use crate::delivery::state::GraphState;
use crate::query::Filter;
use corral_core::text::escape_lines;
use serde_json::{Map, Value};
use std::path::Path;
use std::process::ExitCode;

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
