//! The local graph state across runs of the Kandji plugin: exact change sets when
//! devices are added, changed and removed; a failed step deletes nothing; alert rules
//! fire their webhook once per matching change.

use corral::changes::ChangeKind;
use corral::config::ConfigValue;
use corral::delivery::alerts::{Action, AlertRule, RawAlert};
use corral::delivery::{CHANGES_FILE, Delivery};
use corral_e2e::*;
use corral_simulators::FaultRule;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim, generate_device};
use corral_simulators::server::{Provider, SimRequest, SimResponse};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "e2e-changes-kandji-token-3e8d";
const SEED: u64 = 23;
const INSTANCE: &str = "kandji-changes";

fn sim(devices: usize) -> Arc<KandjiSim> {
    KandjiSim::new(&KandjiConfig {
        seed: SEED,
        devices,
        token: TOKEN.into(),
    })
}

/// What delivering a run did, with the `changes.json` it wrote.
struct Delivered {
    changes: Value,
    dest: std::path::PathBuf,
    alerts: corral::delivery::alerts::Fired,
}

/// Runs the Kandji plugin against `origin` and delivers the run as `run_id`.
async fn run_and_deliver(delivery: &Delivery, origin: &str, run_id: &str) -> Delivered {
    let rt = runtime();
    let inst = kandji_instance(
        INSTANCE,
        &format!("{origin}{API_PREFIX}"),
        ConfigValue::Text(TOKEN.into()),
    );
    let report = run_kandji(&rt, &inst, None).await;
    assert!(report.validation.is_ok(), "{:?}", report.validation);
    let d = delivery
        .deliver(run_id, &report)
        .await
        .unwrap()
        .expect("a graph to deliver");
    let changes: Value =
        serde_json::from_slice(&std::fs::read(d.dest.join(CHANGES_FILE)).unwrap()).unwrap();
    // The console's summary counts what the document lists.
    assert_eq!(d.changes["totals"], changes["totals"]);
    assert_eq!(d.changes["baseline"], changes["baseline"]);
    Delivered {
        changes,
        dest: d.dest,
        alerts: d.alerts,
    }
}

fn delivery(dir: &Path, alerts: Vec<AlertRule>, hosts: HashMap<String, Vec<IpAddr>>) -> Delivery {
    Delivery::open(dir, dir.join("out"), alerts, Arc::new(hosts)).unwrap()
}

/// `changes.json`'s keys of one kind, by type (types without any left out).
fn keys_of(doc: &Value, kind: &str) -> KeysByType {
    let mut out = KeysByType::new();
    for (ty, c) in doc["types"].as_object().unwrap() {
        let keys: BTreeSet<String> = c[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().or(v["_key"].as_str()).unwrap().to_string())
            .collect();
        if !keys.is_empty() {
            out.insert(ty.clone(), keys);
        }
    }
    out
}

/// Per type, the keys in `a` and not in `b`.
fn minus(a: &KeysByType, b: &KeysByType) -> KeysByType {
    a.iter()
        .filter_map(|(t, keys)| {
            let left: BTreeSet<String> = keys
                .difference(b.get(t).unwrap_or(&BTreeSet::new()))
                .cloned()
                .collect();
            (!left.is_empty()).then(|| (t.clone(), left))
        })
        .collect()
}

fn set_encrypted(sim: &KandjiSim, device: &str, encrypted: bool) {
    sim.data_mut().details.get_mut(device).unwrap()["filevault"]["filevault_enabled"] =
        json!(encrypted);
}

