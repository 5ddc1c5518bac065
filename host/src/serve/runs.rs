//! Admitting and executing runs in the daemon: one run per instance at a time, at most
//! `max_concurrent_runs` executing, each on the generation current when it starts.

use super::Daemon;
use super::registry::Generation;
use crate::capabilities::log::now_ms;
use crate::config::InstanceConfig;
use crate::delivery::history::{HistoryError, Outcome, RunStatus};
use crate::lock::LockExt;
use crate::run;
use std::sync::Arc;

/// What asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Api,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Api => "api",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A new run, queued.
    Queued(String),
    /// The instance already has this run queued or running; no second one was made.
    InFlight(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("no instance with id {0:?} in the config")]
    UnknownInstance(String),
    #[error("corral is shutting down and admits no new runs")]
    ShuttingDown,
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl Daemon {
    /// Queues a run of `instance` unless one is already in flight.
    pub fn request_run(
        self: &Arc<Self>,
        instance: &str,
        trigger: Trigger,
    ) -> Result<Admission, AdmitError> {
        if !self.is_admitting() {
            return Err(AdmitError::ShuttingDown);
        }
        let cfg = self
            .config
            .instance(instance)
            .ok_or_else(|| AdmitError::UnknownInstance(instance.to_string()))?
            .clone();
        let mut in_flight = self.in_flight.locked();
        if let Some(run) = in_flight.get(instance) {
            return Ok(Admission::InFlight(run.clone()));
        }
        let run_id = self.history.queue(instance, trigger.as_str(), now_ms())?;
        in_flight.insert(instance.to_string(), run_id.clone());
        drop(in_flight);
        tracing::info!(run = %run_id, instance, trigger = trigger.as_str(), "run queued");
        match self.cluster {
            Some(_) => tokio::spawn(self.clone().enqueue(run_id.clone(), cfg)),
            None => tokio::spawn(self.clone().execute(run_id.clone(), cfg)),
        };
        Ok(Admission::Queued(run_id))
    }

    async fn execute(self: Arc<Self>, run_id: String, cfg: InstanceConfig) {
        let _slot = self.run_slots.clone().acquire_owned().await;
        let finished = if self.is_admitting() {
            // A separate task, so even a panic in the host ends as a failed run.
            let (me, id, c) = (self.clone(), run_id.clone(), cfg.clone());
            tokio::spawn(async move { me.run_once(&id, &c).await })
                .await
                .unwrap_or_else(|e| Outcome::failed(format!("the host failed during the run: {e}")))
        } else {
            Outcome::failed("not started: corral is shutting down".into())
        };
        if let Err(e) = self.history.finish(
            &run_id,
            finished.status,
            finished.counts.as_ref(),
            &finished.errors,
            now_ms(),
        ) {
            tracing::error!(run = %run_id, "{e}");
        }
        tracing::info!(run = %run_id, instance = %cfg.id, status = finished.status.as_str(), "run ended");
        self.in_flight.locked().remove(&cfg.id);
    }

    async fn run_once(&self, run_id: &str, cfg: &InstanceConfig) -> Outcome {
        let Some(generation) = self.registry.current(&cfg.plugin) else {
            self.metrics
                .record_unstarted(&cfg.plugin, "", RunStatus::Failed);
            return Outcome::failed(format!("plugin {:?} is not loaded", cfg.plugin));
        };
        let m = &generation.plugin.manifest;
        let plugin = generation.run_plugin();
        if let Err(e) = self.history.start(run_id, &plugin, now_ms()) {
            tracing::error!(run = %run_id, "{e}");
        }
        let mut resolved = match run::resolve_instance(cfg, generation.plugin.clone()) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!(
                    "{}: instance {:?}: {e:#}",
                    self.config.path.display(),
                    cfg.id
                );
                self.metrics
                    .record_unstarted(&m.id, &m.version, RunStatus::Failed);
                return Outcome::failed(reason);
            }
        };
        resolved.previous = Some(self.delivery.previous(&cfg.id));
        resolved.expected = self.history.expected(&cfg.id).unwrap_or_default();
        let report = run::run_instance(&resolved, self.runtime.hosts.clone()).await;
        self.conclude(run_id, &report, Some(&generation)).await
    }

    /// Delivers a run's report (state, changes, alerts, output), counts it, and tells
    /// the registry how its generation did.
    pub(super) async fn conclude(
        &self,
        run_id: &str,
        report: &run::RunReport,
        generation: Option<&Arc<Generation>>,
    ) -> Outcome {
        let mut finished = Outcome::of(report);
        match self.delivery.deliver(run_id, report).await {
            Ok(Some(d)) => finished.errors.extend(d.alerts.failed),
            Ok(None) => {}
            Err(e) => {
                finished.status = RunStatus::Failed;
                finished.errors.push(format!("delivering the graph: {e:#}"));
            }
        }
        self.metrics.record_run(report, finished.status);
        if let Some(g) = generation {
            self.settle_generation(g, finished.status);
        }
        finished
    }

    /// Tells the registry how the run went; logs a rollback it triggers.
    pub(super) fn settle_generation(&self, generation: &Arc<Generation>, status: RunStatus) {
        let id = &generation.plugin.manifest.id;
        if let Some(rb) = self
            .registry
            .record_outcome(generation, status == RunStatus::Succeeded)
        {
            self.metrics.record_rollback(id);
            tracing::warn!(
                plugin = %id,
                from = rb.from_generation,
                to = rb.to_generation,
                to_digest = %rb.to_digest,
                "rolled back: {}", rb.reason
            );
        }
    }
}
