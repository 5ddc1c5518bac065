//! Issue 17's steady state: one Kandji tenant of 5,000 devices (or the first argument),
//! instance set `incremental = "true"`, under Kandji's documented quotas (50 a second,
//! 10,000 an hour, shared in the process). A first run (nothing previous: every device is
//! fetched), then 1% of the devices check in, then a second run; prints each run's
//! requests by kind, wall time and process CPU, and the quota lines of its log.
//!
//! `cargo bench -p corral-e2e --bench incremental [-- DEVICES]`; results go in
//! docs/benchmarks.md. Takes minutes of wall time: the first run is held to the rate.

use corral::config::ConfigValue;
use corral::delivery::Delivery;
use corral::run::{RunReport, resolve_with_policy, run_instance};
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::time::Instant;

const TOKEN: &str = "bench-kandji-token";

fn main() {
    let devices: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(steady_state(devices));
}

async fn steady_state(devices: usize) {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 7,
        devices,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    let dir = corral_e2e::daemon::scratch("bench-incremental");
    let runtime = corral_e2e::runtime();
    let delivery =
        Delivery::open(&dir, dir.join("out"), Vec::new(), runtime.hosts.clone()).unwrap();
    let plugin = runtime.plugin("kandji").await.unwrap();
    let mut inst = corral_e2e::kandji_instance(
        "kandji-steady",
        &format!("{}{API_PREFIX}", server.origin()),
        ConfigValue::Text(TOKEN.into()),
    );
    inst.config
        .insert("incremental".into(), ConfigValue::Text("true".into()));
    let mut expected = None;
    for (n, label) in ["first (full) run", "1% checked in"]
        .into_iter()
        .enumerate()
    {
        if n == 1 {
            let mut data = sim.data_mut();
            for d in data.devices.iter_mut().step_by(100) {
                d["last_check_in"] = serde_json::json!("2031-01-01T00:00:00.000000Z");
            }
        }
        let from = server.requests().len();
        let cpu = corral_e2e::cpu_seconds().unwrap_or(0.0);
        let started = Instant::now();
        let mut r = resolve_with_policy(&inst, plugin.clone(), None).unwrap();
        r.previous = Some(delivery.previous(&r.id));
        r.expected.requests = expected;
        let report = run_instance(&r, runtime.hosts.clone()).await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = corral_e2e::cpu_seconds().unwrap_or(0.0) - cpu;
        print_run(label, &report, &server.requests()[from..], wall, cpu);
        delivery
            .deliver(&format!("run-{n}"), &report)
            .await
            .unwrap();
        expected = Some(report.requests);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn print_run(
    label: &str,
    report: &RunReport,
    requests: &[corral_simulators::LoggedRequest],
    wall: f64,
    cpu: f64,
) {
    let of = |what: &str| requests.iter().filter(|r| r.target.contains(what)).count();
    println!(
        "{label}: {} ({} requests: {} validation, {} list pages, {} details, {} apps), {} objects, {wall:.1} s wall, {cpu:.2} s CPU",
        if report.succeeded() {
            "succeeded"
        } else {
            "FAILED"
        },
        requests.len(),
        requests
            .iter()
            .filter(|r| r.target.ends_with("devices?limit=1"))
            .count(),
        of("devices?offset="),
        of("/details"),
        of("/apps"),
        report.graph.entities().len() + report.graph.relationships().len(),
    );
    for s in report.steps.iter().filter(|s| s.error.is_some()) {
        println!("  step {} failed: {:?}", s.info.id, s.error);
    }
    if let Err(e) = &report.validation {
        println!("  validation failed: {e}");
    }
    for l in report
        .log
        .iter()
        .filter(|l| l.step == "quota" || l.message.contains("is spent"))
    {
        println!("  log [{}] {}: {}", l.level, l.step, l.message);
    }
}
