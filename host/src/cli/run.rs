//! `corral run`: the chosen instances once, recorded, delivered and printed; with
//! `--sync`, uploaded to JupiterOne as they run.

use super::{oneshot, runtime_for};
use crate::config::CorralConfig;
use crate::delivery::Delivery;
use crate::delivery::history::History;
use crate::run;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub async fn run_command(
    path: &Path,
    only: &[String],
    out: Option<PathBuf>,
    sync: bool,
) -> anyhow::Result<ExitCode> {
    let config = CorralConfig::load(path)?;
    for id in only {
        if config.instance(id).is_none() {
            bail!("{}: no instance with id {id:?}", path.display());
        }
    }
    let selected: Vec<_> = config
        .instances
        .iter()
        .filter(|i| only.is_empty() || only.contains(&i.id))
        .collect();
    if selected.is_empty() {
        bail!("{}: no instances to run", path.display());
    }
    let target = if sync {
        Some(super::sync::sync_target(&config, &selected)?)
    } else {
        None
    };
    let rt = runtime_for(&config).await?;
    // Resolve every instance before running any, so bad input stops the run before
    // anything is written.
    let mut resolved = Vec::new();
    for inst in &selected {
        let plugin = rt
            .plugin(&inst.plugin)
            .await
            .with_context(|| format!("{}: instance {:?}", path.display(), inst.id))?;
        let r = run::resolve_instance(inst, plugin)
            .with_context(|| format!("{}: instance {:?}", path.display(), inst.id))?;
        resolved.push(r);
    }
    let out = out.unwrap_or_else(|| config.data_dir.join("out"));
    let (history, _) = History::open(&config.data_dir)?;
    let delivery = Delivery::open(
        &config.data_dir,
        out,
        config.alerts.clone(),
        rt.hosts.clone(),
    )?;
    oneshot::run_and_report(&rt, &mut resolved, &history, &delivery, target.as_ref()).await
}
