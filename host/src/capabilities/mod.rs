//! What a guest can reach, one module per WIT import: `http`, `graph`, `log`, `config`,
//! `kv`. Each module owns its state (in [`RunContext`]), registers its functions under
//! the interface name a WIT version gives it (`add_to_linker`), and passes its own
//! types, shared by every version (the `wit` module says which version has which).
//!
//! Each call arrives on a [`StepCtx`] (one per wasm instance: a step, `validate`, or the
//! manifest read) which points at the run's shared [`RunContext`]: the grant, the
//! secrets, the graph and the counters. Every check against the grant happens in these
//! modules, at the moment the guest asks.

pub mod config;
pub mod graph;
pub mod http;
pub mod kv;
pub mod lift;
pub mod log;

use crate::lock::LockExt;
use crate::net::address::StaticHosts;
use crate::policy::Grant;
use crate::secrets::Secrets;
use graph::{Budget, GraphStore};
use http::HttpCapability;
use log::LogSink;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Largest guest stdout or stderr kept per call, in bytes.
const STDIO_CAPACITY: usize = 64 << 10;

/// Everything one run of one instance shares across its steps.
pub struct RunContext {
    pub instance_id: String,
    pub instance_name: String,
    pub grant: Grant,
    pub secrets: Secrets,
    /// The secrets' redactor, built once per run for the per-object checks.
    pub redactor: crate::secrets::Redactor,
    /// The `config` capability's state: plain values and which fields are secret.
    pub config: config::ConfigState,
    pub http: HttpCapability,
    pub graph: graph::GraphCapability,
    pub log: LogSink,
    /// The run's key/value store (WIT 0.2's `kv`).
    pub kv: kv::KvStore,
    pub stats: RunStats,
    /// When the run's wall-clock budget ends.
    pub deadline: Instant,
}

/// Counters of one run, for `summary.json` and the run log.
#[derive(Default)]
pub struct RunStats {
    pub requests: AtomicU64,
    pub denials: Mutex<Vec<Event>>,
    pub limit_hits: Mutex<Vec<Event>>,
    pub rejections: Mutex<Vec<Event>>,
    pub warnings: AtomicU64,
    /// (step, `_type`) of objects the host refused: partial this run. `None` when the
    /// object had no declared type (garbage, or a type no step declares): then the
    /// step's own types are partial.
    pub partial: Mutex<BTreeSet<(String, Option<String>)>>,
}

/// A denial, limit hit or rejected object: what, and the rule that decided.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub step: String,
    pub action: String,
    pub resource: String,
    pub rule: String,
}

impl RunContext {
    /// A run's context: its grant, secrets and plain config, every capability's state
    /// fresh, the deadline from the grant's `timeoutSeconds`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        name: &str,
        grant: Grant,
        secrets: Secrets,
        config: BTreeMap<String, String>,
        secret_fields: BTreeSet<String>,
        hosts: StaticHosts,
    ) -> RunContext {
        let budget = Budget::from(&grant.limits);
        let now = Instant::now();
        // The policy caps timeoutSeconds; a day is the fallback should a bad value slip by.
        let deadline = now
            .checked_add(Duration::from_secs(grant.limits.timeout_seconds))
            .unwrap_or(now + Duration::from_secs(86_400));
        RunContext {
            instance_id: id.into(),
            instance_name: name.into(),
            http: HttpCapability::new(&grant.limits, hosts),
            grant,
            redactor: secrets.redactor(),
            secrets,
            config: config::ConfigState {
                values: config,
                secret_fields,
            },
            graph: graph::GraphCapability::new(GraphStore::new(budget)),
            log: LogSink::default(),
            kv: Default::default(),
            stats: RunStats::default(),
            deadline,
        }
    }
}

impl RunStats {
    pub fn record(list: &Mutex<Vec<Event>>, event: Event) {
        let mut l = list.locked();
        // Keep the first thousand in full; the count is what matters past that.
        if l.len() < 1000 {
            l.push(event);
        }
    }

    /// Marks what a refused object of `step` would have carried as partial. Only declared
    /// types are kept by name, so the set stays as small as the manifest.
    pub fn mark_partial(&self, step: &str, type_name: Option<String>, declared: &BTreeSet<String>) {
        let type_name = type_name.filter(|t| declared.contains(t));
        let mut partial = self.partial.locked();
        partial.insert((step.to_string(), type_name));
    }

