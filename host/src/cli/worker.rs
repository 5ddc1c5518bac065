//! `corral worker`: executes a cluster's runs until SIGTERM or SIGINT, then finishes and
//! stores the runs it holds and exits 0.

use crate::config::CorralConfig;
use std::path::Path;
use std::process::ExitCode;

pub async fn worker(
    path: &Path,
    nats: &str,
    name: Option<String>,
    slots: usize,
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let config = CorralConfig::load(path)?;
    anyhow::ensure!(slots >= 1, "--slots must be at least 1");
    let name = name.unwrap_or_else(default_name);
    crate::capabilities::graph::set_spool_dir(config.data_dir.join("spool"));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let worker = crate::cluster::worker::Worker::connect(config, nats, name.clone(), slots).await?;
    // Tools that start workers read this line to know it is taking runs.
    println!(
        "corral worker {name}: taking runs from {} ({slots} slots)",
        crate::cluster::shown(nats)
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(worker.serve(slots, stopping));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("corral worker {name}: stopping after the runs it holds (signal again to stop now)");
    let _ = stop.send(true);
    // A second signal exits at once; the runs held go to other workers after the ack wait.
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("corral worker: second signal; exiting now");
        std::process::exit(1);
    });
    serving.await??;
    Ok(ExitCode::SUCCESS)
}

/// `<host name>-<process id>`: unique per process on a machine.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_string());
    format!("{host}-{}", std::process::id())
}
