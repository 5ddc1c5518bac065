//! `corral serve`: the daemon until SIGTERM or SIGINT.

use crate::config::CorralConfig;
use std::path::Path;
use std::process::ExitCode;

/// `corral serve`: runs until SIGTERM or SIGINT, then drains runs in flight within
/// `serve.shutdown_grace_seconds` and exits 0; a second signal exits at once (status 1),
/// marking the runs still in flight failed.
pub async fn serve(
    path: &Path,
    admin: std::net::SocketAddr,
    cluster: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let config = CorralConfig::load(path)?;
    let grace = std::time::Duration::from_secs(config.serve.shutdown_grace_seconds);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let handle = crate::serve::start_with(config, admin, cluster).await?;
    // Tools that start corral read this line for the bound address.
    println!("corral serve: admin API on http://{}", handle.admin_addr);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let daemon = handle.daemon.clone();
    eprintln!(
        "corral serve: stopping; waiting up to {} s for {} run(s) in flight (signal again to stop now)",
        grace.as_secs(),
        daemon.runs_in_flight()
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if daemon.cluster.is_none() {
            let _ = daemon
                .history
                .fail_unfinished("corral was stopped by a second signal during the run");
        }
        eprintln!("corral serve: second signal; exiting now");
        std::process::exit(1);
    });
    let report = handle.shutdown(grace).await;
    if report.abandoned > 0 {
        eprintln!(
            "corral serve: {} run(s) did not finish within {} s and were marked failed",
            report.abandoned,
            grace.as_secs()
        );
    }
    Ok(ExitCode::SUCCESS)
}
