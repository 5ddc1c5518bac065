//! A component dropped into `plugin_dir` while the daemon runs: read once it has settled,
//! compiled off the run path with bounded size and time, checked (component, WIT version,
//! id against the file name, request against every instance's operator policy), then
//! installed as a new generation or refused with the reason.

use super::Daemon;
use super::registry::Rejection;
use crate::capabilities::log::now_ms;
use crate::plugin::{self, LoadedPlugin, PluginSource};
use crate::run;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What offering a file did.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Installed as this generation.
    Installed(u64),
    /// Same bytes as the current generation.
    Unchanged,
    Refused(String),
    /// The file changed while being read (still being written): try again later.
    Unsettled,
    /// The file is gone.
    Removed,
}

impl Daemon {
    /// Offers `path` until it reads the same twice (a half-written file is not compiled).
    pub async fn offer_settled(self: &Arc<Self>, path: &Path) -> Offer {
        loop {
            match self.offer(path).await {
                Offer::Unsettled => {
                    tokio::time::sleep(Duration::from_millis(self.config.serve.watch_debounce_ms))
                        .await
                }
                other => return other,
            }
        }
    }

    /// Examines the file at `path` once and installs or refuses it.
    pub async fn offer(self: &Arc<Self>, path: &Path) -> Offer {
        let id = crate::plugin::runtime::expected_id(path);
        let bytes = match read_settled(path, self.config.serve.max_plugin_bytes) {
            Ok(Some(b)) => b,
            Ok(None) => return Offer::Unsettled,
            Err(Gone) if !path.exists() => {
                self.file_removed(path).await;
                return Offer::Removed;
            }
            Err(Gone) => return Offer::Unsettled,
            Err(NotAFile) => {
                let reason = "not a regular file (a FIFO, device or directory is never read)";
                return self.refuse(&id, path, None, reason.into());
            }
            Err(TooLarge(len)) => {
                let reason = format!(
                    "{len} bytes is over the {} byte limit (serve.max_plugin_bytes)",
                    self.config.serve.max_plugin_bytes
                );
                return self.refuse(&id, path, None, reason);
            }
        };
        let digest = plugin::digest(&bytes);
        self.keep_component(&digest, &bytes);
        if self
            .registry
            .current(&id)
            .is_some_and(|g| g.plugin.digest == digest)
        {
            return Offer::Unchanged;
        }
        if self.registry.last_rejected_digest(&id).as_deref() == Some(&digest) {
            // Refused already (a touch or a metadata change, not new bytes).
            return Offer::Refused("refused before with the same digest".into());
        }
        if self.registry.was_rolled_back(&id, &digest) {
            let reason = "these bytes were rolled back; write a different build to try again";
            return self.refuse(&id, path, Some(digest), reason.into());
        }
        let plugin = match self.compile_and_check(&id, path, bytes).await {
            Ok(p) => p,
            Err(reason) => return self.refuse(&id, path, Some(digest), reason),
        };
        self.metrics.record_candidate(&id, true);
        Offer::Installed(self.install(plugin))
    }

    async fn compile_and_check(
        &self,
        id: &str,
        path: &Path,
        bytes: Vec<u8>,
    ) -> Result<Arc<LoadedPlugin>, String> {
        let source = PluginSource::File(path.to_path_buf());
        let compiled = self.compile_bounded(bytes, source.clone()).await?;
        let plugin = plugin::link(&self.runtime.linker, compiled, source)
            .await
            .and_then(|p| crate::plugin::runtime::named_for_id(path, p))
            .map_err(|e| e.to_string())?;
        debug_assert_eq!(plugin.manifest.id, id);
        self.check_against_policies(&plugin)?;
        Ok(plugin)
    }

