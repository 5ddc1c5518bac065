//! One-shot runs for `corral run` and `corral demo`: the instances run concurrently, each
//! recorded in the run history (trigger `cli`) so `corral serve` and a later `corral run`
//! see it, delivered ([`crate::delivery`]: output, graph state, `changes.json`, alerts)
//! and summarized on the console; with a JupiterOne target, uploaded as it runs.

use crate::capabilities::log::now_ms;
use crate::delivery::Delivery;
use crate::delivery::history::{History, Outcome, RunPlugin};
use crate::delivery::jupiterone::JupiterOne;
use crate::delivery::output;
use crate::delivery::sync::{self, Synced};
use crate::plugin::runtime::Runtime;
use crate::run::{self, ResolvedInstance, RunReport};
use corral_core::text::escape_lines;
use std::process::ExitCode;

/// Where a batch of runs is uploaded: the client and, per instance (in order), the
/// JupiterOne integration instance.
pub struct SyncTarget {
    pub client: JupiterOne,
    pub integration_instance_ids: Vec<String>,
}

/// One run's report and what became of it.
pub struct Finished {
    pub run_id: String,
    pub report: RunReport,
    pub synced: Option<anyhow::Result<Synced>>,
}

/// Runs `instances` (each given its previous graph and expected request count),
/// records, delivers and prints each; exit 0 only when every run, delivery and upload
/// succeeded.
pub async fn run_and_report(
    rt: &Runtime,
    instances: &mut [ResolvedInstance],
    history: &History,
    delivery: &Delivery,
    target: Option<&SyncTarget>,
) -> anyhow::Result<ExitCode> {
    for r in instances.iter_mut() {
        r.previous = Some(delivery.previous(&r.id));
        r.expected = history.expected(&r.id).unwrap_or_default();
    }
    let instances = &*instances;
    let finished = run_recorded(rt, instances, history, target).await?;
    // The guests and their key indexes are gone: their pages go back before delivery.
    crate::malloc::release_freed();
    let mut ok = true;
    for f in &finished {
        ok &= report_one(delivery, history, f).await;
    }
    if finished.len() > 1 {
        let reports: Vec<&RunReport> = finished.iter().map(|f| &f.report).collect();
        print!("\n{}", escape_lines(&output::summary_table(&reports)));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Queues every run before the first starts, so a killed process leaves each one
/// findable (and marked failed at the next start).
async fn run_recorded(
    rt: &Runtime,
    instances: &[ResolvedInstance],
    history: &History,
    target: Option<&SyncTarget>,
) -> anyhow::Result<Vec<Finished>> {
    let mut run_ids = Vec::new();
    for inst in instances {
        let id = history.queue(&inst.id, "cli", now_ms())?;
        let m = &inst.plugin.manifest;
        let plugin = RunPlugin {
            id: &m.id,
            version: &m.version,
            digest: &inst.plugin.digest,
            generation: 0,
        };
        history.start(&id, &plugin, now_ms())?;
        run_ids.push(id);
    }
    let runs = instances.iter().enumerate().map(|(n, inst)| async move {
        let hosts = rt.hosts.clone();
        match target {
            None => (run::run_instance(inst, hosts).await, None),
            Some(t) => {
                let iid = &t.integration_instance_ids[n];
                let (report, synced) = sync::run_and_sync(inst, hosts, &t.client, iid).await;
                (report, Some(synced))
            }
        }
    });
    let results = futures::future::join_all(runs).await;
    Ok(run_ids
        .into_iter()
        .zip(results)
        .map(|(run_id, (report, synced))| Finished {
            run_id,
            report,
            synced,
        })
        .collect())
}

/// Delivers, records the outcome, prints; true when all of it succeeded.
async fn report_one(delivery: &Delivery, history: &History, f: &Finished) -> bool {
    let mut outcome = Outcome::of(&f.report);
    let delivered = delivery.deliver(&f.run_id, &f.report).await;
    let dest = match &delivered {
        Ok(Some(d)) => Some(d.dest.clone()),
        _ => None,
    };
    print!(
        "{}",
        escape_lines(&output::console_summary(&f.report, dest.as_deref()))
    );
    let mut ok = f.report.succeeded();
    match delivered {
        Ok(Some(d)) => {
            print!(
                "{}",
                escape_lines(&crate::changes::console_summary(&d.changes))
            );
            for failure in d.alerts.failed {
                println!("  alert not delivered: {failure}");
                outcome.errors.push(failure);
            }
        }
        Ok(None) => {}
        Err(e) => {
            println!("  delivering the graph FAILED: {e:#}");
            outcome.errors.push(format!("delivering the graph: {e:#}"));
            outcome.status = crate::delivery::history::RunStatus::Failed;
            ok = false;
        }
    }
    match &f.synced {
        Some(Ok(s)) => println!("  {}", s.describe()),
        Some(Err(e)) => {
            println!(
                "  sync FAILED: {}",
                corral_core::text::escape_controls(&format!("{e:#}"))
            );
            outcome.errors.push(format!("sync: {e:#}"));
            ok = false;
        }
        None => {}
    }
    if let Err(e) = history.finish(
        &f.run_id,
        outcome.status,
        outcome.counts.as_ref(),
        &outcome.errors,
        now_ms(),
    ) {
        println!("  recording the run FAILED: {e}");
        ok = false;
    }
    ok
}
