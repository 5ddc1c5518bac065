//! Cluster mode measured (issue 16): a `corral serve --cluster` coordinator and N
//! `corral worker` processes (4 slots each) on one `nats-server -js`, with the demo mix
//! of `benches/serve.rs`'s `throughput` (4 copies of each demo connector, each re-run as
//! soon as it ends, 20 Kandji devices).
//!
//! - runs/s sustained over a 30 s window with 1, 2 and 4 workers;
//! - scheduling latency: queued to taken by a worker (the history's `queuedAt` to
//!   `startedAt`), for single runs on an idle cluster and for the runs of the window.
//!
//! `cargo build --release --bin corral && CORRAL_BIN=target/release/corral
//!  cargo bench -p corral-e2e --bench cluster -- 1|2|4 [no-circleci]`; results go in
//! docs/benchmarks.md. (`no-circleci` leaves out CircleCI, whose shared request quota of
//! 1,200 a minute, not corral, bounds the demo mix's full runs.)

use corral::cli::demo::DemoTenants;
use corral_e2e::cluster::{Admin, Nats, Proc, coordinator, worker};
use corral_e2e::daemon::{demo_instances_toml, scratch};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(30);

fn main() {
    let workers: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1);
    let without_circleci = std::env::args().any(|a| a == "no-circleci");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(workers, without_circleci));
}

fn ms(v: &Value) -> Option<i64> {
    // RFC 3339 with milliseconds, UTC: "2026-12-03T01:27:04.327Z".
    let s = v.as_str()?;
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let day: i64 = date.split('-').nth(2)?.parse().ok()?;
    let mut parts = time.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(((day * 24 + h) * 60 + m) * 60_000 + (sec * 1000.0).round() as i64)
}

/// user + system CPU seconds of a process so far (Linux `/proc/<pid>/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state is field 0, utime 11, stime 12 (clock ticks of 1/100 s).
    (ticks(11) + ticks(12)) / 100.0
}

fn latency_ms(run: &Value) -> Option<i64> {
    Some(ms(&run["startedAt"])? - ms(&run["queuedAt"])?)
}

fn percentiles(mut v: Vec<i64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "median {} ms, p95 {} ms, max {} ms ({} runs)",
        at(0.5),
        at(0.95),
        at(1.0),
        v.len()
    )
}

async fn bench(n: usize, without_circleci: bool) {
    let dir = scratch(&format!("bench-cluster-{n}"));
    let nats = Nats::start(&dir);
    let tenants = DemoTenants::start(20).await.unwrap();
    let instances = demo_instances_toml(&tenants, 4, None, &dir);
    let config = |name: &str| {
        let path = dir.join(format!("{name}.toml"));
        let data = dir.join(name);
        std::fs::write(
            &path,
            format!("data_dir = \"{}\"\n\n{instances}", data.display()),
        )
        .unwrap();
        path
    };
    let (coord, base) = coordinator(&config("coordinator"), &nats.url);
    let workers: Vec<Proc> = (1..=n)
        .map(|i| {
            worker(
                &config(&format!("w{i}")),
                &nats.url,
                &format!("w{i}"),
                4,
                &[],
            )
        })
        .collect();
    let admin = Admin {
        base,
        http: reqwest::Client::new(),
    };
    let mut connectors = vec![
        "kandji-demo",
        "sentinelone-demo",
        "runzero-demo",
        "circleci-demo",
    ];
    if without_circleci {
        connectors.pop();
    }
    let ids: Vec<String> = (1..=4)
        .flat_map(|c| connectors.iter().map(move |d| format!("{d}-{c}")))
        .collect();

    // Idle: one run at a time (after one warm-up run per connector compiles its plugin).
    let kinds = connectors.len();
    for id in &ids[..kinds] {
        let run = admin.start_run(id).await;
        admin.finished(&[run], Duration::from_secs(120)).await;
    }
    let mut idle = Vec::new();
    for i in 0..20 {
        let run = admin.start_run(&ids[i % kinds]).await;
        let done = admin
            .finished(std::slice::from_ref(&run), Duration::from_secs(120))
            .await;
        idle.extend(latency_ms(&done[&run]));
    }

    // Sustained: every instance re-run as soon as it ends.
    let cpu = |p: &Proc| cpu_seconds(p.child.id());
    let coord_cpu = cpu(&coord);
    let workers_cpu: f64 = workers.iter().map(cpu).sum();
    let nats_cpu = cpu(&nats.proc);
    let started = Instant::now();
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut all = Vec::new();
    while started.elapsed() < WINDOW {
        let runs: Vec<Value> = admin.runs().await;
        let open: std::collections::BTreeSet<&str> = runs
            .iter()
            .filter(|r| matches!(r["status"].as_str(), Some("queued" | "running")))
            .filter_map(|r| r["runId"].as_str())
            .collect();
        for id in &ids {
            if current.get(id).is_none_or(|r| !open.contains(r.as_str())) {
                let run = admin.start_run(id).await;
                current.insert(id.clone(), run.clone());
                all.push(run);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = admin.finished(&all, Duration::from_secs(300)).await;
    let elapsed = started.elapsed();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for r in done.values() {
        *by_status
            .entry(r["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        *by_worker
            .entry(r["worker"].as_str().unwrap_or("-").to_string())
            .or_default() += 1;
    }
    let secs = elapsed.as_secs_f64();
    let share = |now: f64, before: f64| {
        format!(
            "{:.2} s ({:.0} % of a core)",
            now - before,
            (now - before) / secs * 100.0
        )
    };
    println!("workers: {n} x 4 slots; connectors {connectors:?}");
    println!(
        "CPU over the window: coordinator {}, workers {}, nats-server {}",
        share(cpu(&coord), coord_cpu),
        share(workers.iter().map(cpu).sum(), workers_cpu),
        share(cpu(&nats.proc), nats_cpu)
    );
    println!(
        "sustained: {} runs in {:.1} s: {:.2} runs/s; by status {by_status:?}; by worker {by_worker:?}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64()
    );
    println!("latency idle (queued -> taken): {}", percentiles(idle));
    println!(
        "latency under load (queued -> taken): {}",
        percentiles(done.values().filter_map(latency_ms).collect())
    );
}
