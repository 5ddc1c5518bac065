//! `corral worker`: takes runs from the cluster's queue, at most `slots` at once, runs
//! each on exactly the plugin generation it was queued with (fetched by digest, checked,
//! kept compiled), and stores the result before acknowledging the run.

use super::wire::{self, Outcome, ResultNotice, RunRequest};
use super::{Layout, MAX_ATTEMPTS, PROGRESS_EVERY};
use crate::config::CorralConfig;
use crate::lock::LockExt;
use crate::plugin::runtime::Runtime;
use crate::plugin::{self, LoadedPlugin};
use crate::run;
use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::sync::{Semaphore, watch};

/// Compiled generations kept in memory, at most (the compiled cache on disk keeps more).
const KEPT_PLUGINS: usize = 16;
/// How long one fetch waits for a run before asking again.
const FETCH_WAIT: Duration = Duration::from_secs(2);
/// How long a worker keeps trying to store a finished run's result before reporting
/// the run failed.
const STORE_PATIENCE: Duration = Duration::from_secs(600);
/// How long a run put back (NATS was away) waits before it is offered again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// How long one transfer of `bytes` to or from a JetStream object store may take: a
/// stalled one (the store's consumer stops delivering) must not hold the run's slot
/// for ever, as the run's progress messages would keep it from anyone else.
fn transfer_patience(bytes: u64) -> Duration {
    // 30 s, and a second for each 4 MiB.
    Duration::from_secs(30 + bytes / (4 << 20))
}

/// Why an attempt made no result: worth another attempt (NATS away), or not.
enum Stop {
    Retry(anyhow::Error),
    Fail(anyhow::Error),
}

pub struct Worker {
    pub name: String,
    config: CorralConfig,
    runtime: Runtime,
    js: jetstream::Context,
    layout: Layout,
    /// Components fetched by digest: `data_dir/cluster/plugins/<sha256>.wasm`.
    cache_dir: PathBuf,
    plugins: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    /// Where runs take shared quota tokens and read their previous graph.
    asks: Arc<super::asks::Asks>,
}

impl Worker {
    pub async fn connect(
        config: CorralConfig,
        url: &str,
        name: String,
        slots: usize,
    ) -> anyhow::Result<Arc<Worker>> {
        let js = super::connect(url, &format!("corral worker {name}")).await?;
        let layout = super::wait_for_layout(&js).await;
        crate::plugin::compiled_cache::enable();
        let runtime = Runtime::with_pool(&crate::engine::PoolSize::for_runs(slots))?;
        let cache_dir = config.data_dir.join("cluster").join("plugins");
        std::fs::create_dir_all(&cache_dir)
            .with_context(|| format!("{}: cannot create", cache_dir.display()))?;
        Ok(Arc::new(Worker {
            name,
            config,
            runtime,
            asks: Arc::new(super::asks::Asks::new(js.client())),
            js,
            layout,
            cache_dir,
            plugins: Mutex::default(),
        }))
    }