fn new_device(sim: &KandjiSim, i: u64, encrypted: bool) -> String {
    let (device, mut details, apps) = generate_device(SEED, i, 5);
    details["filevault"]["filevault_enabled"] = json!(encrypted);
    let id = device["device_id"].as_str().unwrap().to_string();
    sim.data_mut().insert((device, details, apps));
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_changed_and_removed_devices_give_the_exact_change_sets() {
    let sim = sim(16);
    let server = sim.start(0).await.unwrap();
    let dir = daemon::scratch("changes-exact");
    let delivery = delivery(&dir, Vec::new(), HashMap::new());

    let first = run_and_deliver(&delivery, &server.origin(), "run-1").await;
    let before = expected_kandji_keys(&sim.data());
    assert_eq!(first.changes["baseline"], true);
    assert_eq!(keys_of(&first.changes, "created"), before);
    assert_eq!(first.changes["totals"]["deleted"], 0);

    // Between the runs: one device removed, one added, one's FileVault turned off.
    let ids = sim.data().device_ids();
    // A Mac (iOS devices have no FileVault section).
    let changed = ids[1..]
        .iter()
        .find(|id| sim.data().details[*id]["filevault"]["filevault_enabled"].is_boolean())
        .unwrap()
        .clone();
    let was = sim.data().details[&changed]["filevault"]["filevault_enabled"].clone();
    sim.data_mut().remove(&ids[0]);
    let added = new_device(&sim, 900, true);
    set_encrypted(&sim, &changed, !was.as_bool().unwrap());
    let after = expected_kandji_keys(&sim.data());

    let second = run_and_deliver(&delivery, &server.origin(), "run-2").await;
    let doc = &second.changes;
    assert_eq!(doc["baseline"], false);
    assert_eq!(keys_of(doc, "created"), minus(&after, &before));
    assert_eq!(keys_of(doc, "deleted"), minus(&before, &after));
    assert!(keys_of(doc, "created")["kandji_device"].contains(&added));
    assert_eq!(
        keys_of(doc, "deleted")["kandji_device"],
        BTreeSet::from([ids[0].clone()])
    );
    let updated = &doc["types"]["kandji_device"]["updated"];
    assert_eq!(
        *updated,
        json!([{ "_key": changed, "properties": {
            "encrypted": { "before": was, "after": !was.as_bool().unwrap() },
            "filevault.filevaultEnabled": { "before": was, "after": !was.as_bool().unwrap() },
        } }])
    );
    // No other device, and no relationship, changed.
    for (ty, keys) in keys_of(doc, "updated") {
        assert!(
            ty == "kandji_device" || ty == "kandji_app",
            "{ty} updated: {keys:?}"
        );
    }

    // The same document is in changes.json and in the state, for `corral changes`.
    let written: Value =
        serde_json::from_slice(&std::fs::read(second.dest.join(CHANGES_FILE)).unwrap()).unwrap();
    assert_eq!(&written, doc);
    assert_eq!(
        delivery
            .state
            .changes(INSTANCE, Some("run-2"))
            .unwrap()
            .as_ref(),
        Some(doc)
    );
    assert_eq!(
        delivery.state.changes(INSTANCE, None).unwrap().as_ref(),
        Some(doc)
    );
    assert_eq!(
        delivery
            .state
            .changes(INSTANCE, Some("run-1"))
            .unwrap()
            .unwrap(),
        first.changes
    );

    // The state now holds exactly the second run's graph.
    let stored: BTreeSet<String> = delivery
        .state
        .objects(INSTANCE)
        .unwrap()
        .into_keys()
        .collect();
    let expected: BTreeSet<String> = after.values().flatten().cloned().collect();
    assert_eq!(stored, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_between_runs_deletes_nothing_of_its_types() {
    let sim = sim(10);
    let server = sim.start(0).await.unwrap();
    let dir = daemon::scratch("changes-partial");
    let delivery = delivery(&dir, Vec::new(), HashMap::new());
    run_and_deliver(&delivery, &server.origin(), "run-1").await;
    let before = expected_kandji_keys(&sim.data());

    let gone = sim.data().device_ids()[3].clone();
    sim.data_mut().remove(&gone);
    server.add_fault(FaultRule::new("/apps", 403, u32::MAX));
    let second = run_and_deliver(&delivery, &server.origin(), "run-2").await;
    let doc = &second.changes;
    assert_eq!(
        doc["partialTypes"],
        json!(["kandji_app", "kandji_device_has_app"])
    );
    let deleted = keys_of(doc, "deleted");
    // The device went (its step succeeded); its apps and app relationships stay.
    assert_eq!(deleted["kandji_device"], BTreeSet::from([gone.clone()]));
    assert!(!deleted.contains_key("kandji_app") && !deleted.contains_key("kandji_device_has_app"));
    let stored = delivery.state.objects(INSTANCE).unwrap();
    for key in &before["kandji_device_has_app"] {
        assert!(stored.contains_key(key), "{key} kept");
    }

    // Once the step works again, what is really gone is deleted.
    server.clear_faults();
    let third = run_and_deliver(&delivery, &server.origin(), "run-3").await;
    let after = expected_kandji_keys(&sim.data());
    let gone_relationships = minus(&before, &after)
        .remove("kandji_device_has_app")
        .unwrap();
    assert!(gone_relationships.iter().all(|k| k.starts_with(&gone)));
    assert_eq!(
        keys_of(&third.changes, "deleted")["kandji_device_has_app"],
        gone_relationships
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Objects the host refuses (here: a type the operator's policy denies, and the
/// relationships that lose their end with it) make their types partial: the run still
/// succeeds, and the change set deletes nothing of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_objects_make_their_types_partial_and_delete_nothing() {
    const NARROW: &str = r#"{"permissions":[
        {"effect":"ALLOW","actions":["*"],"resources":["*"]},
        {"effect":"DENY","actions":["graph:EmitEntity"],"resources":["type:kandji_app"]}],
        "limits":{"allowPrivateNetworks":true}}"#;
    let sim = sim(8);
    let server = sim.start(0).await.unwrap();
    let dir = daemon::scratch("changes-refused");
    let delivery = delivery(&dir, Vec::new(), HashMap::new());
    run_and_deliver(&delivery, &server.origin(), "run-1").await;
    let before = delivery.state.objects(INSTANCE).unwrap().len();

    let rt = runtime();
    let inst = kandji_instance(
        INSTANCE,
        &format!("{}{API_PREFIX}", server.origin()),
        ConfigValue::Text(TOKEN.into()),
    );
    let report = run_kandji(&rt, &inst, Some(NARROW)).await;
    assert!(report.succeeded(), "refusals alone do not fail the run");
    assert!(!report.rejections.is_empty());
    assert_eq!(
        report.partial_types(),
        ["kandji_app", "kandji_device_has_app"]
    );
    let summary = corral::delivery::output::summary(&report);
    assert_eq!(
        summary["metadata"]["partialDatasets"]["types"],
        json!(["kandji_app", "kandji_device_has_app"])
    );
    let console = corral::delivery::output::console_summary(&report, None);
    assert!(
        console.contains("objects rejected; nothing of kandji_app, kandji_device_has_app is deleted this run (partial)"),
        "{console}"
    );
    let second = delivery.deliver("run-2", &report).await.unwrap().unwrap();
    let deleted = keys_of(&second.changes, "deleted");
    assert!(deleted.is_empty(), "{deleted:?}");
    assert_eq!(delivery.state.objects(INSTANCE).unwrap().len(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A webhook receiver: keeps every body it is sent.
#[derive(Default)]
struct Receiver {
    bodies: Mutex<Vec<Value>>,
}

impl Provider for Receiver {
    fn authorized(&self, _: &SimRequest) -> bool {
        true
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        self.bodies.lock().unwrap().push(body);
        SimResponse::json(200, &json!({ "ok": true }))
    }
}

fn rule(name: &str, webhook: String, allow_private: bool) -> AlertRule {
    AlertRule::new(RawAlert {
        name: name.into(),
        on: vec![ChangeKind::Created],
        instance: None,
        type_glob: Some("kandji_device".into()),
        class: None,
        when: vec!["encrypted = false".into()],
        action: Action::Webhook,
        webhook: Some(webhook),
        allow_private_networks: allow_private,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_fires_its_webhook_once_per_matching_change() {
    let sim = sim(8);
    let server = sim.start(0).await.unwrap();
    let receiver = Arc::new(Receiver::default());
    let hook = corral_simulators::SimServer::start(receiver.clone(), 0)
        .await
        .unwrap();
    let port = hook.addr().port();
    // `hooks.test` resolves to loopback: refused like plugin egress to a private
    // address, unless the rule allows private networks.
    let hosts = HashMap::from([("hooks.test".to_string(), vec![IpAddr::from([127, 0, 0, 1])])]);
    let rules = vec![
        rule(
            "new unencrypted Mac",
            format!("http://hooks.test:{port}/alert"),
            true,
        ),
        rule(
            "same, private refused",
            format!("http://hooks.test:{port}/refused"),
            false,
        ),
    ];
    let dir = daemon::scratch("changes-alerts");
    let delivery = delivery(&dir, rules, hosts);

    let first = run_and_deliver(&delivery, &server.origin(), "run-1").await;
    assert_eq!(first.alerts.matched, 0, "the baseline run fires nothing");

    // Two new devices (one unencrypted), and an existing one turned unencrypted (an
    // update, which the rule does not watch).
    let unencrypted = new_device(&sim, 700, false);
    new_device(&sim, 701, true);
    let existing = sim
        .data()
        .device_ids()
        .into_iter()
        .find(|id| sim.data().details[id]["filevault"]["filevault_enabled"] == true)
        .unwrap();
    set_encrypted(&sim, &existing, false);
    hook.add_fault(FaultRule::new("/alert", 503, 1));
    let second = run_and_deliver(&delivery, &server.origin(), "run-2").await;

    assert_eq!(second.alerts.matched, 2, "one change, two rules");
    assert_eq!(second.alerts.delivered, 1);
    assert_eq!(second.alerts.failed.len(), 1);
    assert!(
        second.alerts.failed[0].contains("same, private refused")
            && second.alerts.failed[0].contains("127.0.0.1"),
        "{:?}",
        second.alerts.failed
    );
    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let b = &bodies[0];
    assert_eq!(b["alert"], "new unencrypted Mac");
    assert_eq!(b["change"], "created");
    assert_eq!(b["instance"], INSTANCE);
    assert_eq!(b["runId"], "run-2");
    assert_eq!(b["_key"], unencrypted.as_str());
    assert_eq!(b["object"]["encrypted"], false);
    assert!(b["object"].get("_rawData").is_none());
    let statuses: Vec<u16> = hook.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200], "the 503 was retried once");
    let _ = std::fs::remove_dir_all(&dir);
}
