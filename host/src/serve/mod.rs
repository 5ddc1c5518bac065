//! `corral serve`: the long-running host. It keeps a generation of every plugin
//! ([`registry`]), takes new ones dropped into `plugin_dir` while it runs
//! ([`watch`], [`candidate`]), runs instances on their schedules or on request
//! ([`schedule`], [`runs`]) with their history in SQLite ([`crate::delivery::history`]), and
//! answers the admin API ([`admin`]) with [`metrics`].

pub mod admin;
pub mod candidate;
pub mod metrics;
pub mod registry;
pub mod remote;
pub mod runs;
pub mod schedule;
pub mod watch;

use crate::config::CorralConfig;
use crate::delivery::history::History;
use crate::engine::PoolSize;
use crate::lock::LockExt;
use crate::plugin::builtin;
use crate::plugin::runtime::Runtime;
use anyhow::Context as _;
use metrics::Metrics;
use registry::Registry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch as signal};
use tokio::task::JoinHandle;

/// The state every part of the daemon shares.
pub struct Daemon {
    pub config: CorralConfig,
    pub runtime: Runtime,
    pub registry: Registry,
    pub history: History,
    /// Output, graph state, changes and alerts after each run.
    pub delivery: crate::delivery::Delivery,
    pub metrics: Metrics,
    /// Instance id → the run queued or running for it (at most one each).
    in_flight: Mutex<HashMap<String, String>>,
    /// Permits for runs executing at once.
    run_slots: Arc<Semaphore>,
    /// One candidate compiles at a time; the permit lives as long as the compile thread,
    /// even one that overran its timeout.
    compile_gate: Arc<Semaphore>,
    admitting: AtomicBool,
    stop: signal::Sender<bool>,
    /// Cluster mode: runs are queued on NATS for workers instead of executed here.
    pub cluster: Option<Arc<crate::cluster::coordinator::Coordinator>>,
    /// The generation each cluster run was queued with, until its result is delivered.
    queued_on: Mutex<HashMap<String, Arc<registry::Generation>>>,
    /// Cluster mode: the previous graph each run in flight reads through the workers'
    /// asks (its instance's), from its first read until its result is delivered.
    previous_readers: Mutex<HashMap<String, Arc<dyn crate::capabilities::graph::PreviousGraph>>>,
}

/// A started daemon; [`DaemonHandle::shutdown`] stops it.
pub struct DaemonHandle {
    pub daemon: Arc<Daemon>,
    pub admin_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
}

/// How a shutdown went.
#[derive(Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Runs still in flight at the deadline, marked failed.
    pub abandoned: usize,
}

/// Loads the plugins, opens the history, binds the admin API and starts the schedules
/// and the `plugin_dir` watcher.
pub async fn start(config: CorralConfig, admin: SocketAddr) -> anyhow::Result<DaemonHandle> {
    start_with(config, admin, None).await
}

