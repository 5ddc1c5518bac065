//! `corral serve` in this process: hot swap under load, refused candidates, rollback,
//! schedules, plugins that fail every run, and history across a restart. Everything is
//! observed through the admin API over HTTP.

use corral_e2e::components;
use corral_e2e::daemon::{TestDaemon, kandji_toml, scratch, sha256, variant, write_slowly};
use corral_e2e::expected_kandji_keys;
use corral_simulators::SimServer;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "serve-kandji-token-41c9e2";

async fn kandji_sim(devices: usize) -> (Arc<KandjiSim>, SimServer, String) {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 11,
        devices,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    let api = format!("{}{API_PREFIX}", server.origin());
    (sim, server, api)
}

fn builtin_kandji() -> &'static [u8] {
    corral::builtin::component("kandji").unwrap()
}

/// (entities, relationships) a full Kandji run of this tenant stores.
fn expected_counts(sim: &KandjiSim) -> (u64, u64) {
    let keys = expected_kandji_keys(&sim.data());
    let entity_types = [
        "kandji_account",
        "kandji_device",
        "kandji_user",
        "kandji_app",
    ];
    let count = |entities: bool| {
        keys.iter()
            .filter(|(t, _)| entity_types.contains(&t.as_str()) == entities)
            .map(|(_, k)| k.len() as u64)
            .sum()
    };
    (count(true), count(false))
}

fn assert_succeeded(run: &Value, digest: &str, counts: (u64, u64)) {
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["pluginDigest"], digest, "{run}");
    assert_eq!(
        (&run["counts"]["entities"], &run["counts"]["relationships"]),
        (&Value::from(counts.0), &Value::from(counts.1)),
        "{run}"
    );
    assert_eq!(run["errors"], serde_json::json!([]), "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_runs_while_kandji_is_swapped_twice() {
    let (sim, server, api) = kandji_sim(100).await;
    server.set_delay(Duration::from_millis(20));
    let counts = expected_counts(&sim);
    let dir = scratch("swap");
    let [v1, v2, v3] = ["1", "2", "3"].map(|t| variant(builtin_kandji(), t));
    let [d1, d2, d3] = [&v1, &v2, &v3].map(|v| sha256(v));
    std::fs::write(dir.join("plugins.d/kandji.wasm"), &v1).unwrap();
    let ids: Vec<String> = (1..=20).map(|i| format!("k{i:02}")).collect();
    let instances: String = ids
        .iter()
        .map(|id| kandji_toml(id, &api, TOKEN, ""))
        .collect();
    let d = TestDaemon::start(&dir, "rollback_generations = 1", &instances).await;
    let first = d.plugin("kandji").await;
    assert_eq!(
        (&first["digest"], &first["generation"]),
        (&Value::from(d1.clone()), &Value::from(2)),
        "the dropped-in file overrides the built-in (generation 1)"
    );

    // Ten runs on v1, then v2 arrives in two writes closer together than the debounce.
    let mut batch_a = Vec::new();
    for id in &ids[..10] {
        batch_a.push(d.start_run(id).await);
    }
    let path = d.plugin_file("kandji");
    let slow = v2.clone();
    tokio::task::spawn_blocking(move || write_slowly(&path, &slow, Duration::from_millis(30)))
        .await
        .unwrap();
    let p = d.wait_for_digest("kandji", &d2).await;
    assert_eq!(p["generation"], 3);
    assert_eq!(
        p["lastRejected"],
        Value::Null,
        "the half-written file was never examined"
    );

    // Ten more on v2; then v3, which retires v1 (one previous generation is kept).
    let mut batch_b = Vec::new();
    for id in &ids[10..] {
        batch_b.push(d.start_run(id).await);
    }
    std::fs::write(d.plugin_file("kandji"), &v3).unwrap();
    let p = d.wait_for_digest("kandji", &d3).await;
    assert_eq!(p["generation"], 4);
    assert_eq!(p["previousGenerations"], serde_json::json!([3]));
    let mut a_running = 0;
    for run in &batch_a {
        let (_, r) = d.get(&format!("/runs/{run}")).await;
        a_running += usize::from(r["status"] == "running");
    }
    assert!(a_running > 0, "premise: runs on v1 are still in flight");
    assert_eq!(
        p["drainingGenerations"],
        serde_json::json!([2]),
        "v1 is retired but still running"
    );

    for run in &batch_a {
        assert_succeeded(&d.finished(run).await, &d1, counts);
    }
    // Runs started after the second swap use v3.
    let mut batch_c = Vec::new();
    for id in &ids[..10] {
        batch_c.push(d.start_run(id).await);
    }
    for run in &batch_b {
        assert_succeeded(&d.finished(run).await, &d2, counts);
    }
    for run in &batch_c {
        assert_succeeded(&d.finished(run).await, &d3, counts);
    }
    // v1's last run has ended: the generation is freed.
    d.wait_for("v1 to be freed", || async {
        let p = d.plugin("kandji").await;
        (p["drainingGenerations"] == serde_json::json!([])).then_some(())
    })
    .await;

    // Deleting the file returns to the built-in plugin.
    std::fs::remove_file(d.plugin_file("kandji")).unwrap();
    let p = d.wait_for_digest("kandji", &sha256(builtin_kandji())).await;
    assert_eq!(
        (&p["source"], &p["generation"]),
        (&Value::from("builtin"), &Value::from(5))
    );
    assert_eq!(d.shutdown(Duration::from_secs(5)).await.abandoned, 0);
}
