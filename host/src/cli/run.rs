//! `corral run`: the chosen instances once, recorded, delivered and printed; with
//! `--sync`, uploaded to JupiterOne as they run.

use super::{oneshot, runtime_for};
use crate::capabilities::http::tape::{Recorder, Tape};
use crate::config::CorralConfig;
use crate::delivery::Delivery;
use crate::delivery::history::History;
use crate::run;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Where runs record their HTTP exchanges, or replay them from (`--record`, `--replay`).
pub struct Tapes {
    pub record: Option<PathBuf>,
    pub replay: Option<PathBuf>,
}

impl Tapes {
    /// Gives `r` its recorder or its recorded answers.
    fn attach(&self, r: &mut run::ResolvedInstance) -> anyhow::Result<()> {
        if let Some(dir) = &self.record {
            let recorder = Recorder::create(dir, &r.id)
                .with_context(|| format!("--record {}: instance {:?}", dir.display(), r.id))?;
            r.recorder = Some(Arc::new(recorder));
        }
        if let Some(dir) = &self.replay {
            r.tape = Some(Arc::new(Tape::load(dir, &r.id)?));
        }
        Ok(())
    }
}

/// The runtime threads a `corral run` of `only` (all when empty) in the config at `path`
/// works on: one per instance it runs, up to one per core. A run of one instance spends
/// its time waiting on its provider; on one thread its guest and its requests take turns,
/// where two threads hand each response to each other and park and wake in between (a
/// Kandji run of 1,000 devices made 9,619 system calls on one thread against 12,291 on
/// two: futex 93 against 1,318; docs/benchmarks.md). `None` when the config does not
/// load: the run reports that itself.
pub fn worker_threads(path: &Path, only: &[String]) -> Option<usize> {
    let config = CorralConfig::load(path).ok()?;
    let selected = config
        .instances
        .iter()
        .filter(|i| only.is_empty() || only.contains(&i.id))
        .count();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some(selected.clamp(1, cores))
}

pub async fn run_command(
    path: &Path,
    only: &[String],
    out: Option<PathBuf>,
    sync: bool,
    tapes: &Tapes,
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
        let mut r = run::resolve_instance(inst, plugin)
            .with_context(|| format!("{}: instance {:?}", path.display(), inst.id))?;
        tapes.attach(&mut r)?;
        resolved.push(r);
    }
    let out = out.unwrap_or_else(|| config.data_dir.join("out"));
    let (history, _) = History::open(&config.data_dir)?;
    // A replayed graph is the recording's, not the provider's now: nobody is alerted.
    let alerts = match tapes.replay {
        Some(_) => Vec::new(),
        None => config.alerts.clone(),
    };
    let delivery = Delivery::open(&config.data_dir, out, alerts, rt.hosts.clone())?;
    oneshot::run_and_report(&rt, &mut resolved, &history, &delivery, target.as_ref()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gets_a_thread_per_instance_up_to_the_cores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corral.toml");
        let instances: String = ["a", "b", "c"]
            .iter()
            .map(|id| format!("[[instance]]\nid = \"{id}\"\nplugin = \"kandji\"\n"))
            .collect();
        std::fs::write(&path, instances).unwrap();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(worker_threads(&path, &[]), Some(3.min(cores)));
        assert_eq!(worker_threads(&path, &["b".to_string()]), Some(1));
        // An id the config lacks still gets one: the run says what is wrong.
        assert_eq!(worker_threads(&path, &["zz".to_string()]), Some(1));
        assert_eq!(worker_threads(&dir.path().join("missing.toml"), &[]), None);
    }
}
