//! Cluster mode in the daemon: a queued run is published for the workers with the
//! generation current at that moment, and each result coming back is delivered here
//! (state, changes, alerts, output, history) exactly once, by run id.

use super::Daemon;
use crate::capabilities::log::now_ms;
use crate::cluster::asks;
use crate::cluster::coordinator::{QueueError, ResultError};
use crate::cluster::wire::{self, Outcome as Remote, ResultNotice, RunRequest};
use crate::config::InstanceConfig;
use crate::delivery::history::{Outcome, RunStatus};
use crate::lock::LockExt;
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;

/// Previous-graph reads the coordinator answers at once; past them, the next waits.
const ASKS_AT_ONCE: usize = 64;

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
            return self.end_logged(&run_id, &cfg.id, Outcome::failed(reason));
        };
        let m = &generation.plugin.manifest;
        let plugin = generation.run_plugin();
        if let Err(e) = self.history.plan(&run_id, &plugin) {
            tracing::error!(run = %run_id, "{e}");
        }
        let expected = self.history.expected(&cfg.id).unwrap_or_default();
        let request = RunRequest {
            run_id: run_id.clone(),
            instance: cfg.id.clone(),
            plugin_id: m.id.clone(),
            digest: generation.plugin.digest.clone(),
            generation: generation.number,
            expected_requests: expected.requests,
            expected_objects: expected.objects,
        };
        self.queued_on
            .locked()
            .insert(run_id.clone(), generation.clone());
        let mut delay = Duration::from_millis(200);
        loop {
            let e = match cluster.enqueue(&request).await {
                Ok(()) => break,
                Err(QueueError::Never(e)) => {
                    let reason = format!("cannot queue the run: {e:#}");
                    return self.end_logged(&run_id, &cfg.id, Outcome::failed(reason));
                }
                Err(QueueError::Away(e)) => e,
            };
            if !self.is_admitting() {
                return;
            }
            tracing::warn!(run = %run_id, "cannot queue the run on NATS yet (retrying): {e:#}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        tracing::info!(run = %run_id, instance = %cfg.id, digest = %request.digest, "run queued on NATS");
    }

    /// Takes results until the daemon stops, each delivered in a task of its own so a
    /// panic while delivering fails that run and not the loop.
    pub(super) async fn take_results(self: Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        loop {
            let taken = cluster.next_result().await;
            let notice = match &taken.notice {
                Ok(n) if wire::valid_run_id(&n.run_id) => n.clone(),
                Ok(n) => {
                    tracing::error!(run = %n.run_id, "a result for no run of ours; dropped");
                    cluster.done(taken).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!("a malformed result notice; dropped: {e}");
                    cluster.done(taken).await;
                    continue;
                }
            };
            let me = self.clone();
            let handled = tokio::spawn(async move { me.handle_result(&notice).await });
            match handled.await {
                Ok(Ok(())) => cluster.done(taken).await,
                Ok(Err(e)) => {
                    tracing::error!("a result could not be delivered yet (retrying): {e:#}");
                    cluster.retry_later(taken).await;
                }
                Err(panic) => {
                    if let Ok(n) = &taken.notice {
                        let reason =
                            format!("the coordinator failed delivering this result: {panic}");
                        self.fail_unfinished_run(&n.run_id, reason);
                    }
                    cluster.done(taken).await;
                }
            }
        }
    }

    /// Answers what workers ask during their runs (quota tokens, previous-graph reads)
    /// until the daemon stops, each in a task of its own, at most [`ASKS_AT_ONCE`].
    pub(super) async fn answer_asks(self: Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let mut asks = match cluster.asks().await {
            Ok(s) => s,
            Err(e) => return tracing::error!("cannot answer workers' asks: {e:#}"),
        };
        let gate = Arc::new(tokio::sync::Semaphore::new(ASKS_AT_ONCE));
        while let Some(msg) = asks.next().await {
            let Some(to) = msg.reply.clone() else {
                if msg.subject.as_str() == asks::QUOTA_SEEN_SUBJECT {
                    asks::observe_quota(&msg.payload);
                }
                continue;
            };
            // A token is a lock and some arithmetic: answered here, never queued behind
            // the reads (a late answer would spend a token the worker no longer waits for).
            if msg.subject.as_str() == asks::QUOTA_SUBJECT {
                cluster.reply(to, asks::answer_quota(&msg.payload)).await;
                continue;
            }
            let Ok(permit) = gate.clone().acquire_owned().await else {
                return;
            };
            let (me, cluster) = (self.clone(), cluster.clone());
            tokio::spawn(async move {
                if let Some(answer) = me.answer_read(&msg.subject, msg.payload.to_vec()).await {
                    cluster.reply(to, answer).await;
                }
                drop(permit);
            });
        }
    }

    /// The answer to a read of a run's previous graph; `None` for a subject that is not
    /// one.
    async fn answer_read(&self, subject: &str, payload: Vec<u8>) -> Option<Vec<u8>> {
        let run_id = asks::previous_run(subject)?;
        let Some(reader) = self.previous_reader(run_id) else {
            let answer = wire::PreviousAnswer::Failed {
                reason: format!("{run_id} is not a run in flight on this coordinator"),
            };
            return serde_json::to_vec(&answer).ok();
        };
        let max = self.cluster.as_ref()?.max_payload();
        tokio::task::spawn_blocking(move || asks::answer_previous(reader.as_ref(), &payload, max))
            .await
            .ok()
    }

    /// The previous graph `run_id` reads (its instance's), while the run is in flight.
    fn previous_reader(
        &self,
        run_id: &str,
    ) -> Option<Arc<dyn crate::capabilities::graph::PreviousGraph>> {
        if let Some(reader) = self.previous_readers.locked().get(run_id) {
            return Some(reader.clone());
        }
        let record = self.history.get(run_id).ok()??;
        // Under the in-flight lock, as `end` forgets the reader: none outlives its run.
        let in_flight = self.in_flight.locked();
        if in_flight.get(&record.instance).map(String::as_str) != Some(run_id) {
            return None;
        }
        let reader = self.delivery.previous(&record.instance);
        self.previous_readers
            .locked()
            .insert(run_id.to_string(), reader.clone());
        Some(reader)
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

    /// Marks `run_id` failed if the history still has it unfinished.
    fn fail_unfinished_run(&self, run_id: &str, reason: String) {
        if let Ok(Some(record)) = self.history.get(run_id)
            && matches!(record.status, RunStatus::Queued | RunStatus::Running)
        {
            self.end_logged(run_id, &record.instance, Outcome::failed(reason));
        }
    }

    /// Delivers one result. `Err` leaves it to be taken again: NATS was away, or the
    /// history could not be written.
    async fn handle_result(&self, notice: &ResultNotice) -> anyhow::Result<()> {
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
            Remote::Ran { .. } => match self
                .read_result(notice, &record.instance, &record.plugin_digest)
                .await
            {
                Ok(report) => {
                    // A coordinator that stopped between recording the state and the
                    // history delivered it already: record the history only.
                    let finished = if self.delivery.recorded(&record.instance, &notice.run_id)? {
                        tracing::warn!(run = %notice.run_id, "already in the graph state; recording the history only");
                        Outcome::of(&report)
                    } else {
                        self.conclude(&notice.run_id, &report, generation.as_ref())
                            .await
                    };
                    (finished, Some(report.started_at_ms))
                }
                Err(ResultError::Away(e)) => return Err(e),
                Err(ResultError::Invalid(e)) => (Outcome::failed(format!("{e:#}")), None),
            },
        };
        self.history
            .ran_on(&notice.run_id, &notice.worker, notice.attempts, started)?;
        self.end(&notice.run_id, &record.instance, finished)?;
        Ok(())
    }

    /// A run's result file, checked to be the queued run's (instance and plugin digest).
    async fn read_result(
        &self,
        notice: &ResultNotice,
        instance: &str,
        digest: &Option<String>,
    ) -> Result<crate::run::RunReport, ResultError> {
        let Some(cluster) = &self.cluster else {
            return Err(ResultError::Invalid(anyhow::anyhow!(
                "a result outside cluster mode"
            )));
        };
        let report = cluster.report(&notice.run_id).await?;
        if report.instance_id != instance {
            return Err(ResultError::Invalid(anyhow::anyhow!(
                "the result of {} is for instance {:?}, the run is {instance:?}'s",
                notice.run_id,
                report.instance_id
            )));
        }
        if digest.as_deref() != Some(report.plugin_digest.as_str()) {
            return Err(ResultError::Invalid(anyhow::anyhow!(
                "the result of {} ran plugin {}, the run was queued with {digest:?}",
                notice.run_id,
                report.plugin_digest
            )));
        }
        Ok(report)
    }

    /// Records how a cluster run ended and frees its instance for the next one.
    fn end(&self, run_id: &str, instance: &str, finished: Outcome) -> anyhow::Result<()> {
        self.history.finish(
            run_id,
            finished.status,
            finished.counts.as_ref(),
            &finished.errors,
            now_ms(),
        )?;
        tracing::info!(run = %run_id, instance, status = finished.status.as_str(), "run ended");
        self.queued_on.locked().remove(run_id);
        if let Some(c) = &self.cluster {
            c.settled(run_id);
        }
        let mut in_flight = self.in_flight.locked();
        if in_flight.get(instance).is_some_and(|r| r == run_id) {
            in_flight.remove(instance);
        }
        self.previous_readers.locked().remove(run_id);
        Ok(())
    }

    /// [`Daemon::end`] where there is no one to hand the error to.
    fn end_logged(&self, run_id: &str, instance: &str, finished: Outcome) {
        if let Err(e) = self.end(run_id, instance, finished) {
            tracing::error!(run = %run_id, "{e:#}");
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
