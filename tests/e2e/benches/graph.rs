//! Graph delivery measured:
//!
//! - `upload`: a 100,000-object graph (50,000 entities of ~1 KB with `_rawData`, 50,000
//!   relationships) written in the collect layout, then synced from it into the mock
//!   persister over loopback (`corral sync`'s flow): objects/s, MB/s, peak RSS;
//! - `changes`: delivery of a 50,000-object graph (the SQLite state, the change set and
//!   the collect layout): the baseline, a run with nothing changed, and a run with 1%
//!   of the objects added, 1% updated and 1% removed; CPU seconds of each.
//!
//! `cargo bench -p corral-e2e --bench graph -- upload|changes`; results go in
//! docs/benchmarks.md.

use corral::capabilities::graph::{GraphStore, Kind, NewObject};
use corral::config::{ConfigValue, JupiterOneConfig};
use corral::delivery::jupiterone::JupiterOne;
use corral::delivery::state::GraphState;
use corral_e2e::daemon::scratch;
use corral_simulators::jupiterone::{MockPersister, PersisterConfig};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::Instant;

fn entity(i: usize, generation: usize) -> Map<String, Value> {
    let o = json!({
        "_key": format!("bench-device-{i:07}"),
        "_type": "bench_device",
        "_class": "Device",
        "name": format!("device {i}"),
        "displayName": format!("Device {i}"),
        "serial": format!("C02{i:09}"),
        "osVersion": format!("14.{}", generation % 5),
        "encrypted": !i.is_multiple_of(7),
        "lastSeenOn": 1_700_000_000_000u64 + i as u64,
        "_rawData": [{ "name": "default", "rawData": { "id": i, "notes": "n".repeat(600) } }],
    });
    o.as_object().unwrap().clone()
}

fn relationship(i: usize) -> Map<String, Value> {
    let o = json!({
        "_key": format!("bench-account|has|bench-device-{i:07}"),
        "_type": "bench_account_has_device",
        "_class": "HAS",
        "_fromEntityKey": "bench-account",
        "_toEntityKey": format!("bench-device-{i:07}"),
        "displayName": "HAS",
    });
    o.as_object().unwrap().clone()
}

/// A run's graph of entities `range` (every hundredth at `generation`) and as many
/// relationships, spooled as a run stores it.
fn graph(generation: usize, range: std::ops::Range<usize>) -> GraphStore {
    let mut g = GraphStore::default();
    let mut put = |kind: Kind, o: Map<String, Value>| {
        let key = o["_key"].as_str().unwrap().to_string();
        let type_name = o["_type"].as_str().unwrap().to_string();
        g.insert(NewObject {
            kind,
            step: "bench-step",
            type_name: &type_name,
            key: &key,
            stored: &o,
            raw_data: None,
            original: None,
        })
        .unwrap();
    };
    for i in range.clone() {
        let version = if i % 100 == 1 { generation } else { 0 };
        put(Kind::Entity, entity(i, version));
    }
    for i in range {
        put(Kind::Relationship, relationship(i));
    }
    g.seal().unwrap();
    g
}

async fn upload() {
    const N: usize = 50_000;
    let mock = MockPersister::new(PersisterConfig::default());
    let server = mock.start(0).await.unwrap();
    let client = JupiterOne::new(&JupiterOneConfig {
        api_base_url: server.origin(),
        account: mock.config.account.clone(),
        api_key: ConfigValue::Text(mock.config.api_key.clone()),
    })
    .unwrap();
    let dir = scratch("bench-upload");
    corral::delivery::output::write_objects(&dir, &graph(0, 0..N)).unwrap();
    std::fs::write(dir.join("summary.json"), "{}").unwrap();
    let collected = corral::delivery::jupiterone::read_collected(&dir).unwrap();
    let (started, cpu) = (Instant::now(), corral_e2e::cpu_seconds().unwrap_or(0.0));
    let synced = corral::delivery::sync::sync_collected(&client, "bench-integration", collected)
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let cpu = corral_e2e::cpu_seconds().unwrap_or(0.0) - cpu;
    let s = &synced.stats;
    let objects = s.entities + s.relationships;
    println!(
        "upload: {objects} objects, {} batches, {:.1} MB in {took:.2} s ({cpu:.2} s CPU, mock included): {:.0} objects/s, {:.1} MB/s (max {} uploads in flight)",
        s.batches,
        s.bytes as f64 / 1e6,
        objects as f64 / took,
        s.bytes as f64 / 1e6 / took,
        server.max_in_flight()
    );
    assert_eq!(objects as usize, 2 * N);
    if let Some(kib) = corral_e2e::peak_rss_kib() {
        println!("peak RSS {} MiB", kib / 1024);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Delivers `graph` as `corral run` does (state and change set, then the collect
/// layout) and prints what it cost.
fn deliver(state: &GraphState, dir: &std::path::Path, run: &str, graph: &GraphStore) {
    let none = BTreeSet::new();
    let (started, cpu) = (Instant::now(), corral_e2e::cpu_seconds().unwrap_or(0.0));
    let rec = state
        .record_graph("bench", run, graph, &none, false)
        .unwrap();
    let recorded = started.elapsed();
    let out = dir.join(run);
    corral::delivery::output::write_objects(&out, graph).unwrap();
    corral::delivery::output::write_changes(&rec.document, &out.join("changes.json")).unwrap();
    let cpu = corral_e2e::cpu_seconds().unwrap_or(0.0) - cpu;
    let t = &rec.summary["totals"];
    println!(
        "changes: {run}: {} objects ({} created, {} updated, {} deleted): state and change set {:.0} ms, delivered in {:.0} ms, {cpu:.2} s CPU",
        graph.entity_count() + graph.relationship_count(),
        t["created"],
        t["updated"],
        t["deleted"],
        recorded.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0,
    );
}

fn changes() {
    const N: usize = 25_000; // entities; as many relationships: 50,000 objects
    let dir = scratch("bench-changes");
    let state = GraphState::open(&dir).unwrap();
    deliver(&state, &dir, "baseline", &graph(0, 0..N));
    deliver(&state, &dir, "unchanged", &graph(0, 0..N));
    // 1% of the objects gone (the first 250 of each kind), 1% new, 1% of the entities
    // updated (every hundredth has a new osVersion).
    deliver(&state, &dir, "one-percent", &graph(1, N / 100..N + N / 100));
    if let Some(kib) = corral_e2e::peak_rss_kib() {
        println!("peak RSS {} MiB", kib / 1024);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("upload") {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(upload());
    }
    if wants("changes") {
        changes();
    }
}
