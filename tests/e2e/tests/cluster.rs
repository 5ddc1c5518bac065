//! Cluster mode end to end (issue 16): a `corral serve --cluster` coordinator and
//! `corral worker` processes on a real `nats-server -js`, running the four first-party
//! connectors against the simulators. Graphs are compared object for object with the
//! same instance run in this process; credentials live only in the workers' environment.

use corral_e2e::cluster::{
    Admin, KANDJI_TOKEN, Nats, Proc, REFERENCE_ID, Tenants, WORKER_ENV, coordinator, worker,
    write_config,
};
use corral_e2e::daemon::{scratch, sha256, variant};
use corral_simulators::SimServer;
use corral_simulators::kandji::{self, KandjiConfig, KandjiSim};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// One process-heavy test at a time: each starts NATS, a coordinator and workers.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every object in an instance's output folder, as (key, type, object) in key order.
fn output_objects(out: &Path) -> Vec<(String, String, Map<String, Value>)> {
    let mut all = Vec::new();
    let mut stack = vec![out.join("graph")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let list = file
                .get("entities")
                .or_else(|| file.get("relationships"))
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("{}: not a graph file", path.display()));
            for o in list {
                let o = o.as_object().unwrap().clone();
                let key = o["_key"].as_str().unwrap().to_string();
                let ty = o["_type"].as_str().unwrap().to_string();
                all.push((key, ty, o));
            }
        }
    }
    all.sort_by(|x, y| x.0.cmp(&y.0));
    all
}

type Objects = [(String, String, Map<String, Value>)];

/// The same objects as the reference for `instance`; else names the first that differs.
fn assert_same_graph(instance: &str, got: &Objects, reference: &Objects) {
    let text = serde_json::to_string(reference)
        .unwrap()
        .replace(REFERENCE_ID, instance);
    let mut want: Vec<(String, String, Map<String, Value>)> = serde_json::from_str(&text).unwrap();
    want.sort_by(|x, y| x.0.cmp(&y.0));
    let differs = got.iter().zip(&want).find(|(g, w)| g != w);
    if let Some((g, w)) = differs {
        panic!(
            "{instance}: {} differs from the same instance run in one process:\n{g:?}\n{w:?}",
            w.0
        );
    }
    assert_eq!(got.len(), want.len(), "{instance}: objects");
    assert!(!got.is_empty(), "{instance}: an empty graph");
}