    /// Compiles on a blocking thread, one candidate at a time, refusing one that takes
    /// longer than `compile_timeout_seconds`.
    async fn compile_bounded(
        &self,
        bytes: Vec<u8>,
        source: PluginSource,
    ) -> Result<plugin::Compiled, String> {
        let permit = self
            .compile_gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let engine = self.runtime.engine.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            plugin::compile(&engine, &bytes, &source)
        });
        let limit = Duration::from_secs(self.config.serve.compile_timeout_seconds);
        match tokio::time::timeout(limit, task).await {
            Err(_) => Err(format!(
                "compiling took longer than {} s (serve.compile_timeout_seconds)",
                limit.as_secs()
            )),
            Ok(Err(e)) => Err(format!("the compiler failed: {e}")),
            Ok(Ok(result)) => result.map_err(|e| e.to_string()),
        }
    }

    /// Refuses a plugin that requests more than the operator's policy of any instance
    /// using it grants, or that cannot take an instance's config.
    fn check_against_policies(&self, plugin: &LoadedPlugin) -> Result<(), String> {
        let m = &plugin.manifest;
        for inst in self.config.instances.iter().filter(|i| i.plugin == m.id) {
            let context = |e: anyhow::Error| format!("instance {:?}: {e:#}", inst.id);
            let (values, _) = run::split_config(inst, m, run::Secrecy::Skip).map_err(context)?;
            let grant = run::read_policy(inst)
                .and_then(|policy| {
                    let operator_set = run::operator_values(inst, &values);
                    run::build_grant(m, &values, &operator_set, policy)
                })
                .map_err(context)?;
            let excess = crate::explain::beyond_operator(&grant);
            if !excess.is_empty() {
                return Err(format!(
                    "requests more than instance {:?}'s operator policy grants: {}",
                    inst.id,
                    excess.join("; ")
                ));
            }
        }
        Ok(())
    }

    /// Makes `plugin` current and logs what changed in its request.
    fn install(&self, plugin: Arc<LoadedPlugin>) -> u64 {
        let installed = self.registry.install(plugin);
        let new = &installed.generation;
        let m = &new.plugin.manifest;
        let diff = match &installed.replaced {
            Some(old) => crate::explain::capability_diff(&old.plugin.manifest, m),
            None => crate::explain::requested_capabilities(m)
                .into_iter()
                .map(|l| format!("+ {l}"))
                .collect(),
        };
        let diff = if diff.is_empty() {
            "none".to_string()
        } else {
            diff.join("; ")
        };
        tracing::info!(
            plugin = %m.id,
            version = %m.version,
            generation = new.number,
            digest = %new.plugin.digest,
            source = %new.plugin.source,
            replaced = installed.replaced.as_ref().map(|g| g.number),
            "plugin swapped in; capability changes: {diff}"
        );
        new.number
    }

    fn refuse(&self, id: &str, path: &Path, digest: Option<String>, reason: String) -> Offer {
        tracing::error!(plugin = %id, file = %path.display(), "candidate refused: {reason}");
        self.metrics.record_candidate(id, false);
        self.registry.reject(
            id,
            Rejection {
                source: path.display().to_string(),
                digest,
                reason: reason.clone(),
                at: crate::delivery::history::rfc3339(now_ms()),
            },
        );
        Offer::Refused(reason)
    }

    /// The file behind a current generation was deleted: back to the first-party plugin
    /// of that id, or unloaded. Runs in flight keep their generation.
    pub async fn file_removed(&self, path: &Path) {
        let Some(id) = self.registry.id_loaded_from(path) else {
            return;
        };
        if crate::plugin::builtin::component(&id).is_some() {
            match self.runtime.plugin(&id).await {
                Ok(p) => {
                    let number = self.install(p);
                    tracing::info!(plugin = %id, generation = number, "file deleted; back to the built-in plugin");
                }
                Err(e) => {
                    tracing::error!(plugin = %id, "cannot return to the built-in plugin: {e:#}")
                }
            }
        } else if self.registry.unload(&id).is_some() {
            tracing::info!(plugin = %id, "file deleted; plugin unloaded");
        }
    }
}

enum ReadError {
    Gone,
    TooLarge(u64),
    NotAFile,
}
use ReadError::{Gone, NotAFile, TooLarge};

/// The file's bytes if it did not change while read (`None`: it did).
fn read_settled(path: &Path, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let before = std::fs::metadata(path).map_err(|_| Gone)?;
    if before.len() > max {
        return Err(TooLarge(before.len()));
    }
    let bytes = match plugin::read_component_file(path, max) {
        Ok(b) => b,
        Err(plugin::FileError::TooLarge(n, _)) => return Err(TooLarge(n)),
        Err(plugin::FileError::NotAFile) => return Err(NotAFile),
        Err(plugin::FileError::Unreadable(_)) => return Err(Gone),
    };
    let after = std::fs::metadata(path).map_err(|_| Gone)?;
    let same = after.len() == bytes.len() as u64 && after.modified().ok() == before.modified().ok();
    Ok(same.then_some(bytes))
}
