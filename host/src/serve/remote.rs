//! Cluster mode in the daemon: a queued run is published for the workers with the
//! generation current at that moment, and each result coming back is delivered here
//! (state, changes, alerts, output, history) exactly once, by run id.

use super::Daemon;
use crate::capabilities::log::now_ms;
use crate::cluster::coordinator::Taken;
use crate::cluster::wire::{self, Outcome as Remote, ResultNotice, RunRequest};
use crate::config::InstanceConfig;
use crate::delivery::history::{Outcome, RunPlugin, RunStatus};
use crate::lock::LockExt;
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;

impl Daemon {
    /// Publishes a queued run; retries while NATS is away (the run stays queued).
    pub(super) async fn enqueue(self: Arc<Self>, run_id: String, cfg: InstanceConfig) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let Some(generation) = self.registry.current(&cfg.plugin) else {
            self.metrics
                .record_unstarted(&cfg.plugin, "", RunStatus::Failed);
            let reason = format!("plugin {:?} is not loaded", cfg.plugin);
            return self.end(&run_id, &cfg.id, Outcome::failed(reason));
        };
        let m = &generation.plugin.manifest;
        let plugin = RunPlugin {
            id: &m.id,
            version: &m.version,
            digest: &generation.plugin.digest,
            generation: generation.number,
        };
        if let Err(e) = self.history.plan(&run_id, &plugin) {
            tracing::error!(run = %run_id, "{e}");
        }
        let request = RunRequest {
            run_id: run_id.clone(),
            instance: cfg.id.clone(),
            plugin_id: m.id.clone(),
            digest: generation.plugin.digest.clone(),
            generation: generation.number,
            expected_requests: self.history.last_requests(&cfg.id).ok().flatten(),
        };
        self.queued_on
            .locked()
            .insert(run_id.clone(), generation.clone());
        let mut delay = Duration::from_millis(200);
        while let Err(e) = cluster.enqueue(&request).await {
            if !self.is_admitting() {
                return;
            }
            tracing::warn!(run = %run_id, "cannot queue the run on NATS yet (retrying): {e:#}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        tracing::info!(run = %run_id, instance = %cfg.id, digest = %request.digest, "run queued on NATS");
    }

    /// Takes results until the daemon stops.
    pub(super) async fn take_results(self: Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        loop {
            let taken = cluster.next_result().await;
            match self.handle_result(&taken).await {
                Ok(()) => cluster.done(taken).await,
                Err(e) => {
                    tracing::error!("a result could not be delivered yet (retrying): {e:#}");
                    cluster.retry_later(taken).await;
                }
            }
        }
    }

    /// Marks runs running as workers report taking them, until the daemon stops.
    pub(super) async fn watch_taken(self: Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let mut subscription = match cluster.taken().await {
            Ok(s) => s,
            Err(e) => return tracing::error!("cannot follow workers taking runs: {e:#}"),
        };
        while let Some(msg) = subscription.next().await {
            let Ok(taken) = wire::parse::<wire::Taken>(&msg.subject, &msg.payload) else {
                continue;
            };
            if wire::valid_run_id(&taken.run_id)
                && let Err(e) =
                    self.history
                        .taken(&taken.run_id, &taken.worker, taken.attempts, now_ms())
            {
                tracing::error!(run = %taken.run_id, "{e}");
            }
        }
    }

    /// Delivers one result. `Err` leaves it to be taken again (nothing was recorded).
    async fn handle_result(&self, taken: &Taken) -> anyhow::Result<()> {
        let notice = match &taken.notice {
            Ok(n) if wire::valid_run_id(&n.run_id) => n,
            Ok(n) => {
                tracing::error!(run = %n.run_id, "a result for no run of ours; dropped");
                return Ok(());
            }
            Err(e) => {
                tracing::error!("a malformed result notice; dropped: {e}");
                return Ok(());
            }
        };
        let Some(record) = self.history.get(&notice.run_id)? else {
            tracing::error!(run = %notice.run_id, "a result for a run the history does not know; dropped");
            return Ok(());
        };
        if !matches!(record.status, RunStatus::Queued | RunStatus::Running) {
            tracing::info!(run = %notice.run_id, worker = %notice.worker, "a second result of a finished run; dropped");
            return Ok(());
        }
        let generation = self.queued_on.locked().get(&notice.run_id).cloned();
        let (finished, started) = match &notice.outcome {
            Remote::Failed { reason } => (Outcome::failed(reason.clone()), None),
            Remote::Ran { .. } => {
                let Some(cluster) = &self.cluster else {
                    anyhow::bail!("a result outside cluster mode");
                };
                let report = cluster.report(&notice.run_id).await?;
                anyhow::ensure!(
                    report.instance_id == record.instance,
                    "the result of {} is for instance {:?}, the run is {:?}'s",
                    notice.run_id,
                    report.instance_id,
                    record.instance
                );
                anyhow::ensure!(
                    record.plugin_digest.as_deref() == Some(report.plugin_digest.as_str()),
                    "the result of {} ran plugin {}, the run was queued with {:?}",
                    notice.run_id,
                    report.plugin_digest,
                    record.plugin_digest
                );
                let started = report.started_at_ms;
                (
                    self.conclude(&notice.run_id, &report, generation.as_ref())
                        .await,
                    Some(started),
                )
            }
        };
        self.record_worker(notice, started);
        self.end(&notice.run_id, &record.instance, finished);
        Ok(())
    }

    fn record_worker(&self, notice: &ResultNotice, started: Option<u64>) {
        if let Err(e) =
            self.history
                .ran_on(&notice.run_id, &notice.worker, notice.attempts, started)
        {
            tracing::error!(run = %notice.run_id, "{e}");
        }
    }

    /// Records how a cluster run ended and frees its instance for the next one.
    fn end(&self, run_id: &str, instance: &str, finished: Outcome) {
        if let Err(e) = self.history.finish(
            run_id,
            finished.status,
            finished.counts.as_ref(),
            &finished.errors,
            now_ms(),
        ) {
            tracing::error!(run = %run_id, "{e}");
        }
        tracing::info!(run = %run_id, instance, status = finished.status.as_str(), "run ended");
        self.queued_on.locked().remove(run_id);
        let mut in_flight = self.in_flight.locked();
        if in_flight.get(instance).is_some_and(|r| r == run_id) {
            in_flight.remove(instance);
        }
    }

    /// After a restart: runs JetStream still holds stay in flight (their results will
    /// come); the others were lost with the previous process and are marked failed.
    pub(super) async fn reconcile(&self) -> anyhow::Result<()> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        for (run_id, instance) in self.history.unfinished()? {
            match cluster.holds(&run_id).await {
                Some(true) | None => {
                    self.in_flight.locked().insert(instance, run_id);
                }
                Some(false) => {
                    let reason = "lost: the coordinator stopped before the run reached NATS";
                    self.history.fail_one(&run_id, reason)?;
                    tracing::warn!(run = %run_id, instance, "{reason}");
                }
            }
        }
        Ok(())
    }
}