    /// Takes runs until `stop` turns true, then waits for those it holds.
    pub async fn serve(
        self: Arc<Self>,
        slots: usize,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let consumer = super::workers_consumer(&self.layout.runs).await?;
        let total = u32::try_from(slots.max(1)).unwrap_or(u32::MAX);
        let slots = Arc::new(Semaphore::new(total as usize));
        tracing::info!(worker = %self.name, slots = total, "corral worker ready");
        while !*stop.borrow() {
            let permit = slots.clone().acquire_owned().await?;
            let batch = consumer
                .fetch()
                .max_messages(1)
                .expires(FETCH_WAIT)
                .messages();
            let taken = tokio::select! {
                b = batch => b,
                _ = stop.changed() => break,
            };
            let mut batch = match taken {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("cannot fetch runs (retrying): {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match batch.next().await {
                Some(Ok(msg)) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.take(msg).await;
                        drop(permit);
                    });
                }
                Some(Err(e)) => tracing::warn!("a run could not be taken: {e}"),
                None => {}
            }
        }
        // Runs held finish and are stored before the worker exits.
        let _ = slots.acquire_many(total).await;
        Ok(())
    }

    /// Runs one taken request through to an acknowledged, stored result.
    async fn take(&self, msg: Message) {
        let msg = Arc::new(msg);
        let attempts = msg.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1);
        let request = match parse_request(&msg) {
            Ok(r) => r,
            Err(e) => {
                // Nothing to report it on: a notice needs a run id of ours.
                tracing::error!("dropping a run request that is not one: {e:#}");
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            }
        };
        let heartbeat = AbortOnDrop(tokio::spawn(progress(msg.clone())));
        self.announce(&request.run_id, attempts).await;
        let outcome = if attempts > 1 && self.already_stored(&request.run_id).await {
            // An earlier attempt stored its result and stopped before acknowledging.
            Outcome::Ran { bytes: 0 }
        } else if attempts > MAX_ATTEMPTS {
            Outcome::Failed {
                reason: format!(
                    "given up after {} deliveries: each worker that took it stopped before finishing (killed, or cut off from NATS)",
                    attempts - 1
                ),
            }
        } else {
            match self.execute(&request).await {
                Ok(bytes) => Outcome::Ran { bytes },
                Err(Stop::Retry(e)) if attempts < MAX_ATTEMPTS => {
                    drop(heartbeat);
                    tracing::warn!(run = %request.run_id, attempts, "run put back for another try: {e:#}");
                    let _ = msg.ack_with(AckKind::Nak(Some(RETRY_DELAY))).await;
                    return;
                }
                Err(Stop::Retry(e) | Stop::Fail(e)) => Outcome::Failed {
                    reason: format!("worker {}: {e:#}", self.name),
                },
            }
        };
        let notice = ResultNotice {
            run_id: request.run_id.clone(),
            worker: self.name.clone(),
            attempts,
            outcome,
        };
        self.publish(&notice).await;
        drop(heartbeat);
        if let Err(e) = msg.double_ack().await {
            // The result is stored; a redelivery is delivered once by run id.
            tracing::warn!(run = %request.run_id, "acknowledging the run failed: {e}");
        }
        tracing::info!(run = %request.run_id, instance = %request.instance, attempts, "run done");
    }

    /// Whether the results store already holds a complete result for the run (its
    /// metadata is written last).
    async fn already_stored(&self, run_id: &str) -> bool {
        matches!(
            super::stored(&self.layout.result_files, run_id).await,
            Ok(Some(_))
        )
    }

    /// Runs the request and stores its result; returns the result file's size.
    async fn execute(&self, req: &RunRequest) -> Result<u64, Stop> {
        let cfg = self.config.instance(&req.instance).ok_or_else(|| {
            Stop::Fail(anyhow::anyhow!(
                "instance {:?} is not in this worker's config {}",
                req.instance,
                self.config.path.display()
            ))
        })?;
        if cfg.plugin != req.plugin_id {
            return Err(Stop::Fail(anyhow::anyhow!(
                "instance {:?} runs plugin {:?} in this worker's config {}, not {:?}",
                req.instance,
                cfg.plugin,
                self.config.path.display(),
                req.plugin_id
            )));
        }
        let plugin = self.plugin(req).await?;
        let mut resolved = run::resolve_instance(cfg, plugin)
            .with_context(|| format!("{}: instance {:?}", self.config.path.display(), cfg.id))
            .map_err(Stop::Fail)?;
        resolved.expected = crate::run::Expected {
            requests: req.expected_requests,
            objects: req.expected_objects,
        };
        // Kept by the coordinator, where the runs of every worker meet.
        resolved.quota_keeper = Some(self.asks.clone());
        resolved.previous = Some(Arc::new(super::asks::RemotePrevious::new(
            self.asks.clone(),
            &req.run_id,
        )));
        let report = run::run_instance(&resolved, self.runtime.hosts.clone()).await;
        self.store(&req.run_id, report).await.map_err(Stop::Fail)
    }

    /// Writes the result file and puts it in the results store, retrying while NATS is
    /// away (the run is done; only its delivery waits).
    async fn store(&self, run_id: &str, report: run::RunReport) -> anyhow::Result<u64> {
        let file = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
            let mut file = tempfile::tempfile_in(super::spool_dir())?;
            super::bundle::write(&report, &mut file)?;
            Ok(file)
        })
        .await??;
        let bytes = file.metadata()?.len();
        let mut file = tokio::fs::File::from_std(file);
        let mut delay = Duration::from_millis(100);
        let give_up = std::time::Instant::now() + STORE_PATIENCE;
        loop {
            use tokio::io::AsyncSeekExt as _;
            file.seek(std::io::SeekFrom::Start(0)).await?;
            let reader = &mut tokio::io::BufReader::new(&mut file);
            let put = self.layout.result_files.put(run_id, reader);
            let put = match tokio::time::timeout(transfer_patience(bytes), put).await {
                Ok(done) => done.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no end after {:?}", transfer_patience(bytes))),
            };
            match put {
                Ok(_) => return Ok(bytes),
                Err(e) if std::time::Instant::now() > give_up => {
                    anyhow::bail!("cannot store the result in {}: {e}", super::RESULTS_BUCKET)
                }
                Err(e) => tracing::warn!(run = run_id, "result not stored yet (retrying): {e}"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// The generation `req` was queued with: from memory, this worker's disk, or NATS;
    /// its bytes are checked against the digest every time they are read. NATS being
    /// away is worth another try; bytes that are wrong are not.
    async fn plugin(&self, req: &RunRequest) -> Result<Arc<LoadedPlugin>, Stop> {
        if !(req.digest.len() == 64 && req.digest.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(Stop::Fail(anyhow::anyhow!(
                "not a sha256 digest: {:?}",
                req.digest
            )));
        }
        let cached = self.plugins.locked().get(&req.digest).cloned();
        let loaded = match cached {
            Some(p) => p,
            None => self.load(&req.digest).await?,
        };
        if loaded.manifest.id != req.plugin_id {
            return Err(Stop::Fail(anyhow::anyhow!(
                "plugin {} declares id {:?}, the run was queued for {:?}",
                req.digest,
                loaded.manifest.id,
                req.plugin_id
            )));
        }
        Ok(loaded)
    }

    /// Loads component `digest` from this worker's disk (fetching it first if needed);
    /// compiles on a blocking thread so the progress of runs held is not held up.
    async fn load(&self, digest: &str) -> Result<Arc<LoadedPlugin>, Stop> {
        let path = self.cache_dir.join(format!("{digest}.wasm"));
        if !path.exists() {
            self.fetch(digest, &path).await?;
        }
        let bad = |e: anyhow::Error| {
            // Whatever is wrong with the file, the next attempt fetches it again.
            let _ = std::fs::remove_file(&path);
            Stop::Fail(e)
        };
        let bytes = plugin::read_component_file(&path, plugin::MAX_COMPONENT_BYTES)
            .map_err(|e| bad(anyhow::anyhow!("{}: {e}", path.display())))?;
        if plugin::digest(&bytes) != digest {
            return Err(bad(anyhow::anyhow!(
                "{}: its sha256 is not the digest asked for",
                path.display()
            )));
        }
        let source = plugin::PluginSource::File(path.clone());
        let (engine, compiling) = (self.runtime.engine.clone(), source.clone());
        let compiled =
            tokio::task::spawn_blocking(move || plugin::compile(&engine, &bytes, &compiling))
                .await
                .map_err(|e| bad(anyhow::anyhow!("compiling {digest}: {e}")))?
                .map_err(|e| bad(e.into()))?;
        let loaded = plugin::link(&self.runtime.linker, compiled, source)
            .await
            .map_err(|e| bad(e.into()))?;
        let mut kept = self.plugins.locked();
        if kept.len() >= KEPT_PLUGINS {
            kept.clear();
        }
        kept.insert(digest.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// Copies component `digest` from the plugins store to `path` if its bytes match.
    async fn fetch(&self, digest: &str, path: &std::path::Path) -> Result<(), Stop> {
        let away = |e: &dyn std::fmt::Display| {
            Stop::Retry(anyhow::anyhow!(
                "cannot fetch plugin {digest} from NATS: {e}"
            ))
        };
        let store = &self.layout.plugins;
        let info = super::stored(store, digest)
            .await
            .map_err(|e| away(&e))?
            .ok_or_else(|| {
                Stop::Fail(anyhow::anyhow!(
                    "plugin {digest} is not in the {} store",
                    super::PLUGINS_BUCKET
                ))
            })?;
        if info.size as u64 > plugin::MAX_COMPONENT_BYTES {
            return Err(Stop::Fail(anyhow::anyhow!(
                "plugin {digest} is {} bytes (at most {})",
                info.size,
                plugin::MAX_COMPONENT_BYTES
            )));
        }
        let patience = transfer_patience(info.size as u64);
        let read = async {
            let mut object = store.get(digest).await.map_err(|e| away(&e))?;
            let mut bytes = Vec::with_capacity(info.size);
            (&mut object)
                .take(plugin::MAX_COMPONENT_BYTES + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| away(&e))?;
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(patience, read)
            .await
            .map_err(|_| away(&format!("no end after {patience:?}")))??;
        let got = plugin::digest(&bytes);
        if got != digest {
            return Err(Stop::Fail(anyhow::anyhow!(
                "plugin {digest} in the {} store has sha256 {got}: refused",
                super::PLUGINS_BUCKET
            )));
        }
        super::write_whole(path, &bytes)
            .map_err(|e| Stop::Fail(anyhow::anyhow!("{}: {e}", path.display())))
    }

    /// Tells the coordinator the run started here (best effort: the result says it too).
    async fn announce(&self, run_id: &str, attempts: u64) {
        let taken = wire::Taken {
            run_id: run_id.to_string(),
            worker: self.name.clone(),
            attempts,
        };
        if let Ok(payload) = serde_json::to_vec(&taken) {
            let _ = self
                .js
                .client()
                .publish(super::taken_subject(run_id), payload.into())
                .await;
        }
    }

    /// Publishes the notice, retrying until NATS takes it (a restarted server is waited
    /// out; the run's progress keeps it ours meanwhile).
    async fn publish(&self, notice: &ResultNotice) {
        let payload = match serde_json::to_vec(notice) {
            Ok(p) => p,
            Err(e) => return tracing::error!("cannot encode a result notice: {e}"),
        };
        let mut delay = Duration::from_millis(100);
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", notice.run_id.as_str());
            let sent = self
                .js
                .publish_with_headers(
                    super::result_subject(&notice.run_id),
                    headers,
                    payload.clone().into(),
                )
                .await;
            match sent {
                Ok(ack) => match ack.await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(run = %notice.run_id, "result not stored yet (retrying): {e}")
                    }
                },
                Err(e) => {
                    tracing::warn!(run = %notice.run_id, "result not sent yet (retrying): {e}")
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// The run request in `msg`, if its run id is one of ours and the one its subject names.
fn parse_request(msg: &Message) -> anyhow::Result<RunRequest> {
    let request: RunRequest = wire::parse(&msg.subject, &msg.payload)?;
    anyhow::ensure!(
        wire::valid_run_id(&request.run_id)
            && msg.subject.as_str() == super::run_subject(&request.run_id),
        "{}: names run {:?}",
        msg.subject,
        request.run_id
    );
    Ok(request)
}

/// A task aborted when its handle is dropped: the heartbeat ends with the run, however
/// the run's task ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tells JetStream the run is still going, so it is not handed to another worker.
async fn progress(msg: Arc<Message>) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        if let Err(e) = msg.ack_with(AckKind::Progress).await {
            tracing::warn!("cannot report progress on a run: {e}");
        }
    }
}
