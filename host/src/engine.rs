//! The wasmtime engine: component model, pooling allocator, epoch interruption.
//!
//! One engine per process. Every component is compiled once against it and every run
//! instantiates from an `InstancePre`, so instantiation is a pool slot and a few
//! pointer writes rather than a compile.

use crate::lock::LockExt;
use anyhow::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::{Config, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The most memory any one instance may ever have; policies ask for less.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Address space reserved per linear memory: all a 32-bit index can reach, so guard
/// pages, not explicit checks, keep accesses in bounds.
const MEMORY_RESERVATION: u64 = 1 << 32;

const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;

/// Sizes of the instance pool.
#[derive(Debug, Clone)]
pub struct PoolSize {
    /// Component instances alive at once (one per running step, validate or manifest read).
    pub instances: u32,
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize { instances: 256 }
    }
}

impl PoolSize {
    /// The most instances a pool is built for: each reserves 8 GiB (two memories of
    /// 4 GiB) of address space, not memory, so 4,096 take 32 TiB of the 128 TiB there is.
    pub const MAX_INSTANCES: u32 = 4096;

    /// A pool for `runs` runs executing at once: one instance per run's current step,
    /// and room for validations and manifest reads beside them. Never below the default,
    /// never above [`PoolSize::MAX_INSTANCES`] (more runs then wait for a slot).
    pub fn for_runs(runs: usize) -> Self {
        let wanted = runs.saturating_add(64);
        let instances = u32::try_from(wanted)
            .unwrap_or(u32::MAX)
            .clamp(PoolSize::default().instances, Self::MAX_INSTANCES);
        PoolSize { instances }
    }
}

/// Builds the process's engine and starts its epoch ticker.
pub fn build_engine(pool: &PoolSize) -> Result<Engine> {
    let mut pooling = PoolingAllocationConfig::new();
    // A Rust component is a handful of core instances (the program plus shims), one
    // memory and a few tables.
    // The totals are the per-component maxima times the instances, so admission by
    // instance count (`InstanceGate`) can never run into another pool limit first.
    pooling
        .total_component_instances(pool.instances)
        .total_core_instances(pool.instances * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(pool.instances * MEMORIES_PER_COMPONENT)
        .total_tables(pool.instances * TABLES_PER_COMPONENT)
        .total_stacks(pool.instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(MAX_MEMORY_BYTES)
        .table_elements(100_000);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Plain synchronous exports: no component-model-async tasks, so calls into the
        // guest are cheaper.
        .concurrency_support(false)
        // Each memory reserves the whole 32-bit index space (address space, not memory;
        // growth stays capped at `MAX_MEMORY_BYTES` by the pool). Less would make
        // cranelift bounds-check every load and store explicitly: about a fifth more CPU
        // in the guest's code (docs/benchmarks.md). 4,096 instances take 32 TiB of the
        // 128 TiB a process has.
        .memory_reservation(MEMORY_RESERVATION)
        .memory_guard_size(32 << 20)
        .max_wasm_stack(1 << 20)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    // `CORRAL_PROFILE=perfmap` names the guests' compiled functions for `perf report`
    // (wasmtime writes /tmp/perf-PID.map); profiling is how the connectors' CPU is read.
    if std::env::var_os("CORRAL_PROFILE").is_some_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    let gate = register_gate(&engine, pool.instances);
    start_epoch_ticker(&engine, gate.clock);
    Ok(engine)
}

/// Admission to an engine's instance pool. Every instantiation waits for a permit
/// instead of failing when the pool is full, and one run may hold at most
/// [`InstanceGate::per_run`] of them, so a plugin with many steps cannot starve others.
#[derive(Clone)]
pub struct InstanceGate {
    pub permits: Arc<Semaphore>,
    pub per_run: usize,
    /// Whether any of the engine's guests is executing wasm (the ticker's switch).
    pub clock: Arc<EpochClock>,
}

/// How many of an engine's guests are executing wasm code right now. The epoch only
/// needs to advance while some are: a guest waiting in a host call is bounded by the
/// run's deadline timer, not by ticks. So the ticker sleeps when none are (a run
/// waiting on a slow provider, an idle `corral serve`) instead of waking 100 times a
/// second. Counted per store by `StepCtx::note_call` from wasmtime's call hook.
#[derive(Default)]
pub struct EpochClock {
    running: AtomicUsize,
    ticker: OnceLock<Thread>,
}

impl EpochClock {
    /// A guest entered (or returned to) wasm code.
    pub fn enter(&self) {
        if self.running.fetch_add(1, Ordering::SeqCst) == 0
            && let Some(t) = self.ticker.get()
        {
            t.unpark();
        }
    }

    /// `n` guests left wasm code (a host call, a return, or a store dropped mid-call).
    pub fn leave(&self, n: usize) {
        let _ = self
            .running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                Some(r.saturating_sub(n))
            });
    }

    fn idle(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 0
    }
}

