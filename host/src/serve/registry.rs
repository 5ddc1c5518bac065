//! Plugin generations for the long-running host: which compiled component serves new
//! runs of each plugin id, the ones kept for rollback, the ones still draining, and the
//! last refused candidate.
//!
//! A run holds an `Arc<Generation>` from start to end, so swapping never touches a run in
//! flight, and a retired generation is freed when its last run drops it.

use crate::capabilities::log::now_ms;
use crate::lock::LockExt;
use crate::plugin::{LoadedPlugin, PluginSource};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// One loaded version of a plugin id.
pub struct Generation {
    pub number: u64,
    pub plugin: Arc<LoadedPlugin>,
    pub loaded_at_ms: u64,
    /// Outcome of the last run that ended on this generation (`true`: succeeded).
    last_ok: Mutex<Option<bool>>,
    /// Set on a generation that replaced another: its first finished run decides whether
    /// it stays.
    on_probation: Mutex<bool>,
}

impl Generation {
    /// The plugin a run on this generation records in the history.
    pub fn run_plugin(&self) -> crate::delivery::history::RunPlugin<'_> {
        let m = &self.plugin.manifest;
        crate::delivery::history::RunPlugin {
            id: &m.id,
            version: &m.version,
            digest: &self.plugin.digest,
            generation: self.number,
        }
    }
}

/// A candidate that was refused, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub source: String,
    pub digest: Option<String>,
    pub reason: String,
    pub at: String,
}

/// A rollback, on request or automatic.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    pub from_generation: u64,
    pub from_digest: String,
    pub to_generation: u64,
    pub to_digest: String,
    pub reason: String,
    pub at: String,
}

#[derive(Default)]
struct Slot {
    current: Option<Arc<Generation>>,
    /// Most recent first.
    previous: Vec<Arc<Generation>>,
    retired: Vec<Weak<Generation>>,
    last_number: u64,
    last_rejected: Option<Rejection>,
    last_rollback: Option<Rollback>,
    /// Digests rolled back: the same bytes offered again are refused, not retried.
    rolled_back: HashSet<String>,
}

pub struct Registry {
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Older generations kept loaded for rollback.
    depth: usize,
}

/// What a swap did, for the log.
pub struct Installed {
    pub generation: Arc<Generation>,
    pub replaced: Option<Arc<Generation>>,
}

impl Registry {
    pub fn new(rollback_depth: usize) -> Self {
        Registry {
            slots: Mutex::default(),
            depth: rollback_depth,
        }
    }

    /// The generation new runs of `id` use.
    pub fn current(&self, id: &str) -> Option<Arc<Generation>> {
        self.slots.locked().get(id)?.current.clone()
    }

    /// Makes `plugin` the current generation of its id.
    pub fn install(&self, plugin: Arc<LoadedPlugin>) -> Installed {
        let mut slots = self.slots.locked();
        let slot = slots.entry(plugin.manifest.id.clone()).or_default();
        slot.last_number += 1;
        let replaced = slot.current.take();
        let probation = replaced.is_some();
        let generation = Arc::new(Generation {
            number: slot.last_number,
            plugin,
            loaded_at_ms: now_ms(),
            last_ok: Mutex::new(None),
            on_probation: Mutex::new(probation),
        });
        if let Some(old) = &replaced {
            slot.previous.insert(0, old.clone());
        }
        slot.retire_beyond(self.depth);
        slot.current = Some(generation.clone());
        Installed {
            generation,
            replaced,
        }
    }

    /// Stops serving `id` (its file was deleted and there is no first-party plugin).
    /// Runs in flight keep their generation.
    pub fn unload(&self, id: &str) -> Option<Arc<Generation>> {
        let mut slots = self.slots.locked();
        let slot = slots.get_mut(id)?;
        let old = slot.current.take()?;
        slot.retired.push(Arc::downgrade(&old));
        Some(old)
    }

    pub fn reject(&self, id: &str, rejection: Rejection) {
        let mut slots = self.slots.locked();
        slots.entry(id.to_string()).or_default().last_rejected = Some(rejection);
    }

    /// The digest of the last candidate refused for `id`.
    pub fn last_rejected_digest(&self, id: &str) -> Option<String> {
        let slots = self.slots.locked();
        slots.get(id)?.last_rejected.as_ref()?.digest.clone()
    }

    /// Whether these bytes were rolled back before for `id`.
    pub fn was_rolled_back(&self, id: &str, digest: &str) -> bool {
        let slots = self.slots.locked();
        slots
            .get(id)
            .is_some_and(|s| s.rolled_back.contains(digest))
    }