/// No credential in any file under `dir`, raw or in the encodings a provider might echo.
fn assert_no_secret_under(dir: &Path) {
    use base64::Engine as _;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            for (_, secret) in WORKER_ENV {
                let forms = [
                    secret.to_string(),
                    base64::engine::general_purpose::STANDARD.encode(secret),
                    secret
                        .bytes()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                ];
                for form in forms {
                    assert!(
                        !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                        "{} holds a credential ({form})",
                        path.display()
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_runs_on_three_workers_survive_a_worker_killed_mid_run() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("cluster-hundred");
    let nats = Nats::start(&dir);
    let tenants = Tenants::start().await;
    let plugins = ["kandji", "sentinelone", "runzero", "circleci"];
    let mut references = BTreeMap::new();
    for p in plugins {
        references.insert(p, tenants.reference(p).await);
    }
    let ids: Vec<(String, &str)> = (0..100)
        .map(|i| (format!("{}-{:02}", plugins[i % 4], i / 4), plugins[i % 4]))
        .collect();
    // kandji-00 talks to a slow twin of the Kandji tenant (same data), so its run is
    // surely still going when the worker holding it is killed.
    let (_slow, slow_api) = slow_kandji(3, 300).await;
    let instances: String = ids
        .iter()
        .map(|(id, p)| match id.as_str() {
            "kandji-00" => kandji_toml(id, &slow_api, "KANDJI_TOKEN"),
            _ => tenants.toml(id, p),
        })
        .collect();
    let coord_toml = write_config(&dir, "coordinator", None, &instances);
    let (_coord, base) = coordinator(&coord_toml, &nats.url);
    let mut workers: Vec<Proc> = (1..=3)
        .map(|n| {
            let toml = write_config(&dir, &format!("w{n}"), None, &instances);
            worker(&toml, &nats.url, &format!("w{n}"), 2, &WORKER_ENV)
        })
        .collect();
    let admin = Admin {
        base,
        http: reqwest::Client::new(),
    };
    let mut run_ids = Vec::new();
    for (id, _) in &ids {
        run_ids.push(admin.start_run(id).await);
    }
    // Kill the worker holding the slow run, mid-run.
    let victim_run = run_ids[0].clone();
    wait_running(&admin, &victim_run).await;
    let victim_worker = admin.run(&victim_run).await["worker"]
        .as_str()
        .unwrap()
        .to_string();
    let killed: usize = victim_worker.trim_start_matches('w').parse().unwrap();
    workers[killed - 1].kill9();

    let runs = admin.finished(&run_ids, Duration::from_secs(300)).await;
    let all = admin.runs().await;
    assert_eq!(all.len(), 100, "one run per request, no more");
    for ((instance, plugin), run_id) in ids.iter().zip(&run_ids) {
        let run = &runs[run_id];
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["instance"], instance.as_str(), "{run}");
        let worker = run["worker"].as_str().unwrap_or_else(|| panic!("{run}"));
        assert!(["w1", "w2", "w3"].contains(&worker), "{run}");
        assert!(run["attempts"].as_u64().is_some_and(|a| a >= 1), "{run}");
        let out = dir.join("coordinator/out").join(instance);
        assert_same_graph(instance, &output_objects(&out), &references[plugin]);
    }
    let victim = &runs[&victim_run];
    assert_ne!(
        victim["worker"],
        victim_worker.as_str(),
        "the killed worker's run finished elsewhere: {victim}"
    );
    assert!(victim["attempts"].as_u64().unwrap() >= 2, "{victim}");

    // Results that arrive again (a worker's stale attempt, a failure after the fact)
    // are dropped: the history, state and output stay as delivered.
    let changes = std::fs::read(dir.join("coordinator/out/kandji-00/changes.json")).unwrap();
    for outcome in [
        serde_json::json!({"kind": "ran", "bytes": 10}),
        serde_json::json!({"kind": "failed", "reason": "a stale attempt"}),
    ] {
        duplicate_result(&nats.url, &victim_run, outcome).await;
    }
    results_consumed(&nats.url).await;
    assert_eq!(admin.run(&victim_run).await, *victim);
    assert_eq!(admin.runs().await.len(), 100);
    assert_eq!(
        std::fs::read(dir.join("coordinator/out/kandji-00/changes.json")).unwrap(),
        changes
    );

    for (n, w) in workers.iter_mut().enumerate() {
        if n + 1 != killed {
            assert!(w.terminate().success(), "a worker stops cleanly on SIGTERM");
        }
    }
    assert_no_secret_under(&dir.join("coordinator"));
    assert_no_secret_under(&nats.store);
}

/// Publishes another result notice for `run_id` as a worker would.
async fn duplicate_result(url: &str, run_id: &str, outcome: Value) -> String {
    let client = async_nats::connect(url).await.unwrap();
    let notice = serde_json::json!({
        "run_id": run_id, "worker": "impostor", "attempts": 9, "outcome": outcome
    });
    let js = async_nats::jetstream::new(client);
    // A different message id than the worker's, so JetStream's own deduplication does
    // not hide it: the coordinator must.
    let mut headers = async_nats::HeaderMap::new();
    let id = format!("{run_id}-{}", outcome["kind"]);
    headers.insert("Nats-Msg-Id", id.as_str());
    js.publish_with_headers(
        format!("corral.result.{run_id}"),
        headers,
        notice.to_string().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    notice.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_swap_and_rollback_across_workers_keep_each_runs_generation() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("cluster-swap");
    let nats = Nats::start(&dir);
    let tenants = Tenants::start().await;
    let reference = tenants.reference("kandji").await;
    let ids: Vec<String> = (1..=9).map(|i| format!("k{i}")).collect();
    let instances: String = ids.iter().map(|id| tenants.toml(id, "kandji")).collect();
    let plugin_dir = dir.join("plugins.d");
    let coord_toml = write_config(&dir, "coordinator", Some(&plugin_dir), &instances);
    let (_coord, base) = coordinator(&coord_toml, &nats.url);
    let _workers: Vec<Proc> = (1..=2)
        .map(|n| {
            let toml = write_config(&dir, &format!("w{n}"), None, &instances);
            worker(&toml, &nats.url, &format!("w{n}"), 2, &WORKER_ENV)
        })
        .collect();
    let admin = Admin {
        base,
        http: reqwest::Client::new(),
    };
    let builtin = corral::plugin::builtin::component("kandji").unwrap();
    let d0 = sha256(builtin);
    assert_eq!(admin.plugin_digest("kandji").await, d0.as_str());

    let mut expected = Vec::new();
    for id in &ids[0..3] {
        expected.push((admin.start_run(id).await, d0.clone(), id.clone()));
    }
    let v1 = variant(builtin, "cluster-1");
    let d1 = sha256(&v1);
    std::fs::write(plugin_dir.join("kandji.wasm"), &v1).unwrap();
    wait_for_digest(&admin, &d1).await;
    for id in &ids[3..6] {
        expected.push((admin.start_run(id).await, d1.clone(), id.clone()));
    }
    let rolled = admin.post("/plugins/kandji/rollback").await;
    wait_for_digest(&admin, &d0).await;
    for id in &ids[6..9] {
        expected.push((admin.start_run(id).await, d0.clone(), id.clone()));
    }
    let run_ids: Vec<String> = expected.iter().map(|e| e.0.clone()).collect();
    let runs = admin.finished(&run_ids, Duration::from_secs(180)).await;
    for (run_id, digest, instance) in &expected {
        let run = &runs[run_id];
        assert_eq!(run["status"], "succeeded", "{run} (rollback: {rolled})");
        assert_eq!(run["pluginDigest"], digest.as_str(), "{run}");
        let out = output_objects(&dir.join("coordinator/out").join(instance));
        assert_same_graph(instance, &out, &reference);
    }
}

async fn wait_for_digest(admin: &Admin, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin.plugin_digest("kandji").await != digest {
        assert!(Instant::now() < deadline, "kandji never became {digest}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the coordinator has taken and acknowledged every result notice.
async fn results_consumed(url: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream("corral-coordinator", "CORRAL_RESULTS")
            .await
            .unwrap();
        let info = consumer.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "results still pending: {info:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Kandji tenant (seed, 12 devices) answering each request after `delay_ms`, so its
/// runs are still going when something fails.
async fn slow_kandji(seed: u64, delay_ms: u64) -> (SimServer, String) {
    let server = KandjiSim::new(&KandjiConfig {
        seed,
        devices: 12,
        token: KANDJI_TOKEN.into(),
    })
    .start(0)
    .await
    .unwrap();
    server.set_delay(Duration::from_millis(delay_ms));
    let api = format!("{}{}", server.origin(), kandji::API_PREFIX);
    (server, api)
}

fn kandji_toml(id: &str, api: &str, token_env: &str) -> String {
    kandji_toml_with(id, api, token_env, "", "")
}

/// A Kandji instance with lines of its own before (`policy = …`) and in its config.
fn kandji_toml_with(id: &str, api: &str, token_env: &str, head: &str, config: &str) -> String {
    format!(
        "[[instance]]\nid = \"{id}\"\nplugin = \"kandji\"\n{head}[instance.config]\n\
         apiUrl = \"{api}\"\naccessToken = {{ env = \"{token_env}\" }}\n{config}\n"
    )
}

async fn wait_running(admin: &Admin, run: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin.run(run).await["status"] != "running" {
        assert!(Instant::now() < deadline, "{run} never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_and_coordinator_restarts_lose_no_run_and_a_worker_failure_is_not_retried() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("cluster-faults");
    let mut nats = Nats::start(&dir);
    let (_server, api) = slow_kandji(5, 80).await;
    let mut instances: String = (1..=6)
        .map(|i| kandji_toml(&format!("k{i}"), &api, "KANDJI_TOKEN"))
        .collect();
    instances.push_str(&kandji_toml("no-secret", &api, "NO_WORKER_HAS_THIS"));
    let coord_toml = write_config(&dir, "coordinator", None, &instances);
    let w_toml = write_config(&dir, "w1", None, &instances);
    let (mut coord, base) = coordinator(&coord_toml, &nats.url);
    let mut w1 = worker(&w_toml, &nats.url, "w1", 3, &WORKER_ENV);
    let mut admin = Admin {
        base,
        http: reqwest::Client::new(),
    };

    // A worker that cannot resolve the instance reports it once; it is not retried.
    let no_secret = admin.start_run("no-secret").await;
    let failed = &admin
        .finished(std::slice::from_ref(&no_secret), Duration::from_secs(60))
        .await[&no_secret];
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 1, "{failed}");
    let reason = failed["errors"][0].as_str().unwrap();
    assert!(
        reason.starts_with("worker w1: ") && reason.contains("NO_WORKER_HAS_THIS"),
        "{reason}"
    );

    // NATS killed and restarted on its store while runs are going.
    let first: Vec<String> = {
        let mut ids = Vec::new();
        for i in 1..=3 {
            ids.push(admin.start_run(&format!("k{i}")).await);
        }
        ids
    };
    wait_running(&admin, &first[0]).await;
    let (port, store) = (nats.port, nats.store.clone());
    nats.proc.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats = Nats::start_on(port, &store);
    let runs = admin.finished(&first, Duration::from_secs(120)).await;
    for run in runs.values() {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(
            run["attempts"], 1,
            "a short NATS outage costs no attempt: {run}"
        );
        assert_eq!(
            run["counts"]["requests"].as_u64().map(|n| n > 12),
            Some(true),
            "{run}"
        );
    }

    // Runs queued while no worker is up survive a coordinator killed outright.
    assert!(w1.terminate().success());
    let queued: Vec<String> = {
        let mut ids = Vec::new();
        for i in 4..=6 {
            ids.push(admin.start_run(&format!("k{i}")).await);
        }
        ids
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // One more, asked for while NATS is down: it never reaches the queue.
    nats.proc.kill9();
    let lost = admin.start_run("k1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    coord.kill9();
    let _nats = Nats::start_on(port, &store);
    let (_coord, base) = coordinator(&coord_toml, &nats.url);
    admin.base = base;
    let lost_run = admin.run(&lost).await;
    assert_eq!(lost_run["status"], "failed", "{lost_run}");
    assert_eq!(
        lost_run["errors"],
        serde_json::json!(["lost: the coordinator stopped before the run reached NATS"])
    );
    for id in &queued {
        assert_eq!(
            admin.run(id).await["status"],
            "queued",
            "{id} waits for a worker"
        );
    }
    let _w2 = worker(&w_toml, &nats.url, "w2", 3, &WORKER_ENV);
    let runs = admin.finished(&queued, Duration::from_secs(120)).await;
    for run in runs.values() {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["worker"], "w2", "{run}");
    }
    assert_eq!(admin.runs().await.len(), 8, "no run made twice");
}

/// Workers draw from one provider quota, kept by the coordinator (not one quota per
/// worker), and an incremental run on a worker reads the previous graph its instance's
/// last run left, through the coordinator, wherever that run ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_share_a_providers_quota_and_read_the_previous_graph_from_the_coordinator() {
    let _serial = SERIAL.lock().await;
    let dir = scratch("cluster-asks");
    let nats = Nats::start(&dir);
    let (quota_sim, quota_api) = slow_kandji(5, 0).await;
    let (inc_sim, inc_api) = slow_kandji(6, 0).await;
    // The demo's Kandji policy with 20 requests a minute and a 4 s run: one run alone
    // needs more requests than that.
    let demo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../host/demo/kandji-policy.json"
    );
    let mut policy: Value = serde_json::from_slice(&std::fs::read(demo).unwrap()).unwrap();
    policy["limits"]["requestsPerMinute"] = 20.into();
    policy["limits"]["timeoutSeconds"] = 4.into();
    let policy_path = dir.join("tight-policy.json");
    std::fs::write(&policy_path, policy.to_string()).unwrap();
    let tight = format!("policy = \"{}\"\n", policy_path.display());
    // A results store made by an older version, without a max age.
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    js.create_object_store(async_nats::jetstream::object_store::Config {
        bucket: "corral-results".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let instances = [
        kandji_toml_with("quota-a", &quota_api, "KANDJI_TOKEN", &tight, ""),
        kandji_toml_with("quota-b", &quota_api, "KANDJI_TOKEN", &tight, ""),
        kandji_toml_with(
            "inc",
            &inc_api,
            "KANDJI_TOKEN",
            "",
            "incremental = \"true\"\n",
        ),
    ]
    .concat();
    let (_coord, base) = coordinator(
        &write_config(&dir, "coordinator", None, &instances),
        &nats.url,
    );
    let _workers: Vec<Proc> = (1..=2)
        .map(|n| {
            let toml = write_config(&dir, &format!("w{n}"), None, &instances);
            worker(&toml, &nats.url, &format!("w{n}"), 1, &WORKER_ENV)
        })
        .collect();
    let admin = Admin {
        base,
        http: reqwest::Client::new(),
    };

    // The incremental instance: a first run fetches every device's details; the second,
    // on whichever worker takes it, takes the unchanged devices from the previous graph.
    let details = |from: usize| {
        inc_sim.requests()[from..]
            .iter()
            .filter(|r| r.target.contains("/details"))
            .count()
    };
    let first = admin.start_run("inc").await;
    let first = admin.finished(&[first], Duration::from_secs(120)).await;
    assert!(
        first.values().all(|r| r["status"] == "succeeded"),
        "{first:?}"
    );
    assert_eq!(details(0), 12, "a first run fetches every device");
    let out = dir.join("coordinator/out/inc");
    let first_graph = output_objects(&out);
    let seen = inc_sim.requests().len();
    let second = admin.start_run("inc").await;
    let second = admin.finished(&[second], Duration::from_secs(120)).await;
    assert!(
        second.values().all(|r| r["status"] == "succeeded"),
        "{second:?}"
    );
    assert_eq!(details(seen), 0, "no device changed: none is fetched again");
    assert!(first_graph.len() > 12);
    assert!(
        output_objects(&out) == first_graph,
        "the incremental graph is the first run's"
    );
    // A run that is not in flight has no previous graph to read, whoever asks for it.
    let client = async_nats::connect(&nats.url).await.unwrap();
    let device = first_graph
        .iter()
        .find(|(_, t, _)| t == "kandji_device")
        .unwrap();
    let ask = serde_json::json!({"op": "object", "key": device.0}).to_string();
    for run_id in first.keys().chain(second.keys()) {
        let subject = format!("corral.ask.previous.{run_id}");
        let reply = client.request(subject, ask.clone().into()).await.unwrap();
        let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(answer["kind"], "failed", "{answer}");
        assert!(
            answer["reason"]
                .as_str()
                .unwrap()
                .contains("not a run in flight")
        );
    }

    // Two runs of one tenant on two workers at once: together they get the 20 requests
    // of the minute (and what refills while they go), not 20 each.
    let started = Instant::now();
    let ids = [
        admin.start_run("quota-a").await,
        admin.start_run("quota-b").await,
    ];
    let runs = admin.finished(&ids, Duration::from_secs(120)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let workers: std::collections::BTreeSet<_> =
        runs.values().map(|r| r["worker"].to_string()).collect();
    assert_eq!(workers.len(), 2, "one run on each worker: {runs:?}");
    let made = quota_sim.requests().len();
    // 20 a minute refill one every 3 s.
    let allowed = 20 + (elapsed / 3.0).ceil() as usize;
    assert!(
        made <= allowed,
        "{made} requests in {elapsed:.1} s, over the quota's {allowed}"
    );
    assert!(made >= 20, "the quota was there to spend: {made}");
    assert!(
        runs.values().all(|r| r["status"] != "succeeded"),
        "{runs:?}"
    );

    // Result files never taken do not stay for ever: the store keeps one a week at most
    // (the older store was given the max age).
    let mut results = js.get_stream("OBJ_corral-results").await.unwrap();
    let max_age = results.info().await.unwrap().config.max_age;
    assert_eq!(max_age, Duration::from_secs(7 * 24 * 3600));
}
