//! Schedules: each instance with a polling interval runs every interval, counted from its
//! last run in the history so a restart does not run everything at once.

use super::Daemon;
use super::runs::{Admission, AdmitError, Trigger};
use crate::capabilities::log::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub fn spawn_all(daemon: &Arc<Daemon>) -> Vec<JoinHandle<()>> {
    daemon
        .config
        .instances
        .iter()
        .filter_map(|i| Some((i.id.clone(), i.interval()?)))
        .map(|(id, every)| tokio::spawn(schedule(daemon.clone(), id, every)))
        .collect()
}

/// When the first scheduled run is due: an interval after the last run started, or now.
fn first_due(daemon: &Daemon, instance: &str, every: Duration) -> Instant {
    let last = daemon
        .history
        .recent(Some(instance), 1)
        .ok()
        .and_then(|runs| runs.first()?.started_at_ms);
    let wait = last.map_or(Duration::ZERO, |ms| {
        Duration::from_millis((ms + every.as_millis() as u64).saturating_sub(now_ms()))
    });
    Instant::now() + wait.min(every)
}

async fn schedule(daemon: Arc<Daemon>, instance: String, every: Duration) {
    let mut stopping = daemon.stopping();
    let mut due = first_due(&daemon, &instance, every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stopping.changed() => return,
        }
        match daemon.request_run(&instance, Trigger::Schedule) {
            Ok(Admission::Queued(_)) => {}
            Ok(Admission::InFlight(run)) => {
                tracing::info!(instance, run = %run, "scheduled run skipped: the last one is still in flight")
            }
            Err(AdmitError::ShuttingDown) => return,
            Err(e) => tracing::error!(instance, "scheduled run not started: {e}"),
        }
        // Counted from when this one was asked for, so a late wake-up (a busy host)
        // never brings the next run closer than the interval.
        due = Instant::now() + every;
    }
}
