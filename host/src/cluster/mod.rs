//! Cluster mode (issue 16): `corral serve --cluster` (the [`coordinator`]) queues runs on
//! NATS JetStream instead of executing them; `corral worker`s ([`worker`]) take them,
//! fetch the plugin generation by digest, run it and put the result ([`bundle`]) back.
//!
//! What lives in JetStream (created by whichever process starts first):
//! - stream `CORRAL_RUNS` (work queue, `corral.run.<run id>`): run requests, each taken by
//!   one worker and acknowledged once its result is stored;
//! - stream `CORRAL_RESULTS` (work queue, `corral.result.<run id>`, deduplicated by run
//!   id): result notices, taken by the coordinator;
//! - plain subject `corral.taken.<run id>`: a worker's word that it started a run;
//! - plain subjects `corral.ask.…` (request and reply, [`asks`]): what a worker asks the
//!   coordinator during a run (a token of a shared quota, a read of the previous graph);
//! - object stores `corral-plugins` (components by sha256) and `corral-results` (result
//!   files by run id, deleted once delivered).

pub mod asks;
pub mod bundle;
pub mod coordinator;
pub mod wire;
pub mod worker;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, object_store, stream};
use std::time::Duration;

pub const RUNS_STREAM: &str = "CORRAL_RUNS";
pub const RESULTS_STREAM: &str = "CORRAL_RESULTS";
pub const PLUGINS_BUCKET: &str = "corral-plugins";
pub const RESULTS_BUCKET: &str = "corral-results";
const WORKERS_CONSUMER: &str = "corral-workers";
const COORDINATOR_CONSUMER: &str = "corral-coordinator";

/// A taken run not acknowledged nor touched for this long goes to another worker.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// How often a worker tells JetStream a run it holds is still going.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// Deliveries of one run before the worker holding it reports it failed instead.
pub const MAX_ATTEMPTS: u64 = 3;
/// Results the coordinator has taken but not yet delivered, at most.
const RESULTS_IN_FLIGHT: i64 = 64;

/// Where result files are staged: the run spools' directory (on disk, not tmpfs).
fn spool_dir() -> std::path::PathBuf {
    let dir = crate::capabilities::graph::spool_dir();
    let _ = std::fs::create_dir_all(&dir);
    dir
}

pub fn run_subject(run_id: &str) -> String {
    format!("corral.run.{run_id}")
}

pub fn taken_subject(run_id: &str) -> String {
    format!("corral.taken.{run_id}")
}

pub fn result_subject(run_id: &str) -> String {
    format!("corral.result.{run_id}")
}

/// Connects with reconnection forever: a NATS restart is waited out, not fatal.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            tracing::info!(%event, "NATS connection");
        })
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", shown(url)))?;
    Ok(jetstream::new(client))
}

/// `url` without its user name and password, for messages.
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(the NATS URL given)".to_string(),
    }
}

/// [`layout`], waiting for NATS (and its JetStream) to answer: a process started while
/// NATS is away waits for it instead of exiting.
pub async fn wait_for_layout(js: &jetstream::Context) -> Layout {
    let mut delay = Duration::from_millis(200);
    loop {
        match layout(js).await {
            Ok(l) => return l,
            Err(e) => tracing::warn!("NATS JetStream not ready (retrying): {e:#}"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The streams and stores of the cluster, created if missing.
pub struct Layout {
    pub runs: stream::Stream,
    pub results: stream::Stream,
    pub plugins: object_store::ObjectStore,
    pub result_files: object_store::ObjectStore,
}

pub async fn layout(js: &jetstream::Context) -> anyhow::Result<Layout> {
    let work_queue = |name: &str, subjects: &str| stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    };
    let runs = js
        .get_or_create_stream(work_queue(RUNS_STREAM, "corral.run.*"))
        .await
        .context("cannot open the JetStream stream of runs")?;
    let results = js
        .get_or_create_stream(work_queue(RESULTS_STREAM, "corral.result.*"))
        .await
        .context("cannot open the JetStream stream of results")?;
    Ok(Layout {
        runs,
        results,
        plugins: object_store(js, PLUGINS_BUCKET, Duration::ZERO).await?,
        result_files: object_store(js, RESULTS_BUCKET, RESULTS_MAX_AGE).await?,
    })
}

/// How long a result file stays in its store at most. Delivered ones are deleted at
/// once; this bounds what is never taken (a run the coordinator forgot, the chunks of
/// a worker killed while storing).
const RESULTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// `max_age` zero keeps objects until they are deleted.
async fn object_store(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
) -> anyhow::Result<object_store::ObjectStore> {
    if let Ok(store) = js.get_object_store(bucket).await {
        keep_max_age(js, bucket, max_age).await;
        return Ok(store);
    }
    js.create_object_store(object_store::Config {
        bucket: bucket.to_string(),
        storage: stream::StorageType::File,
        max_age,
        ..Default::default()
    })
    .await
    .with_context(|| format!("cannot open the JetStream object store {bucket}"))
}

/// Gives a store made before its `max_age` (or with another) this one.
async fn keep_max_age(js: &jetstream::Context, bucket: &str, max_age: Duration) {
    let Ok(mut stream) = js.get_stream(format!("OBJ_{bucket}")).await else {
        return;
    };
    let config = match stream.info().await {
        Ok(info) if info.config.max_age != max_age => {
            let mut config = info.config.clone();
            config.max_age = max_age;
            config
        }
        _ => return,
    };
    if let Err(e) = js.update_stream(config).await {
        tracing::warn!("cannot set the JetStream object store {bucket}'s max age: {e}");
    }
}

/// Writes `bytes` to `path` whole: through a temp file of its own beside it, synced,
/// then renamed, so a reader (or a crash) never sees part of a component.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Object `name`'s info, `None` when the store has no such object; `Err` when NATS
/// could not tell.
pub async fn stored(
    store: &object_store::ObjectStore,
    name: &str,
) -> Result<Option<object_store::ObjectInfo>, object_store::InfoError> {
    match store.info(name).await {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The durable consumer all workers share: each run goes to one of them.
pub async fn workers_consumer(
    runs: &stream::Stream,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    runs.get_or_create_consumer(
        WORKERS_CONSUMER,
        consumer::pull::Config {
            durable_name: Some(WORKERS_CONSUMER.to_string()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: 100_000,
            ..Default::default()
        },
    )
    .await
    .context("cannot open the workers' consumer of runs")
}

/// The coordinator's consumer of results.
pub async fn coordinator_consumer(
    results: &stream::Stream,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    results
        .get_or_create_consumer(
            COORDINATOR_CONSUMER,
            consumer::pull::Config {
                durable_name: Some(COORDINATOR_CONSUMER.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: RESULTS_IN_FLIGHT,
                ..Default::default()
            },
        )
        .await
        .context("cannot open the coordinator's consumer of results")
}