impl InstanceGate {
    fn new(instances: u32) -> Self {
        let instances = (instances as usize).clamp(1, Semaphore::MAX_PERMITS);
        InstanceGate {
            permits: Arc::new(Semaphore::new(instances)),
            // A quarter of the pool: at least four runs always make progress together.
            per_run: (instances / 4).max(1),
            clock: Arc::default(),
        }
    }
}

static GATES: Mutex<Vec<(EngineWeak, InstanceGate)>> = Mutex::new(Vec::new());

fn register_gate(engine: &Engine, instances: u32) -> InstanceGate {
    let mut gates = GATES.locked();
    gates.retain(|(w, _)| w.upgrade().is_some());
    let gate = InstanceGate::new(instances);
    gates.push((engine.weak(), gate.clone()));
    gate
}

/// The gate of `engine`'s pool (an engine not built by [`build_engine`] gets a gate of
/// one, so it can never over-commit a pool it does not know).
pub fn instance_gate(engine: &Engine) -> InstanceGate {
    let mut gates = GATES.locked();
    let found = gates
        .iter()
        .find(|(w, _)| w.upgrade().is_some_and(|e| Engine::same(&e, engine)))
        .map(|(_, g)| g.clone());
    found.unwrap_or_else(|| {
        let gate = InstanceGate::new(1);
        gates.push((engine.weak(), gate.clone()));
        gate
    })
}

/// Advances the epoch every [`EPOCH_TICK`] while a guest executes wasm, until the
/// engine is dropped (checked at least once a second).
fn start_epoch_ticker(engine: &Engine, clock: Arc<EpochClock>) {
    let weak = engine.weak();
    let ticker_clock = clock.clone();
    let thread = std::thread::Builder::new()
        .name("corral-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                drop(engine);
                if ticker_clock.idle() {
                    // `enter` unparks; a wake-up before this park is not lost.
                    std::thread::park_timeout(Duration::from_secs(1));
                    continue;
                }
                std::thread::sleep(EPOCH_TICK);
                if let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                }
            }
        })
        .expect("spawning the epoch thread");
    let _ = clock.ticker.set(thread.thread().clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_follows_the_runs_it_serves_within_bounds() {
        assert_eq!(PoolSize::for_runs(0).instances, 256);
        assert_eq!(PoolSize::for_runs(32).instances, 256);
        assert_eq!(PoolSize::for_runs(1000).instances, 1064);
        assert_eq!(
            PoolSize::for_runs(usize::MAX).instances,
            PoolSize::MAX_INSTANCES
        );
    }

    #[test]
    fn the_clock_counts_guests_in_wasm_and_never_goes_below_zero() {
        let engine = build_engine(&PoolSize { instances: 4 }).unwrap();
        let clock = instance_gate(&engine).clock;
        assert!(clock.idle());
        clock.enter();
        clock.enter();
        clock.leave(1);
        assert!(!clock.idle());
        // A dropped store gives back what it held, and more is never taken.
        clock.leave(5);
        assert!(clock.idle());
        clock.enter();
        assert!(!clock.idle());
        clock.leave(1);
        assert!(clock.idle());
    }
}