    /// The id whose current generation came from `path`, if any.
    pub fn id_loaded_from(&self, path: &Path) -> Option<String> {
        let slots = self.slots.locked();
        slots.iter().find_map(|(id, s)| {
            let g = s.current.as_ref()?;
            (g.plugin.source == PluginSource::File(path.to_path_buf())).then(|| id.clone())
        })
    }

    /// Makes the most recent previous generation current again.
    pub fn rollback(&self, id: &str, reason: &str) -> Result<Rollback, RollbackError> {
        let mut slots = self.slots.locked();
        let slot = slots
            .get_mut(id)
            .ok_or_else(|| RollbackError::Unknown(id.to_string()))?;
        let Some(current) = slot.current.clone() else {
            return Err(RollbackError::Unloaded(id.to_string()));
        };
        if slot.previous.is_empty() {
            return Err(RollbackError::NoPrevious(id.to_string()));
        }
        let back = slot.previous.remove(0);
        slot.rolled_back.insert(current.plugin.digest.clone());
        slot.retired.push(Arc::downgrade(&current));
        *back.on_probation.locked() = false;
        slot.current = Some(back.clone());
        let note = Rollback {
            from_generation: current.number,
            from_digest: current.plugin.digest.clone(),
            to_generation: back.number,
            to_digest: back.plugin.digest.clone(),
            reason: reason.to_string(),
            at: crate::delivery::history::rfc3339(now_ms()),
        };
        slot.last_rollback = Some(note.clone());
        Ok(note)
    }

    /// Records how a run on `generation` ended. Returns the rollback it triggered: the
    /// first finished run on a generation that replaced a succeeding one failed.
    pub fn record_outcome(&self, generation: &Arc<Generation>, ok: bool) -> Option<Rollback> {
        *generation.last_ok.locked() = Some(ok);
        let was_on_probation = std::mem::take(&mut *generation.on_probation.locked());
        let id = &generation.plugin.manifest.id;
        let still_current = self
            .current(id)
            .is_some_and(|c| Arc::ptr_eq(&c, generation));
        if ok || !was_on_probation || !still_current {
            return None;
        }
        let previous = self.previous(id)?;
        if *previous.last_ok.locked() != Some(true) {
            return None;
        }
        let reason = format!(
            "automatic: the first run on generation {} failed where generation {}'s last run succeeded",
            generation.number, previous.number
        );
        self.rollback(id, &reason).ok()
    }

    fn previous(&self, id: &str) -> Option<Arc<Generation>> {
        let slots = self.slots.locked();
        slots.get(id)?.previous.first().cloned()
    }

    /// What `GET /plugins` shows.
    pub fn describe(&self) -> Vec<PluginView> {
        let mut slots = self.slots.locked();
        slots
            .iter_mut()
            .map(|(id, slot)| {
                slot.retired.retain(|w| w.strong_count() > 0);
                let g = slot.current.as_ref();
                PluginView {
                    id: id.clone(),
                    version: g.map(|g| g.plugin.manifest.version.clone()),
                    digest: g.map(|g| g.plugin.digest.clone()),
                    source: g.map(|g| g.plugin.source.to_string()),
                    generation: g.map(|g| g.number),
                    loaded_at: g.map(|g| crate::delivery::history::rfc3339(g.loaded_at_ms)),
                    previous_generations: slot.previous.iter().map(|g| g.number).collect(),
                    draining_generations: slot
                        .retired
                        .iter()
                        .filter_map(|w| w.upgrade().map(|g| g.number))
                        .collect(),
                    last_rejected: slot.last_rejected.clone(),
                    last_rollback: slot.last_rollback.clone(),
                }
            })
            .collect()
    }
}

impl Slot {
    /// Keeps `depth` previous generations; older ones drain and are freed.
    fn retire_beyond(&mut self, depth: usize) {
        while self.previous.len() > depth {
            let old = self.previous.pop().expect("longer than depth");
            self.retired.push(Arc::downgrade(&old));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("no plugin with id {0:?} has been loaded")]
    Unknown(String),
    #[error("plugin {0} is unloaded; there is nothing to roll back from")]
    Unloaded(String),
    #[error("plugin {0} has no previous generation to roll back to")]
    NoPrevious(String),
}

/// One plugin id on `GET /plugins`. The version fields are null when the id is unloaded.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    pub id: String,
    pub version: Option<String>,
    pub digest: Option<String>,
    pub source: Option<String>,
    pub generation: Option<u64>,
    pub loaded_at: Option<String>,
    /// Kept loaded for rollback, most recent first.
    pub previous_generations: Vec<u64>,
    /// Retired but still running.
    pub draining_generations: Vec<u64>,
    pub last_rejected: Option<Rejection>,
    pub last_rollback: Option<Rollback>,
}
