//! The coordinator's side of NATS: publishing each generation's component and each
//! queued run, taking result notices and reading their files back. What a result does to
//! the history, state and outputs is the daemon's ([`crate::serve::remote`]).

use super::wire::{self, ResultNotice, RunRequest};
use super::{Layout, bundle};
use crate::lock::LockExt;
use crate::run::RunReport;
use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, Message, consumer};
use futures::StreamExt as _;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The largest result file read back (a graph at the default `maxGraphBytes` with its
/// framing fits well within it).
const MAX_RESULT_BYTES: u64 = 8 << 30;

pub struct Coordinator {
    js: jetstream::Context,
    layout: Layout,
    results: consumer::Consumer<consumer::pull::Config>,
    /// Every generation's component: `data_dir/cluster/plugins/<sha256>.wasm`, written
    /// when it is installed so it can be published whenever NATS is reachable.
    kept: PathBuf,
    published: Mutex<HashSet<String>>,
    /// Run ids this process queued and has not seen delivered (tells its own retried
    /// publish from a foreign one with the same id).
    queued: Mutex<HashSet<String>>,
}

/// Why a result could not be read: NATS away (try again later), or a result that is
/// not a good one (the run fails with the reason).
#[derive(Debug)]
pub enum ResultError {
    Away(anyhow::Error),
    Invalid(anyhow::Error),
}

/// Why a run could not be queued: NATS away (try again), or never (the run fails).
#[derive(Debug)]
pub enum QueueError {
    Away(anyhow::Error),
    Never(anyhow::Error),
}

/// A result notice taken from the stream: [`Coordinator::done`] acknowledges it.
pub struct Taken {
    pub notice: Result<ResultNotice, String>,
    msg: Message,
}

impl Taken {
    /// How many times JetStream has handed this notice out (1 the first time).
    pub fn deliveries(&self) -> u64 {
        self.msg.info().map_or(1, |i| i.delivered.max(1) as u64)
    }
}

impl Coordinator {
    pub async fn connect(url: &str, data_dir: &std::path::Path) -> anyhow::Result<Coordinator> {
        let js = super::connect(url, "corral coordinator").await?;
        let layout = super::wait_for_layout(&js).await;
        let results = super::coordinator_consumer(&layout.results).await?;
        let kept = data_dir.join("cluster").join("plugins");
        std::fs::create_dir_all(&kept)
            .with_context(|| format!("{}: cannot create", kept.display()))?;
        Ok(Coordinator {
            js,
            layout,
            results,
            kept,
            published: Mutex::default(),
            queued: Mutex::default(),
        })
    }

    /// Keeps an installed generation's bytes for publishing (written whole, once).
    pub fn keep(&self, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.kept.join(format!("{digest}.wasm"));
        if path.exists() {
            return Ok(());
        }
        super::write_whole(&path, bytes)
    }

    /// Publishes the run (and its generation's component, once) to the queue.
    pub async fn enqueue(&self, request: &RunRequest) -> Result<(), QueueError> {
        self.publish_plugin(&request.digest).await?;
        // Present already: this is a retry of our own publish.
        let retry = !self.queued.locked().insert(request.run_id.clone());
        let payload = serde_json::to_vec(request).map_err(|e| QueueError::Never(e.into()))?;
        let mut headers = async_nats::HeaderMap::new();
        // JetStream drops a second publish of the same run (a retry after a lost ack).
        headers.insert("Nats-Msg-Id", request.run_id.as_str());
        let ack = self
            .js
            .publish_with_headers(super::run_subject(&request.run_id), headers, payload.into())
            .await
            .map_err(|e| QueueError::Away(e.into()))?
            .await
            .map_err(|e| {
                QueueError::Away(anyhow::anyhow!(
                    "the run queue did not confirm the run: {e}"
                ))
            })?;
        if ack.duplicate && !retry {
            // Not our own retry: another coordinator (or this one before its data_dir was
            // reset) queued a run with this id within JetStream's 10 min window.
            return Err(QueueError::Never(anyhow::anyhow!(
                "JetStream already holds a run {} this coordinator did not queue: is another coordinator using this NATS, or was data_dir reset?",
                request.run_id
            )));
        }
        Ok(())
    }

    /// Forgets a queued run id (its result was delivered).
    pub fn settled(&self, run_id: &str) {
        self.queued.locked().remove(run_id);
    }

    async fn publish_plugin(&self, digest: &str) -> Result<(), QueueError> {
        if self.published.locked().contains(digest) {
            return Ok(());
        }
        match super::stored(&self.layout.plugins, digest).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let bytes = self.kept_component(digest).map_err(QueueError::Never)?;
                self.layout
                    .plugins
                    .put(digest, &mut bytes.as_slice())
                    .await
                    .map_err(|e| {
                        QueueError::Away(anyhow::anyhow!("cannot publish plugin {digest}: {e}"))
                    })?;
            }
            Err(e) => return Err(QueueError::Away(e.into())),
        }
        self.published.locked().insert(digest.to_string());
        Ok(())
    }

    /// The kept bytes of component `digest`, checked against it.
    fn kept_component(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.kept.join(format!("{digest}.wasm"));
        let bytes = crate::plugin::read_component_file(&path, crate::plugin::MAX_COMPONENT_BYTES)
            .map_err(|e| {
            anyhow::anyhow!("{}: the component to publish: {e}", path.display())
        })?;
        if crate::plugin::digest(&bytes) != digest {
            let _ = std::fs::remove_file(&path);
            anyhow::bail!(
                "{}: its bytes do not have the sha256 in its name",
                path.display()
            );
        }
        Ok(bytes)
    }

    /// Workers' words that they started runs.
    pub async fn taken(&self) -> anyhow::Result<async_nats::Subscriber> {
        Ok(self.js.client().subscribe("corral.taken.*").await?)
    }

    /// What workers ask during their runs (`cluster::asks`), in a queue group so that
    /// each ask is answered once (one coordinator per NATS, as for the run ids).
    pub async fn asks(&self) -> anyhow::Result<async_nats::Subscriber> {
        Ok(self
            .js
            .client()
            .queue_subscribe(super::asks::ALL_ASKS, super::asks::ANSWERERS.into())
            .await?)
    }

    /// Answers an ask.
    pub async fn reply(&self, to: async_nats::Subject, answer: Vec<u8>) {
        if let Err(e) = self.js.client().publish(to, answer.into()).await {
            tracing::warn!("cannot answer a worker (it will ask again): {e}");
        }
    }

    /// The largest message NATS takes: an answer must fit in it.
    pub fn max_payload(&self) -> usize {
        self.js.client().max_payload()
    }

    /// Whether JetStream still holds the run: queued, held by a worker, or its result
    /// waiting. `None` when NATS could not tell.
    pub async fn holds(&self, run_id: &str) -> Option<bool> {
        for (stream, subject) in [
            (&self.layout.runs, super::run_subject(run_id)),
            (&self.layout.results, super::result_subject(run_id)),
        ] {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(_) => return Some(true),
                Err(e)
                    if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(e) => {
                    tracing::warn!(run = run_id, "cannot ask NATS about the run: {e}");
                    return None;
                }
            }
        }
        Some(false)
    }

    /// The next result notice; waits, and rides out NATS being away.
    pub async fn next_result(&self) -> Taken {
        loop {
            let batch = self
                .results
                .fetch()
                .max_messages(1)
                .expires(Duration::from_secs(5))
                .messages()
                .await;
            match batch {
                Ok(mut b) => match b.next().await {
                    Some(Ok(msg)) => {
                        let notice = wire::parse::<ResultNotice>(&msg.subject, &msg.payload)
                            .map_err(|e| format!("{e:#}"));
                        return Taken { notice, msg };
                    }
                    Some(Err(e)) => tracing::warn!("cannot take a result (retrying): {e}"),
                    None => continue,
                },
                Err(e) => tracing::warn!("cannot fetch results (retrying): {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Reads run `run_id`'s result file from the store.
    pub async fn report(&self, run_id: &str) -> Result<RunReport, ResultError> {
        let store = &self.layout.result_files;
        let info = super::stored(store, run_id)
            .await
            .map_err(|e| ResultError::Away(e.into()))?
            .ok_or_else(|| {
                ResultError::Invalid(anyhow::anyhow!(
                    "the result of {run_id} is not in the {} store",
                    super::RESULTS_BUCKET
                ))
            })?;
        if info.size as u64 > MAX_RESULT_BYTES {
            return Err(ResultError::Invalid(anyhow::anyhow!(
                "the result of {run_id} is {} bytes (at most {MAX_RESULT_BYTES})",
                info.size
            )));
        }
        let file = self.download(run_id).await.map_err(ResultError::Away)?;
        tokio::task::spawn_blocking(move || bundle::read(file))
            .await
            .map_err(|e| ResultError::Away(e.into()))?
            .map_err(|e| ResultError::Invalid(e.context(format!("the result of {run_id}"))))
    }

    /// Copies a result file to a local temp file (at most [`MAX_RESULT_BYTES`]).
    async fn download(&self, run_id: &str) -> anyhow::Result<std::fs::File> {
        let mut object = self
            .layout
            .result_files
            .get(run_id)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the result of {run_id}: {e}"))?;
        let mut file = tokio::fs::File::from_std(tempfile::tempfile_in(super::spool_dir())?);
        use tokio::io::AsyncReadExt as _;
        let copied =
            tokio::io::copy(&mut (&mut object).take(MAX_RESULT_BYTES + 1), &mut file).await?;
        anyhow::ensure!(
            copied <= MAX_RESULT_BYTES,
            "the result of {run_id} is over {MAX_RESULT_BYTES} bytes"
        );
        let mut file = file.into_std().await;
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(0))?;
        Ok(file)
    }

    /// Acknowledges a handled notice and deletes its result file.
    pub async fn done(&self, taken: Taken) {
        if let Ok(n) = &taken.notice
            && wire::valid_run_id(&n.run_id)
        {
            let _ = self.layout.result_files.delete(n.run_id.as_str()).await;
        }
        if let Err(e) = taken.msg.double_ack().await {
            tracing::warn!(
                "acknowledging a result failed (it may arrive again, and is delivered once): {e}"
            );
        }
    }

    /// Puts a notice back to be tried again later (the coordinator could not finish it).
    pub async fn retry_later(&self, taken: Taken) {
        let _ = taken
            .msg
            .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
            .await;
    }
}
