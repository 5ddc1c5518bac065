//! The process-wide runtime: the engine, the linker, static host entries and the loaded
//! plugins (first-party ones embedded in the binary, others from `plugin_dir`).

use crate::capabilities::StepCtx;
use crate::engine::{PoolSize, build_engine};
use crate::lock::LockExt;
use crate::net::address::StaticHosts;
use crate::plugin::builtin;
use crate::plugin::{self, LoadedPlugin, PluginError, PluginSource};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::Engine;
use wasmtime::component::Linker;

pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<StepCtx>,
    /// Static host entries every run resolves before DNS (still subject to the address
    /// rules).
    pub hosts: StaticHosts,
    /// Plugins from `plugin_dir`, by id; they override first-party ones.
    dropped_in: Mutex<BTreeMap<String, Arc<LoadedPlugin>>>,
    /// First-party plugins compiled so far.
    builtins: Mutex<BTreeMap<String, Arc<LoadedPlugin>>>,
}

impl Runtime {
    pub fn new() -> anyhow::Result<Self> {
        Self::with_pool(&PoolSize::default())
    }

    pub fn with_pool(pool: &PoolSize) -> anyhow::Result<Self> {
        let engine = build_engine(pool).context("creating the wasm engine")?;
        let linker = plugin::build_linker(&engine).context("linking the host imports")?;
        Ok(Runtime {
            engine,
            linker,
            hosts: StaticHosts::default(),
            dropped_in: Mutex::default(),
            builtins: Mutex::default(),
        })
    }

    /// Compiles and checks one component file.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, PluginError> {
        let source = PluginSource::File(path.to_path_buf());
        let bytes =
            plugin::read_component_file(path, plugin::MAX_COMPONENT_BYTES).map_err(|e| {
                PluginError::NotComponent {
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
        plugin::load(&self.engine, &self.linker, &bytes, source).await
    }

    /// Loads every `*.wasm` in `dir`. A file that fails is reported and skipped; the
    /// others still load. Returns the failures.
    pub async fn load_plugin_dir(&self, dir: &Path) -> anyhow::Result<Vec<PluginError>> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read plugin_dir", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        let mut failures = Vec::new();
        for path in files {
            match self
                .load_file(&path)
                .await
                .and_then(|p| named_for_id(&path, p))
            {
                Ok(p) => {
                    self.dropped_in.locked().insert(p.manifest.id.clone(), p);
                }
                Err(e) => failures.push(e),
            }
        }
        Ok(failures)
    }

    /// The plugin for `id`: a dropped-in one if present, else the first-party one.
    pub async fn plugin(&self, id: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        if let Some(p) = self.dropped_in.locked().get(id) {
            return Ok(p.clone());
        }
        if let Some(p) = self.builtins.locked().get(id) {
            return Ok(p.clone());
        }
        let Some(bytes) = builtin::component(id) else {
            let mut known: Vec<String> = builtin::ids().map(String::from).collect();
            known.extend(self.dropped_in.locked().keys().cloned());
            bail!("unknown plugin id {id:?} (available: {})", known.join(", "));
        };
        let p = plugin::load(&self.engine, &self.linker, bytes, PluginSource::Builtin).await?;
        if p.manifest.id != id {
            bail!("first-party plugin {id} declares id {:?}", p.manifest.id);
        }
        self.builtins.locked().insert(id.to_string(), p.clone());
        Ok(p)
    }
}

/// A file in `plugin_dir` is named after the id it declares (`<id>.wasm`), so which
/// plugin a file replaces is never ambiguous.
pub fn named_for_id(path: &Path, p: Arc<LoadedPlugin>) -> Result<Arc<LoadedPlugin>, PluginError> {
    let stem = expected_id(path);
    if p.manifest.id == stem {
        return Ok(p);
    }
    Err(PluginError::Misnamed {
        source_name: path.display().to_string(),
        id: p.manifest.id.clone(),
    })
}

/// The id a file in `plugin_dir` must declare: its name without `.wasm`.
pub fn expected_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
