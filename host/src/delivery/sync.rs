//! The two upload flows of JupiterOne's protocol on top of [`crate::delivery::jupiterone`]:
//! `corral sync` (a collected graph: job, entities, relationships, finalize) and
//! `corral run --sync` (job first, each step's objects and events as the step ends,
//! finalize when the run is over). Either way an error aborts the job with the reason,
//! and finalize lists the failed steps' types as partial, so a failure deletes nothing.

use crate::delivery::jupiterone::{Collected, JupiterOne, Kind, SyncJob, SyncStats};
use crate::run::{self, ResolvedInstance, RunReport, StepEvent, StepStatus};
use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::mpsc;

/// A finished upload.
#[derive(Debug)]
pub struct Synced {
    pub job_id: String,
    pub stats: SyncStats,
    pub partial_types: Vec<String>,
    /// The job as finalize answered it.
    pub job: Value,
}

impl Synced {
    /// One console line (the job id and skipped keys come from outside: escaped).
    pub fn describe(&self) -> String {
        corral_core::text::escape_controls(&self.describe_raw()).into_owned()
    }

    fn describe_raw(&self) -> String {
        let s = &self.stats;
        let mut line = format!(
            "synced to JupiterOne (job {}): {} entities, {} relationships in {} batches, {:.1} MB",
            self.job_id,
            s.entities,
            s.relationships,
            s.batches,
            s.bytes as f64 / 1e6
        );
        if !self.partial_types.is_empty() {
            line.push_str(&format!(
                "; partial types: {}",
                self.partial_types.join(", ")
            ));
        }
        if s.retries + s.truncated > 0 {
            line.push_str(&format!(
                "; {} retries, {} _rawData fields truncated",
                s.retries, s.truncated
            ));
        }
        if !s.skipped.is_empty() {
            line.push_str(&format!("; skipped as too large: {}", s.skipped.join(", ")));
        }
        line
    }
}

/// How much collected file text `corral sync` reads before uploading it.
const COLLECTED_CHUNK_BYTES: u64 = 4 * crate::delivery::jupiterone::BATCH_LIMIT as u64;

/// `corral sync`: uploads a graph `corral run` collected.
pub async fn sync_collected(
    j1: &JupiterOne,
    integration_instance_id: &str,
    graph: Collected,
) -> anyhow::Result<Synced> {
    let job = j1.start_job(integration_instance_id).await?;
    let partial = graph.partial_types.clone();
    let result = async {
        // A few batches' worth of files at a time: the upload holds that much, whatever
        // the graph's size, and still keeps several batches in flight.
        for kind in [Kind::Entity, Kind::Relationship] {
            for chunk in graph.chunks(kind, COLLECTED_CHUNK_BYTES) {
                job.upload(kind, chunk?).await?;
            }
        }
        job.finalize(&partial).await
    }
    .await;
    conclude(&job, result, partial).await
}

/// `corral run --sync` for one instance: the job is created before the run starts, and
/// the run's outcome decides between finalize and abort.
pub async fn run_and_sync(
    inst: &ResolvedInstance,
    hosts: crate::net::address::StaticHosts,
    j1: &JupiterOne,
    integration_instance_id: &str,
) -> (RunReport, anyhow::Result<Synced>) {
    let job = match j1.start_job(integration_instance_id).await {
        Ok(job) => job,
        Err(e) => {
            let report = run::run_instance(inst, hosts).await;
            return (report, Err(e));
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (report, uploaded) = tokio::join!(
        run::run_instance_observed(inst, hosts, Some(tx)),
        upload_steps(&job, rx)
    );
    let partial = report.partial_types();
    let result = match (uploaded, &report.validation) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(reason)) => Err(anyhow::anyhow!("validation failed: {reason}")),
        (Ok(()), Ok(())) => job.finalize(&partial).await,
    };
    (report, conclude(&job, result, partial).await)
}

/// Posts step events and uploads each step's objects when it ends. After the first
/// error nothing more is sent (the events are still drained so the run is not held).
async fn upload_steps(
    job: &SyncJob<'_>,
    mut events: mpsc::UnboundedReceiver<StepEvent>,
) -> anyhow::Result<()> {
    let mut failure = None;
    while let Some(event) = events.recv().await {
        if failure.is_none()
            && let Err(e) = send_step(job, event).await
        {
            failure = Some(e);
        }
    }
    failure.map_or(Ok(()), Err)
}

async fn send_step(job: &SyncJob<'_>, event: StepEvent) -> anyhow::Result<()> {
    match event {
        StepEvent::Started { id, name } => {
            job.event("step_start", &format!("Starting step \"{name}\" ({id})"))
                .await
        }
        StepEvent::Finished { result, objects } => {
            let (entities, relationships) = objects.map_err(anyhow::Error::msg)?;
            job.upload(Kind::Entity, entities).await?;
            job.upload(Kind::Relationship, relationships).await?;
            let (id, name) = (&result.info.id, &result.info.name);
            match (result.status, &result.error) {
                (StepStatus::Failure, error) => {
                    let why = error.as_deref().unwrap_or("unknown error");
                    job.event(
                        "step_failure",
                        &format!("Step \"{name}\" ({id}) failed: {why}"),
                    )
                    .await
                }
                _ => {
                    job.event("step_end", &format!("Completed step \"{name}\" ({id})"))
                        .await
                }
            }
        }
    }
}

/// Finalize's answer becomes [`Synced`]; an error aborts the job with the reason.
async fn conclude(
    job: &SyncJob<'_>,
    result: anyhow::Result<Value>,
    partial_types: Vec<String>,
) -> anyhow::Result<Synced> {
    match result {
        Ok(answer) => Ok(Synced {
            job_id: job.id.clone(),
            stats: job.stats(),
            partial_types: job.partial_with_skipped(&partial_types),
            job: answer["job"].clone(),
        }),
        Err(e) => {
            let reason = format!("{e:#}");
            match job.abort(&reason).await {
                Ok(()) => Err(e).with_context(|| format!("job {} aborted", job.id)),
                Err(abort) => {
                    Err(e).with_context(|| format!("job {} (abort failed too: {abort})", job.id))
                }
            }
        }
    }
}
