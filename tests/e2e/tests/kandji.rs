//! Kandji in the real host against the simulator.

use corral::config::ConfigValue;
use corral::run::StepStatus;
use corral_e2e::*;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use corral_simulators::{FaultRule, SimServer};
use std::collections::BTreeSet;

const TOKEN: &str = "e2e-kandji-token-7f3a9c";

fn sim(devices: usize) -> std::sync::Arc<KandjiSim> {
    KandjiSim::new(&KandjiConfig {
        seed: 7,
        devices,
        token: TOKEN.into(),
    })
}

fn token() -> ConfigValue {
    ConfigValue::Text(TOKEN.into())
}

/// One run of the Kandji plugin against `server` as instance `id`.
async fn run_against(server: &SimServer, id: &str, token: ConfigValue) -> corral::run::RunReport {
    let rt = runtime();
    let inst = kandji_instance(id, &format!("{}{API_PREFIX}", server.origin()), token);
    run_kandji(&rt, &inst, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_is_exact_across_pagination() {
    let sim = sim(260);
    {
        let data = sim.data();
        assert!(
            data.devices.iter().any(|d| d["user"] == ""),
            "premise: some devices have no user"
        );
        let no_bundle = data
            .apps
            .values()
            .flatten()
            .filter(|a| a["bundle_id"] == "" || a["bundle_id"] == "No value")
            .count();
        assert!(no_bundle > 0, "premise: some apps have no bundle id");
    }
    let server = sim.start(0).await.unwrap();
    let report = run_against(&server, "kandji-e2e", token()).await;

    assert!(
        report.succeeded(),
        "{:?} {:?}",
        report.validation,
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    let expected = expected_kandji_keys(&sim.data());
    assert_eq!(keys_by_type(&report), expected);
    let types: BTreeSet<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "kandji_account",
            "kandji_device",
            "kandji_app",
            "kandji_user",
            "kandji_account_has_device",
            "kandji_device_has_app",
            "kandji_device_has_user",
        ])
    );

    // Issue 12 item 3: the standard properties the data model's classes require, from
    // the provider's fields, on a known device, its user and the account.
    {
        let data = sim.data();
        let d = data
            .devices
            .iter()
            .find(|d| d["user"].is_object() && d["platform"] == "Mac")
            .expect("premise: a Mac with a user");
        let id = d["device_id"].as_str().unwrap();
        let net = &data.details[id]["network"];
        let device = &report.graph.entity(id).expect("the device").object;
        assert_eq!(device["deviceId"], serde_json::json!([id]));
        assert_eq!(
            device["privateIpAddresses"],
            serde_json::json!([net["ip_address"]])
        );
        assert_eq!(
            device["publicIpAddresses"],
            serde_json::json!([net["public_ip"]])
        );
        assert_eq!(
            device["ipv4Addresses"],
            serde_json::json!([net["ip_address"], net["public_ip"]])
        );
        assert_eq!(device["ipv6Addresses"], serde_json::Value::Null);
        assert_eq!(
            device["macAddresses"],
            serde_json::json!([net["mac_address"]])
        );
        assert_eq!(device["hostname"], net["local_hostname"]);
        assert_eq!(device["fqdn"], serde_json::Value::Null);
        assert_eq!(
            (device["osName"].as_str(), device["osType"].as_str()),
            (Some("macOS"), Some("darwin"))
        );
        let uid = d["user"]["id"].as_u64().unwrap();
        let user = &report
            .graph
            .entity(&format!("kandji_user:{uid}"))
            .expect("the user")
            .object;
        let (first, last) = d["user"]["name"].as_str().unwrap().split_once(' ').unwrap();
        assert_eq!(
            (user["firstName"].as_str(), user["lastName"].as_str()),
            (Some(first), Some(last))
        );
        let email = d["user"]["email"].as_str().unwrap();
        assert_eq!(user["email"], serde_json::json!([email]));
        assert_eq!(
            user["shortLoginId"],
            serde_json::json!([email.split_once('@').unwrap().0])
        );
        let account = &report.graph.entity("kandji-account").unwrap().object;
        assert_eq!(account["vendor"], "Kandji");
    }

    // 1 validation + pages at offsets 0,100,200 and the empty one at 300 + details and
    // apps once per device.
    let log = server.requests();
    let count = |p: &dyn Fn(&str) -> bool| log.iter().filter(|r| p(&r.target)).count();
    assert_eq!(count(&|t| t == "/api/v1/devices?limit=1"), 1);
    assert_eq!(count(&|t| t.starts_with("/api/v1/devices?offset=")), 4);
    assert_eq!(count(&|t| t.ends_with("/details")), 260);
    assert_eq!(count(&|t| t.ends_with("/apps")), 260);
    assert_eq!(log.len(), 525);
    assert_eq!(report.requests, 525);
    assert!(log.iter().all(|r| r.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let sim = sim(120);
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new("/details", 429, 3).retry_after(1));
    server.add_fault(FaultRule::new("/apps", 500, 2));
    server.add_fault(FaultRule::new("/api/v1/devices", 503, 1));
    let report = run_against(&server, "kandji-retry", token()).await;

    assert!(
        report.succeeded(),
        "{:?}",
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    assert_eq!(keys_by_type(&report), expected_kandji_keys(&sim.data()));
    let log = server.requests();
    let injected: Vec<u16> = log
        .iter()
        .filter(|r| r.injected)
        .map(|r| r.status)
        .collect();
    assert_eq!(injected.iter().filter(|s| **s == 429).count(), 3);
    assert_eq!(injected.iter().filter(|s| **s == 500).count(), 2);
    assert_eq!(injected.iter().filter(|s| **s == 503).count(), 1);
    // Each refused request was sent again: 1 + 3 pages (0, 100, empty 200) + 2×120, plus 6 retries.
    assert_eq!(log.len(), 1 + 3 + 240 + 6);
    for fault in log.iter().filter(|r| r.injected) {
        let retried = log
            .iter()
            .any(|r| r.target == fault.target && r.status == 200);
        assert!(retried, "{} was not retried", fault.target);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_deleted_mid_run_is_a_warning() {
    let sim = sim(30);
    let gone = sim.data().device_ids()[4].clone();
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new(&format!("/devices/{gone}/"), 404, u32::MAX));
    let report = run_against(&server, "kandji-404", token()).await;

    assert!(
        report.succeeded(),
        "{:?}",
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    let keys = keys_by_type(&report);
    assert!(!keys["kandji_device"].contains(&gone));
    assert_eq!(keys["kandji_device"].len(), 29);
    assert_eq!(report.warnings, 1);
    assert!(
        report
            .log
            .iter()
            .any(|l| l.level == "warn"
                && l.fields.iter().any(|(k, v)| k == "device_id" && v == &gone))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_marks_its_types_partial_and_dependents_still_run() {
    let sim = sim(20);
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new("/apps", 403, u32::MAX));
    let report = run_against(&server, "kandji-partial", token()).await;

    assert!(!report.succeeded());
    let status = |id: &str| {
        report
            .steps
            .iter()
            .find(|s| s.info.id == id)
            .unwrap()
            .status
    };
    assert_eq!(status("fetch-device-apps"), StepStatus::Failure);
    assert_eq!(status("fetch-device-users"), StepStatus::Success);
    assert_eq!(status("fetch-devices"), StepStatus::Success);
    assert_eq!(
        report.partial_types(),
        vec![
            "kandji_app".to_string(),
            "kandji_device_has_app".to_string()
        ]
    );
    let err = report
        .steps
        .iter()
        .find(|s| s.info.id == "fetch-device-apps")
        .unwrap()
        .error
        .clone()
        .unwrap();
    assert!(err.contains("403 Forbidden"), "{err}");
    // 403 is never retried: one request per device at most before the step gave up.
    let apps_calls = server
        .requests()
        .iter()
        .filter(|r| r.target.ends_with("/apps"))
        .count();
    assert!(apps_calls <= 20, "{apps_calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_validation_and_runs_nothing() {
    let sim = sim(5);
    let server = sim.start(0).await.unwrap();
    let wrong = "wrong-token-value-93c1";
    let report = run_against(&server, "kandji-badtoken", ConfigValue::Text(wrong.into())).await;

    let err = report.validation.clone().unwrap_err();
    assert!(
        err.starts_with("authentication error: Provider authentication failed at"),
        "{err}"
    );
    assert!(err.ends_with("401 Unauthorized"), "{err}");
    assert!(report.steps.is_empty());
    assert!((report.graph.entity_count() == 0));
    // 401 is final: exactly one request.
    assert_eq!(server.requests().len(), 1);
    assert!(!err.contains(wrong));
}

/// Issue 12: devices whose `device_name` is `""` (and one whose serial is `null` too) are
/// in the graph under a name a person can recognise, with their account, user and app
/// relationships and their apps; nothing is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_without_a_name_keep_their_relationships_and_apps() {
    use corral_simulators::kandji::{NAMELESS_APP_BUNDLE, has_empty_name, has_null_serial};
    let sim = sim(40);
    let (nameless, no_serial): (Vec<serde_json::Value>, Vec<serde_json::Value>) = {
        let data = sim.data();
        let nameless: Vec<_> = data
            .devices
            .iter()
            .filter(|d| d["device_name"] == "")
            .cloned()
            .collect();
        let no_serial = nameless
            .iter()
            .filter(|d| d["serial_number"].is_null())
            .cloned()
            .collect();
        (nameless, no_serial)
    };
    assert_eq!(
        nameless.len(),
        (0..40).filter(|i| has_empty_name(*i)).count(),
        "premise: devices named \"\""
    );
    assert_eq!(
        no_serial.len(),
        (0..40).filter(|i| has_null_serial(*i)).count()
    );
    assert!(
        !no_serial.is_empty(),
        "premise: a nameless device without a serial"
    );
    assert!(
        nameless.iter().any(|d| d["user"].is_object()),
        "premise: a nameless device with a user"
    );

    let server = sim.start(0).await.unwrap();
    let report = run_against(&server, "kandji-nameless", token()).await;
    assert!(
        report.succeeded(),
        "{:?}",
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    assert!(
        report.rejections.is_empty(),
        "nothing is rejected: {:?}",
        report.rejections
    );
    let expected = expected_kandji_keys(&sim.data());
    let keys = keys_by_type(&report);
    assert_eq!(keys, expected);

    // Every device, user and app has the spec's name or the documented fallback.
    let names = names_by_key(&report, &["kandji_device", "kandji_user", "kandji_app"]);
    assert_eq!(names, expected_kandji_names(&sim.data()));

    let data = sim.data();
    for d in &nameless {
        let id = d["device_id"].as_str().unwrap();
        let device = report
            .graph
            .entity(id)
            .expect("the nameless device is stored");
        let want = d["serial_number"].as_str().unwrap_or(id);
        assert_eq!(device.object["name"], want, "{id}");
        assert_eq!(device.object["displayName"], want, "{id}");
        assert_eq!(
            device.object["serialNumber"], d["serial_number"],
            "raw serial kept"
        );
        assert!(keys["kandji_account_has_device"].contains(&format!("kandji-account|has|{id}")));
        if let Some(uid) = d["user"].get("id").and_then(serde_json::Value::as_u64) {
            assert!(
                keys["kandji_device_has_user"].contains(&format!("{id}|has|kandji_user:{uid}"))
            );
        }
        let apps = &data.apps[id];
        for app in apps {
            let edge = format!("{id}|has|kandji_app:{}", app["app_id"].as_str().unwrap());
            assert!(keys["kandji_device_has_app"].contains(&edge), "{edge}");
        }
        assert!(apps.iter().any(|a| a["bundle_id"] == NAMELESS_APP_BUNDLE));
    }
    for d in &no_serial {
        let id = d["device_id"].as_str().unwrap();
        assert_eq!(report.graph.entity(id).unwrap().object["name"], id);
    }
    // The app without an app_name or process is named by its bundle id.
    let app = report
        .graph
        .entity(&format!("kandji_app:{NAMELESS_APP_BUNDLE}"))
        .expect("the nameless app is stored");
    assert_eq!(app.object["name"], NAMELESS_APP_BUNDLE);
    assert_eq!(app.object["displayName"], NAMELESS_APP_BUNDLE);
}

/// A connector built against the frozen `corral:integration@0.1.0` (the Kandji
/// connector as it was before the move to 0.2, kept as bytes) loads and runs beside the
/// built-in 0.2 one in the same process, and both give the same graph. This fixture is
/// never rebuilt: it must pass as long as the host offers 0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wit_0_1_component_runs_beside_0_2_with_the_same_graph() {
    use corral::plugin::wit::Version;
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/kandji-wit-0.1.0.wasm"
    );
    let server = sim(60).start(0).await.unwrap();
    let rt = runtime();
    let old = rt.load_file(std::path::Path::new(fixture)).await.unwrap();
    let new = rt.plugin("kandji").await.unwrap();
    assert_eq!(old.guest.version, Version::V0_1);
    assert_eq!(new.guest.version, Version::V0_2);
    let inst = kandji_instance(
        "kandji-wit",
        &format!("{}{API_PREFIX}", server.origin()),
        token(),
    );
    let (a, b) = tokio::join!(
        run_plugin(&rt, old, &inst, None),
        run_plugin(&rt, new, &inst, None)
    );
    for report in [&a, &b] {
        assert!(report.succeeded(), "{:?}", report.validation);
    }
    let (old_objects, new_objects) = (all_objects(&a), all_objects(&b));
    assert!(old_objects.len() > 60 * 3, "{}", old_objects.len());
    assert_eq!(old_objects, new_objects);
}

/// `incremental = "true"`: the second run fetches details and apps only for the devices
/// whose list entry changed (checked in, added), takes the rest from the previous graph,
/// and its graph is the graph of a full run against the same tenant, object for object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_fetches_only_changed_devices_and_equals_a_full_run() {
    use corral::delivery::Delivery;
    use corral::run::{resolve_with_policy, run_instance};
    use corral_simulators::kandji::generate_device;
    let sim = sim(150);
    let server = sim.start(0).await.unwrap();
    let dir = corral_e2e::daemon::scratch("kandji-incremental");
    let rt = runtime();
    let delivery = Delivery::open(&dir, dir.join("out"), Vec::new(), rt.hosts.clone()).unwrap();
    let plugin = rt.plugin("kandji").await.unwrap();
    let mut inst = kandji_instance(
        "kandji-incremental",
        &format!("{}{API_PREFIX}", server.origin()),
        token(),
    );
    inst.config
        .insert("incremental".into(), ConfigValue::Text("true".into()));
    // `expected`: the request count of the instance's previous run, as the history has it.
    let run = |expected: Option<u64>| {
        let (inst, plugin, delivery, rt) = (&inst, &plugin, &delivery, &rt);
        async move {
            let mut r = resolve_with_policy(inst, plugin.clone(), None).unwrap();
            r.previous = Some(delivery.previous(&r.id));
            r.expected.requests = expected;
            run_instance(&r, rt.hosts.clone()).await
        }
    };
    let counts = |from: usize| {
        let reqs = server.requests();
        let of = |what: &str| {
            reqs[from..]
                .iter()
                .filter(|r| r.target.contains(what))
                .count()
        };
        (of("/details"), of("/apps"))
    };

    let first = run(None).await;
    assert!(first.succeeded(), "{:?}", first.validation);
    assert_eq!(counts(0), (150, 150), "a first run fetches every device");
    let quota_lines = |r: &corral::run::RunReport| {
        r.log
            .iter()
            .filter(|l| l.step == "quota" && l.level == "warn")
            .map(|l| l.message.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        quota_lines(&first),
        Vec::<String>::new(),
        "nothing expected, nothing said"
    );
    delivery.deliver("run-1", &first).await.unwrap();

    // Between the runs: three devices check in, two are removed, two are added.
    let ids = sim.data().device_ids();
    {
        let mut data = sim.data_mut();
        for d in data.devices.iter_mut().skip(10).take(3) {
            d["last_check_in"] = serde_json::json!("2031-01-01T00:00:00.000000Z");
        }
        data.remove(&ids[0]);
        data.remove(&ids[1]);
        data.insert(generate_device(7, 5000, 50));
        data.insert(generate_device(7, 5001, 50));
    }
    let before = server.requests().len();
    // Said to have made 20,000 requests last time: more than the hour's 10,000.
    let second = run(Some(20_000)).await;
    assert!(second.succeeded(), "{:?}", second.validation);
    let said = quota_lines(&second);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("20000 requests") && said[0].contains("requestsPerHour (10000)"),
        "{said:?}"
    );
    let (details, apps) = counts(before);
    assert_eq!(details, 5, "only the changed devices' details are fetched");
    // The list in Kandji's largest pages: one of 150 devices and the empty one.
    let lists: Vec<String> = server.requests()[before..]
        .iter()
        .filter(|r| r.target.contains("devices?offset="))
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(lists.iter().all(|t| t.ends_with("&limit=300")), "{lists:?}");
    // Apps of the changed devices, and of the few that became an app's first device
    // because the device that was first (and whose install the app entity is) is gone.
    assert!((5..=15).contains(&apps), "{apps} apps requests");
    delivery.deliver("run-2", &second).await.unwrap();

    // A full run of the same tenant, with no previous graph, gives the same objects.
    let full = run_plugin(&rt, plugin.clone(), &inst, None).await;
    assert!(full.succeeded());
    let (incremental, fresh) = (all_objects(&second), all_objects(&full));
    assert_eq!(incremental.len(), fresh.len());
    assert!(
        incremental == fresh,
        "the incremental graph differs from a full run's"
    );

    // And the same change set, key for key: the full run delivered after the same first
    // run into a state of its own.
    let full_dir = corral_e2e::daemon::scratch("kandji-incremental-full");
    let full_delivery = Delivery::open(
        &full_dir,
        full_dir.join("out"),
        Vec::new(),
        rt.hosts.clone(),
    )
    .unwrap();
    full_delivery.deliver("run-1", &first).await.unwrap();
    full_delivery.deliver("run-2", &full).await.unwrap();
    let changes = |d: &Delivery| {
        let mut doc = d.state.changes(&inst.id, Some("run-2")).unwrap().unwrap();
        doc.as_object_mut().unwrap().remove("runId");
        doc
    };
    let (incremental_changes, full_changes) = (changes(&delivery), changes(&full_delivery));
    assert_eq!(incremental_changes, full_changes);
    // What changed, by device: two removed, two added, three checked in.
    let devices = &incremental_changes["types"]["kandji_device"];
    let keys = |list: &serde_json::Value| {
        let mut k: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.get("_key").unwrap_or(v).as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    };
    let mut removed = vec![ids[0].clone(), ids[1].clone()];
    removed.sort();
    assert_eq!(keys(&devices["deleted"]), removed);
    assert_eq!(keys(&devices["created"]).len(), 2);
    let mut checked_in: Vec<String> = ids[10..13].to_vec();
    checked_in.sort();
    assert_eq!(keys(&devices["updated"]), checked_in);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&full_dir);
}

/// The apps step holds one batch of devices' installs at a time, not the tenant's: 600
/// devices collect exactly in a guest of 8 MiB, which their installs held at once exceed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_step_holds_a_batch_not_the_tenant() {
    let sim = sim(600);
    let server = sim.start(0).await.unwrap();
    let rt = runtime();
    let inst = kandji_instance(
        "kandji-small-memory",
        &format!("{}{API_PREFIX}", server.origin()),
        token(),
    );
    let policy = include_str!("../../../host/demo/kandji-policy.json")
        .replace("\"memoryMiB\": 64", "\"memoryMiB\": 8");
    assert!(policy.contains("\"memoryMiB\": 8"), "premise");
    let report = run_kandji(&rt, &inst, Some(&policy)).await;
    assert_run_succeeded(&report);
    assert_eq!(keys_by_type(&report), expected_kandji_keys(&sim.data()));
}

/// `{"a": {"a": … 1}}`, `depth` objects deep.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(serde_json::json!(1), |v, _| serde_json::json!({ "a": v }))
}

