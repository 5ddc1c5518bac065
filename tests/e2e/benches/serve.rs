//! `corral serve` measured, one scenario per process (peak RSS is per process):
//!
//! - `swap`: time from a component being written into `plugin_dir` to the new generation
//!   serving, and to the first run on it starting (default 300 ms debounce);
//! - `throughput`: runs per second sustained with 4 copies of each demo connector, each
//!   re-run as soon as it ends, against the demo simulators;
//! - `scheduled`: peak RSS with 100 demo instances scheduled (25 per connector);
//! - `inflight`: memory per run with 1,000 Kandji runs in flight at once against a
//!   simulator that answers each request after 2 s.
//!
//! `cargo bench -p corral-e2e --bench serve -- swap|throughput|scheduled|inflight`; results go in
//! docs/benchmarks.md.

use corral::cli::demo::DemoTenants;
use corral::config::CorralConfig;
use corral::delivery::history::RunStatus;
use corral::serve::Daemon;
use corral::serve::runs::{Admission, Trigger};
use corral_e2e::daemon::{demo_instances_toml, scratch, sha256, variant};
use corral_simulators::kandji::{self, KandjiConfig, KandjiSim};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn daemon(
    name: &str,
    serve: &str,
    instances: &str,
) -> (corral::serve::DaemonHandle, Arc<Daemon>) {
    let dir = scratch(name);
    let text = format!(
        "plugin_dir = \"plugins.d\"\ndata_dir = \"state\"\n[serve]\n{serve}\n\n{instances}"
    );
    let path = dir.join("corral.toml");
    std::fs::write(&path, text).unwrap();
    let config = CorralConfig::load(&path).unwrap();
    let handle = corral::serve::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let d = handle.daemon.clone();
    (handle, d)
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn ended(d: &Daemon, run: &str) -> bool {
    let r = d.history.get(run).unwrap().unwrap();
    !matches!(r.status, RunStatus::Queued | RunStatus::Running)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn swap() {
    let tenants = DemoTenants::start(20).await.unwrap();
    let dir = scratch("bench-swap-policies");
    let instances = demo_instances_toml(&tenants, 1, None, &dir);
    let (handle, d) = daemon("bench-swap", "", &instances).await;
    let plugin_file = handle
        .daemon
        .config
        .plugin_dir
        .clone()
        .unwrap()
        .join("kandji.wasm");
    let builtin = corral::plugin::builtin::component("kandji").unwrap();
    let (mut installed, mut started) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let bytes = variant(builtin, &format!("bench-{i}"));
        let digest = sha256(&bytes);
        let t0 = Instant::now();
        std::fs::write(&plugin_file, &bytes).unwrap();
        wait_until(|| {
            d.registry
                .current("kandji")
                .is_some_and(|g| g.plugin.digest == digest)
        })
        .await;
        installed.push(t0.elapsed());
        let Ok(Admission::Queued(run)) = d.request_run("kandji-demo-1", Trigger::Api) else {
            panic!("run not admitted")
        };
        wait_until(|| {
            d.history
                .get(&run)
                .unwrap()
                .unwrap()
                .started_at_ms
                .is_some()
        })
        .await;
        started.push(t0.elapsed());
        let r = d.history.get(&run).unwrap().unwrap();
        assert_eq!(r.plugin_digest.as_deref(), Some(digest.as_str()));
        wait_until(|| ended(&d, &run)).await;
    }
    for (what, mut times) in [
        ("new generation serving", installed),
        ("first run on it started", started),
    ] {
        times.sort();
        println!(
            "{what}: p50 {:.0} ms, min {:.0} ms, max {:.0} ms (10 swaps, debounce 300 ms)",
            ms(times[5]),
            ms(times[0]),
            ms(times[9])
        );
    }
    handle.shutdown(Duration::from_secs(30)).await;
}

async fn throughput() {
    let tenants = DemoTenants::start(20).await.unwrap();
    let dir = scratch("bench-throughput-policies");
    let instances = demo_instances_toml(&tenants, 4, None, &dir);
    let (handle, d) = daemon("bench-throughput", "", &instances).await;
    let ids: Vec<String> = d.config.instances.iter().map(|i| i.id.clone()).collect();
    let window = Duration::from_secs(60);
    let started = Instant::now();
    let mut runs = Vec::new();
    while started.elapsed() < window {
        for id in &ids {
            if let Ok(Admission::Queued(run)) = d.request_run(id, Trigger::Api) {
                runs.push(run);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Runs the window saw finish: the sustained rate, whatever a shared quota keeps
    // queued past it (the demo's CircleCI declares one for all its instances).
    let window_secs = started.elapsed().as_secs_f64();
    // Per plugin: runs, and the requests they made (against its provider's quota).
    let mut within: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for run in runs.iter().filter(|r| ended(&d, r)) {
        let record = d.history.get(run).unwrap().unwrap();
        let entry = within
            .entry(record.plugin_id.unwrap_or_default())
            .or_default();
        entry.0 += 1;
        entry.1 += record.counts.map_or(0, |c| c.requests);
    }
    let done: usize = within.values().map(|(runs, _)| runs).sum();
    println!(
        "finished within the {window_secs:.1} s window: {done} runs, {:.2} runs/s; by plugin (runs, requests) {within:?}",
        done as f64 / window_secs
    );
    wait_until(|| d.runs_in_flight() == 0).await;
    let elapsed = started.elapsed();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    let mut requests = 0;
    for run in &runs {
        let r = d.history.get(run).unwrap().unwrap();
        *by_status.entry(r.status.as_str()).or_default() += 1;
        requests += r.counts.map_or(0, |c| c.requests);
    }
    println!(
        "all {} runs in {:.1} s: {:.2} runs/s, {:.0} provider requests/s; by status {by_status:?}",
        runs.len(),
        elapsed.as_secs_f64(),
        runs.len() as f64 / elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    println!(
        "peak RSS: {} MiB",
        corral_e2e::peak_rss_kib().unwrap_or(0) / 1024
    );
    handle.shutdown(Duration::from_secs(60)).await;
}

async fn scheduled() {
    let tenants = DemoTenants::start(200).await.unwrap();
    let dir = scratch("bench-scheduled-policies");
    let instances = demo_instances_toml(&tenants, 25, Some(3600), &dir);
    let started = Instant::now();
    let (handle, d) = daemon("bench-scheduled", "", &instances).await;
    // Every instance is due at start (no history): 100 runs, 32 at a time.
    wait_until(|| {
        d.history
            .recent(None, 200)
            .unwrap()
            .iter()
            .filter(|r| !matches!(r.status, RunStatus::Queued | RunStatus::Running))
            .count()
            >= 100
    })
    .await;
    let statuses: BTreeMap<&str, usize> =
        d.history
            .recent(None, 200)
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r.status.as_str()).or_default() += 1;
                m
            });
    println!(
        "100 scheduled instances, first round done in {:.1} s; by status {statuses:?}",
        started.elapsed().as_secs_f64()
    );
    println!(
        "peak RSS: {} MiB",
        corral_e2e::peak_rss_kib().unwrap_or(0) / 1024
    );
    handle.shutdown(Duration::from_secs(60)).await;
}

/// Resident memory of this process now, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn inflight() {
    const RUNS: usize = 1000;
    const DELAY: Duration = Duration::from_secs(2);
    let config = KandjiConfig {
        devices: 5,
        ..KandjiConfig::default()
    };
    let sim = KandjiSim::new(&config).start(0).await.unwrap();
    sim.set_delay(DELAY);
    let dir = scratch("bench-inflight-policies");
    let policy = dir.join("kandji-policy.json");
    std::fs::write(&policy, corral::cli::demo::KANDJI_DEMO_POLICY).unwrap();
    let instances: String = (1..=RUNS)
        .map(|n| {
            format!(
                "[[instance]]\nid = \"kandji-{n}\"\nplugin = \"kandji\"\npolicy = {:?}\n\
                 [instance.config]\napiUrl = \"{}{}\"\naccessToken = {:?}\n\n",
                policy.display().to_string(),
                sim.origin(),
                kandji::API_PREFIX,
                config.token
            )
        })
        .collect();
    let serve = format!("max_concurrent_runs = {RUNS}");
    let (handle, d) = daemon("bench-inflight", &serve, &instances).await;
    let idle = rss_kib();
    let cpu0 = corral_e2e::cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let ids: Vec<String> = d.config.instances.iter().map(|i| i.id.clone()).collect();
    let runs: Vec<String> = ids
        .iter()
        .map(|id| match d.request_run(id, Trigger::Api) {
            Ok(Admission::Queued(run)) => run,
            _ => panic!("run for {id} not admitted"),
        })
        .collect();
    // Every run started and waiting on its provider (the first request is 2 s away).
    wait_until(|| {
        runs.iter()
            .all(|run| d.history.get(run).unwrap().unwrap().started_at_ms.is_some())
    })
    .await;
    tokio::time::sleep(DELAY / 2).await;
    let mut peak_in_flight = rss_kib();
    let all_started = started.elapsed();
    while d.runs_in_flight() > 0 {
        peak_in_flight = peak_in_flight.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let cpu = corral_e2e::cpu_seconds().unwrap_or(0.0) - cpu0;
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for run in &runs {
        let r = d.history.get(run).unwrap().unwrap();
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let per_run = (peak_in_flight.saturating_sub(idle)) as f64 / 1024.0 / RUNS as f64;
    println!(
        "{RUNS} Kandji runs (5 devices, {} ms per response): all started in {:.1} s, done in {:.1} s; by status {by_status:?}",
        DELAY.as_millis(),
        all_started.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "RSS idle {} MiB, peak with the runs in flight {} MiB: {per_run:.2} MiB per run in flight; {:.1} s CPU (simulator included), {} requests served",
        idle / 1024,
        peak_in_flight / 1024,
        cpu,
        sim.requests().len()
    );
    handle.shutdown(Duration::from_secs(60)).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = which.is_empty();
    let wants = |name: &str| all || which.iter().any(|w| w == name);
    rt.block_on(async {
        if wants("swap") {
            swap().await;
        }
        if wants("throughput") {
            throughput().await;
        }
        if wants("scheduled") {
            scheduled().await;
        }
        if wants("inflight") {
            inflight().await;
        }
    });
}
