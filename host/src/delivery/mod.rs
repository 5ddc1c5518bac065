//! What follows a run, the same for `corral run`, `corral demo` and `corral serve`: the
//! local state brought up to date in one transaction, the graph written to `DIR/<id>/`
//! with the change set beside it as `changes.json`, and the alert rules fired
//! on the changes (not on an instance's first run, its baseline). A run whose
//! validation failed has no graph and delivers nothing.

pub mod alerts;
pub mod history;
pub mod jupiterone;
pub mod output;
mod run_dir;
pub mod state;
pub mod sync;

use crate::delivery::state::GraphState;
use crate::net::address::StaticHosts;
use crate::run::RunReport;
use alerts::{AlertRule, Fired};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub use crate::delivery::output::CHANGES_FILE;

pub struct Delivery {
    pub out: PathBuf,
    pub state: GraphState,
    pub alerts: Vec<AlertRule>,
    /// Static host entries, so webhooks resolve as plugin egress does.
    pub hosts: StaticHosts,
}

/// What delivering one run did.
pub struct Delivered {
    pub dest: PathBuf,
    /// The change set's summary: baseline, totals and counts per `_type`.
    pub changes: Value,
    pub alerts: Fired,
}

impl Delivery {
    /// Opens the graph state under `data_dir`.
    pub fn open(
        data_dir: &Path,
        out: PathBuf,
        alerts: Vec<AlertRule>,
        hosts: StaticHosts,
    ) -> anyhow::Result<Self> {
        // A run's graph is spooled beside its state, not in a temp dir that may be memory.
        crate::capabilities::graph::set_spool_dir(data_dir.join("spool"));
        Ok(Delivery {
            out,
            state: GraphState::open(data_dir)?,
            alerts,
            hosts,
        })
    }

    /// Whether `run` of `instance` is already in the graph state (its state and change
    /// set are written in one transaction, so a run is recorded whole or not at all).
    pub fn recorded(&self, instance: &str, run_id: &str) -> anyhow::Result<bool> {
        self.state.has_changes(instance, run_id)
    }

    /// The reader of `instance`'s previous graph its next run gets.
    pub fn previous(
        &self,
        instance: &str,
    ) -> std::sync::Arc<dyn crate::capabilities::graph::PreviousGraph> {
        std::sync::Arc::new(self.state.previous(instance))
    }

    pub async fn deliver(
        &self,
        run_id: &str,
        report: &RunReport,
    ) -> anyhow::Result<Option<Delivered>> {
        if report.validation.is_err() {
            return Ok(None);
        }
        let recorded = self.state.record(run_id, report, !self.alerts.is_empty())?;
        let dest = crate::delivery::output::write_run(&self.out, report, Some(&recorded.document))?;
        // The first run is the baseline: every object in it is "created", and alerting
        // on all of them would bury the changes that matter.
        let fired = if recorded.baseline {
            Fired::default()
        } else {
            alerts::fire(
                &self.alerts,
                &report.instance_id,
                run_id,
                &recorded.changes,
                &self.hosts,
            )
            .await
        };
        Ok(Some(Delivered {
            dest,
            changes: recorded.summary,
            alerts: fired,
        }))
    }
}