/// How many objects deep `v` is along its `a` fields.
fn depth_of(mut v: &serde_json::Value) -> usize {
    let mut depth = 0;
    while let Some(inner) = v.get("a") {
        depth += 1;
        v = inner;
    }
    depth
}

/// A provider's deeply nested answers (what frame sizes of the compiled guest meet):
/// 110 deep, the device is stored whole; 125 deep, the guest parses it and the host
/// refuses the emitted device (its parser's depth limit), the rest of the run intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_details_are_stored_or_refused_by_the_host_never_trapped() {
    let sim = sim(5);
    let ids = sim.data().device_ids();
    let (stored, refused) = (ids[0].clone(), ids[1].clone());
    {
        let mut data = sim.data_mut();
        data.details.get_mut(&stored).unwrap()["deep"] = nested(110);
        data.details.get_mut(&refused).unwrap()["deep"] = nested(125);
    }
    let server = sim.start(0).await.unwrap();
    let report = run_against(&server, "kandji-nested", token()).await;
    assert_run_succeeded(&report);

    let device = report
        .graph
        .entities()
        .into_iter()
        .find(|e| e.key == stored)
        .expect("the 110-deep device is stored");
    assert_eq!(
        depth_of(&device.object["_rawData"][0]["rawData"]["deep"]),
        110
    );

    let refusals: Vec<(String, String)> = report
        .rejections
        .iter()
        .map(|e| (e.action.clone(), e.rule.clone()))
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals[0].0 == "graph:EmitEntity" && refusals[0].1.contains("recursion limit exceeded"),
        "{refusals:?}"
    );
    assert_eq!(
        refusals[1],
        (
            "graph:EmitRelationship".to_string(),
            format!("_toEntityKey {refused:?} names no entity of this run")
        )
    );
    // Every other device is stored.
    let expected: BTreeSet<String> = ids.into_iter().filter(|k| *k != refused).collect();
    assert_eq!(keys_by_type(&report)["kandji_device"], expected);
    assert!(!report.log.iter().any(|l| l.message.contains("trapped")));
}

/// Nested deeper than the guest's parser follows: the step fails with the provider's
/// URL in its error, no trap, and the steps after it still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_nested_too_deep_fail_the_step_with_the_url() {
    let sim = sim(3);
    let id = sim.data().device_ids()[0].clone();
    sim.data_mut().details.get_mut(&id).unwrap()["deep"] = nested(1_000);
    let server = sim.start(0).await.unwrap();
    let report = run_against(&server, "kandji-too-deep", token()).await;
    let step = report
        .steps
        .iter()
        .find(|s| s.info.id == "fetch-devices")
        .unwrap();
    assert_eq!(step.status, StepStatus::Failure);
    let err = step.error.clone().unwrap();
    assert!(
        err.contains("recursion limit exceeded") && err.contains(&format!("devices/{id}/details")),
        "{err}"
    );
    assert!(!err.contains("trapped"), "{err}");
}
