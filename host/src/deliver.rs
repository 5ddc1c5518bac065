//! What follows a run, the same for `corral run`, `corral demo` and `corral serve`: the
//! graph written to `DIR/<id>/`, the local state brought up to date in one transaction,
//! the change set written beside the graph as `changes.json`, and the alert rules fired
//! on the changes (not on an instance's first run, its baseline). A run whose
//! validation failed has no graph and delivers nothing.

use crate::alerts::{self, AlertRule, Fired};
use crate::capabilities::address::StaticHosts;
use crate::run::RunReport;
use crate::state::GraphState;
use anyhow::Context as _;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const CHANGES_FILE: &str = "changes.json";

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
    /// The `changes.json` document.
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
        Ok(Delivery {
            out,
            state: GraphState::open(data_dir)?,
            alerts,
            hosts,
        })
    }

    pub async fn deliver(
        &self,
        run_id: &str,
        report: &RunReport,
    ) -> anyhow::Result<Option<Delivered>> {
        if report.validation.is_err() {
            return Ok(None);
        }
        let dest = crate::output::write_run(&self.out, report)?;
        let recorded = self.state.record(run_id, report)?;
        write_atomically(&dest.join(CHANGES_FILE), &recorded.document)?;
        // The first run is the baseline: every object in it is "created", and alerting
        // on all of them would bury the changes that matter.
        let fired = if recorded.document["baseline"] == true {
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
            changes: recorded.document,
            alerts: fired,
        }))
    }
}

fn write_atomically(path: &Path, value: &Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(&tmp, text).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}