/// [`start`], as a cluster coordinator when `cluster` names a NATS server.
pub async fn start_with(
    config: CorralConfig,
    admin: SocketAddr,
    cluster: Option<&str>,
) -> anyhow::Result<DaemonHandle> {
    let coordinator = match cluster {
        Some(url) => Some(Arc::new(
            crate::cluster::coordinator::Coordinator::connect(url, &config.data_dir).await?,
        )),
        None => None,
    };
    let (history, recovered) = match coordinator {
        Some(_) => (History::open_kept(&config.data_dir)?, 0),
        None => History::open(&config.data_dir)?,
    };
    if recovered > 0 {
        tracing::warn!(
            runs = recovered,
            "marked runs left in flight by the previous process as failed"
        );
    }
    let (stop, _) = signal::channel(false);
    crate::plugin::compiled_cache::enable();
    let runtime = Runtime::with_pool(&PoolSize::for_runs(config.serve.max_concurrent_runs))?;
    let delivery = crate::delivery::Delivery::open(
        &config.data_dir,
        config.data_dir.join("out"),
        config.alerts.clone(),
        runtime.hosts.clone(),
    )?;
    let daemon = Arc::new(Daemon {
        runtime,
        registry: Registry::new(config.serve.rollback_generations),
        history,
        delivery,
        metrics: Metrics::default(),
        in_flight: Mutex::default(),
        run_slots: Arc::new(Semaphore::new(config.serve.max_concurrent_runs.max(1))),
        compile_gate: Arc::new(Semaphore::new(1)),
        admitting: AtomicBool::new(true),
        stop,
        cluster: coordinator,
        queued_on: Mutex::default(),
        previous_readers: Mutex::default(),
        config,
    });
    daemon.load_builtins().await?;
    let mut tasks = Vec::new();
    if daemon.cluster.is_some() {
        daemon.reconcile().await?;
        tasks.push(tokio::spawn(daemon.clone().take_results()));
        tasks.push(tokio::spawn(daemon.clone().watch_taken()));
        tasks.push(tokio::spawn(daemon.clone().answer_asks()));
    }
    if let Some(dir) = daemon.config.plugin_dir.clone() {
        anyhow::ensure!(
            dir.is_dir(),
            "{}: plugin_dir {} is not a directory",
            daemon.config.path.display(),
            dir.display()
        );
        // Watch before the first scan so nothing written in between is missed.
        tasks.push(watch::spawn(daemon.clone(), dir.clone())?);
        for path in watch::wasm_files(&dir)? {
            daemon.offer_settled(&path).await;
        }
    }
    daemon.check_instances();
    let listener = tokio::net::TcpListener::bind(admin)
        .await
        .with_context(|| format!("cannot listen on {admin} for the admin API"))?;
    let admin_addr = listener.local_addr()?;
    let server = admin::spawn(daemon.clone(), listener);
    tasks.extend(schedule::spawn_all(&daemon));
    tracing::info!(%admin_addr, instances = daemon.config.instances.len(), "corral serve ready");
    Ok(DaemonHandle {
        daemon,
        admin_addr,
        tasks,
        server,
    })
}

impl Daemon {
    async fn load_builtins(&self) -> anyhow::Result<()> {
        for id in builtin::ids() {
            let plugin = self.runtime.plugin(id).await?;
            if let Some(bytes) = builtin::component(id) {
                self.keep_component(&plugin.digest, bytes);
            }
            self.registry.install(plugin);
        }
        Ok(())
    }

    /// Logs each instance whose plugin is not loaded: its runs will fail until one is
    /// dropped in.
    fn check_instances(&self) {
        for inst in &self.config.instances {
            if self.registry.current(&inst.plugin).is_none() {
                tracing::error!(
                    instance = %inst.id,
                    plugin = %inst.plugin,
                    "no plugin with this id is loaded; runs fail until one is dropped into plugin_dir"
                );
            }
        }
    }

    /// Cluster mode: keeps a component's bytes so workers can fetch it by digest.
    pub fn keep_component(&self, digest: &str, bytes: &[u8]) {
        if let Some(c) = &self.cluster
            && let Err(e) = c.keep(digest, bytes)
        {
            tracing::error!(digest, "cannot keep the component for workers: {e}");
        }
    }

    pub fn is_admitting(&self) -> bool {
        self.admitting.load(Ordering::SeqCst)
    }

    pub fn runs_in_flight(&self) -> usize {
        self.in_flight.locked().len()
    }

    /// A receiver that turns `true` when the daemon stops.
    pub fn stopping(&self) -> signal::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn gauges(&self) -> metrics::Gauges {
        metrics::Gauges {
            runs_in_flight: self.runs_in_flight(),
            generations: self
                .registry
                .describe()
                .into_iter()
                .filter_map(|p| Some((p.id, p.generation?)))
                .collect(),
        }
    }
}

impl DaemonHandle {
    /// Stops admitting runs, waits up to `grace` for those in flight, marks any left as
    /// failed, then stops the admin API.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let daemon = &self.daemon;
        daemon.admitting.store(false, Ordering::SeqCst);
        let _ = daemon.stop.send(true);
        // A cluster's runs live on in JetStream; this process only stops waiting.
        let deadline = match daemon.cluster {
            Some(_) => Instant::now(),
            None => Instant::now() + grace,
        };
        while daemon.runs_in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let abandoned = if daemon.runs_in_flight() > 0 && daemon.cluster.is_none() {
            let reason = format!(
                "corral shut down before this run finished (grace of {} s)",
                grace.as_secs()
            );
            daemon.history.fail_unfinished(&reason).unwrap_or_else(|e| {
                tracing::error!("{e}");
                0
            })
        } else {
            0
        };
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.server.await;
        tracing::info!(abandoned, "corral serve stopped");
        ShutdownReport { abandoned }
    }
}