    pub fn count_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The store data of one wasm instance.
pub struct StepCtx {
    pub run: Arc<RunContext>,
    /// The step id, or `validate` / `manifest`.
    pub step: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of stdout and stderr already moved into the run log.
    drained: [std::cell::Cell<usize>; 2],
    /// The grant's answers for this step's emits (`graph::StepCtx::emit_decision`).
    emit_decisions: graph::EmitDecisions,
    /// The engine's count of guests in wasm, and this store's share of it.
    epoch_clock: Option<Arc<crate::engine::EpochClock>>,
    in_wasm: usize,
}

impl StepCtx {
    /// Counts this store in and out of wasm code for the engine's epoch ticker
    /// (wasmtime's call hook: entering wasm, or returning to it from the host, is in).
    pub fn note_call(&mut self, hook: wasmtime::CallHook) {
        let Some(clock) = &self.epoch_clock else {
            return;
        };
        if hook.exiting_host() {
            self.in_wasm += 1;
            clock.enter();
        } else if self.in_wasm > 0 {
            self.in_wasm -= 1;
            clock.leave(1);
        }
    }

    /// Has this store counted by [`StepCtx::note_call`] on `clock`.
    pub fn count_calls_on(&mut self, clock: Arc<crate::engine::EpochClock>) {
        self.epoch_clock = Some(clock);
    }
}

impl Drop for StepCtx {
    /// A store dropped while in wasm (a deadline, a cancelled call) stops counting.
    fn drop(&mut self) {
        if let Some(clock) = &self.epoch_clock {
            clock.leave(self.in_wasm);
        }
    }
}

impl StepCtx {
    /// A context with WASI linked but nothing granted: no files, no environment, no
    /// arguments, no sockets, no name lookups. Stdout and stderr are captured and become
    /// log lines of the instance.
    pub fn new(run: Arc<RunContext>, step: &str) -> Self {
        let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory = run.grant.limits.memory_mib.saturating_mul(1 << 20) as usize;
        StepCtx {
            run,
            step: step.to_string(),
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory),
            stdout,
            stderr,
            drained: Default::default(),
            emit_decisions: Default::default(),
            epoch_clock: None,
            in_wasm: 0,
        }
    }

    /// The instance's resources (open response bodies among them).
    pub fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Moves what the guest printed since the last drain into the run log.
    pub fn drain_stdio(&self) {
        let streams = [("stdout", &self.stdout), ("stderr", &self.stderr)];
        for ((stream, pipe), drained) in streams.into_iter().zip(&self.drained) {
            let all = pipe.contents();
            let bytes = all.get(drained.get()..).unwrap_or_default();
            drained.set(all.len());
            if bytes.is_empty() {
                continue;
            }
            for line in String::from_utf8_lossy(bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                self.run
                    .log
                    .guest_stdio(&self.run, &self.step, stream, line);
            }
        }
    }
}

impl WasiView for StepCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the linear memory of an instance (all its memories together: a component may
/// have more than one) and remembers whether the cap was hit, so a guest that dies of
/// it gets a "memory limit" error rather than a bare trap.
pub struct MemoryLimiter {
    pub max_bytes: usize,
    pub hit: bool,
    used: usize,
}

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            hit: false,
            used: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        let ok = next <= self.max_bytes;
        self.hit |= !ok;
        if ok {
            self.used = next;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! A run and a step to call the capabilities on directly, with no wasm.

    use super::*;
    use crate::net::address::StaticHosts;
    use crate::policy::Policy;
    use crate::secrets::SecretValue;

    /// A run with nothing granted, `config` as its plain fields and `secrets` set.
    pub fn context_with(config: &[(&str, &str)], secrets: &[&str]) -> Arc<RunContext> {
        context_granted(
            Grant::new(Policy::nothing("unit test"), None),
            config,
            secrets,
        )
    }

    /// [`context_with`] under `grant`.
    pub fn context_granted(
        grant: Grant,
        config: &[(&str, &str)],
        secrets: &[&str],
    ) -> Arc<RunContext> {
        let mut values = Secrets::default();
        for name in secrets {
            values.insert(*name, SecretValue::new("unit-secret-value"));
        }
        let mut run = RunContext::new(
            "unit",
            "unit",
            grant,
            values,
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets.iter().map(|s| s.to_string()).collect(),
            StaticHosts::default(),
        );
        run.deadline = Instant::now() + std::time::Duration::from_secs(60);
        Arc::new(run)
    }

    pub fn step(run: &Arc<RunContext>) -> StepCtx {
        StepCtx::new(run.clone(), "unit-step")
    }
}
