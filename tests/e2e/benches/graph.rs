//! Graph delivery measured:
//!
//! - `upload`: a 100,000-object graph (50,000 entities of ~1 KB with `_rawData`, 50,000
//!   relationships) synced into the mock persister over loopback: objects/s and MB/s;
//! - `changes`: change detection on a 50,000-object graph in the SQLite state: the
//!   baseline, then a run with 1% of the objects added, 1% updated and 1% removed
//!   (reading the state, diffing, writing the change set in one transaction).
//!
//! `cargo bench -p corral-e2e --bench graph -- upload|changes`; results go in
//! docs/benchmarks.md.

use corral::changes::StateObject;
use corral::config::{ConfigValue, JupiterOneConfig};
use corral::jupiterone::{Collected, JupiterOne};
use corral::state::GraphState;
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
    let graph = Collected {
        entities: (0..N).map(|i| entity(i, 0)).collect(),
        relationships: (0..N).map(relationship).collect(),
        partial_types: Vec::new(),
    };
    let started = Instant::now();
    let synced = corral::sync::sync_collected(&client, "bench-integration", graph)
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let s = &synced.stats;
    let objects = s.entities + s.relationships;
    println!(
        "upload: {objects} objects, {} batches, {:.1} MB in {took:.2} s: {:.0} objects/s, {:.1} MB/s (max {} uploads in flight)",
        s.batches,
        s.bytes as f64 / 1e6,
        objects as f64 / took,
        s.bytes as f64 / 1e6 / took,
        server.max_in_flight()
    );
    assert_eq!(objects as usize, 2 * N);
}

fn changes() {
    const N: usize = 25_000; // entities; as many relationships: 50,000 objects
    let dir = scratch("bench-changes");
    let state = GraphState::open(&dir).unwrap();
    let objects = |generation: usize, range: std::ops::Range<usize>| -> Vec<StateObject> {
        range
            .clone()
            .map(|i| {
                let version = if i % 100 == 1 { generation } else { 0 };
                StateObject::new(entity(i, version), false)
            })
            .chain(range.map(|i| StateObject::new(relationship(i), true)))
            .collect()
    };
    let none = BTreeSet::new();

    let started = Instant::now();
    let base = state
        .record_objects("bench", "run-1", objects(0, 0..N), &none)
        .unwrap();
    let baseline = started.elapsed();
    assert_eq!(base.document["totals"]["created"], 2 * N);

    // 1% of the objects gone (the first 250 of each kind), 1% new, 1% of entities
    // updated (every hundredth has a new osVersion). First the parts, then the whole.
    let started = Instant::now();
    let previous = state.objects("bench").unwrap();
    let read = started.elapsed();
    let started = Instant::now();
    let diff = corral::changes::diff(&previous, objects(1, N / 100..N + N / 100), &none);
    let diffed = started.elapsed();
    drop(previous);
    let started = Instant::now();
    let rec = state
        .record_objects("bench", "run-2", objects(1, N / 100..N + N / 100), &none)
        .unwrap();
    let changed = started.elapsed();
    let t = &rec.document["totals"];
    println!(
        "changes: {} objects: baseline recorded in {:.0} ms; next run ({} created, {} updated, {} deleted) in {:.0} ms: reading the state {:.0} ms, the diff {:.0} ms ({} changes), the rest writing",
        2 * N,
        baseline.as_secs_f64() * 1000.0,
        t["created"],
        t["updated"],
        t["deleted"],
        changed.as_secs_f64() * 1000.0,
        read.as_secs_f64() * 1000.0,
        diffed.as_secs_f64() * 1000.0,
        diff.changes.len()
    );
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
