//! Watching `plugin_dir`: file events for `*.wasm` are debounced per file (a copy arrives
//! as many writes), then the file is offered as a candidate or, if gone, removed.

use super::Daemon;
use super::candidate::Offer;
use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The `*.wasm` files in `dir`, sorted.
pub fn wasm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read plugin_dir", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_wasm(p))
        .collect();
    files.sort();
    Ok(files)
}

fn is_wasm(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "wasm")
}

/// Starts watching `dir`; the task ends when the daemon stops.
pub fn spawn(daemon: Arc<Daemon>, dir: PathBuf) -> anyhow::Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Reading a file raises access events; only changes matter (else reading a
            // candidate would trigger reading it again).
            Ok(e) if e.kind.is_access() => {}
            Ok(e) => e.paths.into_iter().filter(|p| is_wasm(p)).for_each(|p| {
                let _ = tx.send(p);
            }),
            Err(e) => tracing::error!("watching plugin_dir: {e}"),
        }
    })
    .context("starting the plugin_dir watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("{}: cannot watch plugin_dir", dir.display()))?;
    Ok(tokio::spawn(async move {
        // The watcher stops when dropped: keep it as long as the loop runs.
        let _watcher = watcher;
        debounce_loop(daemon, rx).await;
    }))
}

async fn debounce_loop(daemon: Arc<Daemon>, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    let quiet = Duration::from_millis(daemon.config.serve.watch_debounce_ms);
    let mut stopping = daemon.stopping();
    let mut due: HashMap<PathBuf, Instant> = HashMap::new();
    loop {
        let next = due.values().min().copied();
        tokio::select! {
            path = rx.recv() => match path {
                Some(p) => { due.insert(p, Instant::now() + quiet); }
                None => return,
            },
            _ = sleep_until_or_forever(next) => {
                let now = Instant::now();
                let ready: Vec<PathBuf> =
                    due.iter().filter(|(_, t)| **t <= now).map(|(p, _)| p.clone()).collect();
                for path in ready {
                    due.remove(&path);
                    if daemon.offer(&path).await == Offer::Unsettled {
                        due.insert(path, Instant::now() + quiet);
                    }
                }
            }
            _ = stopping.changed() => return,
        }
    }
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
