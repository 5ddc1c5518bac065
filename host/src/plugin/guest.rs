//! One guest instance of a plugin: a store with the run's context, its memory limit and
//! deadline, a slot in the engine's pool, and the connector's functions; `guest_call!`
//! runs one export in a fresh instance and turns a trap into the reason a person reads
//! (the memory limit, the wall clock, the guest's own fault). The manifest is read this
//! way, in an instance with nothing granted.

use super::wit::connector::{Connector, GuestPre};
use crate::capabilities::lift;
use crate::capabilities::log::clip_redacted;
use crate::capabilities::{Event, RunContext, RunStats, StepCtx};
use crate::engine::instance_gate;
use crate::net::address::StaticHosts;
use crate::policy::{Grant, Policy};
use crate::secrets::Secrets;
use corral_core::manifest::Manifest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap, UpdateDeadline};

/// Budget for reading a manifest: it must not reach out, so it has no reason to be slow.
const MANIFEST_BUDGET: Duration = Duration::from_secs(5);
const MANIFEST_MEMORY_MIB: u64 = 64;

/// One wasm instance with its store, and its place in the engine's pool (released
/// after the store, declared last so it drops last).
pub struct GuestInstance {
    pub store: Store<StepCtx>,
    pub plugin: Connector,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl GuestInstance {
    pub async fn new(pre: &GuestPre, run: &Arc<RunContext>, step: &str) -> Result<Self, String> {
        // Waits for room in the pool rather than failing when other runs fill it, but
        // no longer than the run's own deadline.
        let gate = instance_gate(pre.engine());
        let slot = match tokio::time::timeout_at(run.deadline.into(), gate.permits.acquire_owned())
            .await
        {
            Err(_) => return Err(wall_clock_hit(run, step)),
            Ok(Err(_)) => return Err("the instance pool is closed".to_string()),
            Ok(Ok(slot)) => slot,
        };
        let mut ctx = StepCtx::new(run.clone(), step);
        ctx.count_calls_on(gate.clock);
        let mut store = Store::new(pre.engine(), ctx);
        store.limiter(|ctx| &mut ctx.limiter);
        store.call_hook(|mut ctx, hook| {
            ctx.data_mut().note_call(hook);
            Ok(())
        });
        // What one host call may copy out of the guest: no more than its memory could
        // hold unaliased (the checks in `capabilities::lift` refuse with a reason first).
        let memory = run.grant.limits.memory_mib.saturating_mul(1 << 20);
        store.set_hostcall_fuel(usize::try_from(memory).unwrap_or(usize::MAX));
        // A busy guest gives its worker thread back every epoch tick, so it cannot
        // stall other runs (or the host's own tasks) on this runtime; past the run's
        // deadline the tick traps instead.
        let deadline = run.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        // A component's start function runs here: the run's deadline bounds it as it
        // bounds the calls (a guest parked in a host wait never reaches an epoch tick).
        let plugin = tokio::time::timeout_at(run.deadline.into(), pre.instantiate(&mut store))
            .await
            .map_err(|_| wall_clock_hit(run, step))?
            .map_err(|e| clip_redacted(run, &format!("cannot instantiate: {e:#}"), 2000))?;
        Ok(GuestInstance {
            store,
            plugin,
            _slot: slot,
        })
    }

    /// A clear reason for a trap: the memory cap, the deadline, or the guest's own fault.
    pub fn explain(&self, e: &wasmtime::Error, run: &RunContext) -> String {
        let ctx = self.store.data();
        ctx.drain_stdio();
        if ctx.limiter.hit {
            let rule = format!(
                "memory limit of {} MiB reached",
                run.grant.limits.memory_mib
            );
            return limit_hit(run, &ctx.step, "memoryMiB", rule);
        }
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return wall_clock_hit(run, &ctx.step);
        }
        clip_redacted(run, &format!("guest trapped: {e:#}"), 2000)
    }
}

/// Records a limit hit (counted in `summary.json`, logged) and returns its message.
pub fn limit_hit(run: &RunContext, step: &str, limit: &str, rule: String) -> String {
    let event = Event {
        step: step.to_string(),
        action: "limit".into(),
        resource: limit.to_string(),
        rule: rule.clone(),
    };
    RunStats::record(&run.stats.limit_hits, event);
    run.log.host(run, step, "error", &rule);
    rule
}

pub fn wall_clock_hit(run: &RunContext, step: &str) -> String {
    let rule = format!(
        "wall-clock limit of {} s reached",
        run.grant.limits.timeout_seconds
    );
    limit_hit(run, step, "timeoutSeconds", rule)
}

/// Runs `call` against a fresh instance, bounded by the run's deadline.
macro_rules! guest_call {
    ($pre:expr, $run:expr, $step:expr, |$plugin:ident, $store:ident| $call:expr) => {{
        let run: &std::sync::Arc<$crate::capabilities::RunContext> = $run;
        match $crate::plugin::guest::GuestInstance::new($pre, run, $step).await {
            Err(e) => Err(e),
            Ok(mut g) => {
                let remaining = run
                    .deadline
                    .saturating_duration_since(std::time::Instant::now());
                let outcome = {
                    let $plugin = &g.plugin;
                    let $store = &mut g.store;
                    tokio::time::timeout(remaining + std::time::Duration::from_millis(100), $call)
                        .await
                };
                let result = match outcome {
                    Err(_) => Err($crate::plugin::guest::wall_clock_hit(
                        run,
                        &g.store.data().step,
                    )),
                    Ok(Err(e)) => Err(g.explain(&e, run)),
                    Ok(Ok(v)) => Ok(v),
                };
                g.store.data().drain_stdio();
                result
            }
        }
    }};
}

pub(crate) use guest_call;

/// Calls the plugin's `manifest` export in an instance with nothing granted. A manifest
/// over the caps of `corral_core::manifest::caps` is refused before it is copied
/// (`capabilities::lift::manifest`).
pub async fn read_manifest(pre: &GuestPre) -> anyhow::Result<Manifest> {
    let mut grant = Grant::new(Policy::nothing("no grant (manifest read)"), None);
    grant.limits.memory_mib = MANIFEST_MEMORY_MIB;
    grant.limits.timeout_seconds = MANIFEST_BUDGET.as_secs();
    let run = Arc::new(RunContext::new(
        "manifest",
        "manifest",
        grant,
        Secrets::default(),
        BTreeMap::new(),
        BTreeSet::new(),
        StaticHosts::default(),
    ));
    let out = guest_call!(pre, &run, "manifest", |p, s| lift::manifest(p.manifest, s));
    out.and_then(|m| m).map_err(|e| anyhow::anyhow!(e))
}
