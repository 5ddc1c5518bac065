//! `corral serve` in this process: hot swap under load, refused candidates, rollback,
//! schedules, plugins that fail every run, and history across a restart. Everything is
//! observed through the admin API over HTTP.

use corral_e2e::components;
use corral_e2e::daemon::{TestDaemon, kandji_toml, scratch, sha256, variant, write_slowly};
use corral_e2e::{expected_kandji_keys, hostile_variant};
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
    corral::plugin::builtin::component("kandji").unwrap()
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

const OPERATOR_POLICY: &str = r#"{
  "permissions": [
    { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.apiUrl}}*"] },
    { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:accessToken"],
      "condition": { "stringLike": { "http:url": "{{config.apiUrl}}*" } } },
    { "effect": "ALLOW", "actions": ["graph:*"], "resources": ["type:kandji_*"] }
  ]
}"#;

/// The value of the metric line starting with `series` (labels included).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_candidates_are_refused_while_the_old_generation_serves() {
    let (sim, _server, api) = kandji_sim(12).await;
    let counts = expected_counts(&sim);
    let dir = scratch("refuse");
    std::fs::write(dir.join("kandji-policy.json"), OPERATOR_POLICY).unwrap();
    let instance = kandji_toml("kp", &api, TOKEN, "policy = \"kandji-policy.json\"");
    let d = TestDaemon::start(&dir, "", &instance).await;
    let builtin = sha256(builtin_kandji());
    assert_eq!(d.plugin("kandji").await["digest"], builtin.as_str());

    let kandji = builtin_kandji();
    let cases: [(&str, Vec<u8>, &str); 7] = [
        (
            "corrupt",
            kandji[..kandji.len() / 2].to_vec(),
            "not a WebAssembly component: failed to parse",
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "this is a core wasm module",
        ),
        (
            "wrong WIT version",
            components::get("wrong-wit").to_vec(),
            "built against a WIT version this host does not offer",
        ),
        (
            "over-privileged",
            components::get("kandji-greedy").to_vec(),
            "requests more than instance \"kp\"'s operator policy grants: http:* * (no ALLOW matches",
        ),
        (
            "a 100,000-step dependsOn chain",
            hostile_variant("chain"),
            "cannot read the manifest: invalid manifest: steps: 100000 steps: at most 256 are allowed",
        ),
        (
            "a step id that climbs out of the output",
            hostile_variant("step-traversal"),
            "steps[0].id: step id \"../../victim/graph/s\" is refused",
        ),
        (
            "another id",
            components::get("hostile").to_vec(),
            "declares id \"hostile\", but a file in plugin_dir must be named after its id (hostile.wasm)",
        ),
    ];
    for (what, bytes, reason) in &cases {
        std::fs::write(d.plugin_file("kandji"), bytes).unwrap();
        let got = d.wait_for_rejection("kandji", &sha256(bytes)).await;
        assert!(got.contains(reason), "{what}: {got}");
        let p = d.plugin("kandji").await;
        assert_eq!(
            (&p["digest"], &p["generation"], &p["source"]),
            (
                &Value::from(builtin.clone()),
                &Value::from(1),
                &Value::from("builtin")
            ),
            "{what}: the built-in generation keeps serving"
        );
        let run = d.start_run("kp").await;
        assert_succeeded(&d.finished(&run).await, &builtin, counts);
    }

    let m = d.metrics().await;
    let series = |s: &str| metric(&m, s);
    assert_eq!(
        series("corral_plugin_candidates_total{plugin=\"kandji\",outcome=\"refused\"}"),
        Some(7.0),
        "{m}"
    );
    assert_eq!(
        series("corral_runs_total{plugin=\"kandji\",version=\"0.1.0\",status=\"succeeded\"}"),
        Some(cases.len() as f64),
        "{m}"
    );
    let (_, runs) = d.get("/runs?instance=kp").await;
    let requests: u64 = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["counts"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        series("corral_requests_total{plugin=\"kandji\",version=\"0.1.0\"}"),
        Some(requests as f64)
    );
    assert_eq!(
        series("corral_entities_total{plugin=\"kandji\",version=\"0.1.0\"}"),
        Some((counts.0 * cases.len() as u64) as f64)
    );
    assert_eq!(
        series("corral_run_duration_seconds_count{plugin=\"kandji\",version=\"0.1.0\"}"),
        Some(cases.len() as f64)
    );
    assert_eq!(
        series("corral_plugin_generation{plugin=\"kandji\"}"),
        Some(1.0)
    );
    assert_eq!(series("corral_runs_in_flight"), Some(0.0));
    d.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_on_request_and_after_a_failing_first_run() {
    let (sim, _server, api) = kandji_sim(12).await;
    let counts = expected_counts(&sim);
    let dir = scratch("rollback");
    let d = TestDaemon::start(&dir, "", &kandji_toml("kr", &api, TOKEN, "")).await;
    let builtin = sha256(builtin_kandji());
    let first = d.start_run("kr").await;
    assert_succeeded(&d.finished(&first).await, &builtin, counts);

    // A broken release: its first run fails, so the host goes back to generation 1.
    let broken = components::get("kandji-broken");
    std::fs::write(d.plugin_file("kandji"), broken).unwrap();
    d.wait_for_digest("kandji", &sha256(broken)).await;
    let run = d.finished(&d.start_run("kr").await).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        (&run["pluginVersion"], &run["generation"]),
        (&Value::from("0.2.0-broken"), &Value::from(2))
    );
    assert_eq!(
        run["errors"],
        serde_json::json!([
            "step fetch-account: provider error: kandji 0.2.0-broken is broken on purpose"
        ])
    );
    let p = d.wait_for_digest("kandji", &builtin).await;
    assert_eq!(p["generation"], 1);
    let rb = &p["lastRollback"];
    assert_eq!(
        (&rb["fromGeneration"], &rb["toGeneration"]),
        (&Value::from(2), &Value::from(1))
    );
    assert_eq!(
        rb["reason"],
        "automatic: the first run on generation 2 failed where generation 1's last run succeeded"
    );
    assert_succeeded(
        &d.finished(&d.start_run("kr").await).await,
        &builtin,
        counts,
    );

    // A good release, then a rollback on request.
    let touched = d.plugin_file("kandji");
    let good = variant(builtin_kandji(), "good");
    std::fs::write(&touched, &good).unwrap();
    let p = d.wait_for_digest("kandji", &sha256(&good)).await;
    assert_eq!(p["generation"], 3);
    let (status, body) = d.post("/plugins/kandji/rollback").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["fromGeneration"], &body["toGeneration"]),
        (&Value::from(3), &Value::from(1))
    );
    assert_eq!(d.plugin("kandji").await["digest"], builtin.as_str());
    assert_succeeded(
        &d.finished(&d.start_run("kr").await).await,
        &builtin,
        counts,
    );
    let (status, body) = d.post("/plugins/kandji/rollback").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        "plugin kandji has no previous generation to roll back to"
    );
    let (status, _) = d.post("/plugins/nonesuch/rollback").await;
    assert_eq!(status, 404);
    // Those same bytes again are refused as rolled back.
    std::fs::write(&touched, broken).unwrap();
    let reason = d.wait_for_rejection("kandji", &sha256(broken)).await;
    assert_eq!(
        reason,
        "these bytes were rolled back; write a different build to try again"
    );
    let m = d.metrics().await;
    assert_eq!(
        metric(&m, "corral_plugin_rollbacks_total{plugin=\"kandji\"}"),
        Some(2.0)
    );
    d.shutdown(Duration::from_secs(5)).await;
}

fn hostile_toml(id: &str, attack: &str, extra: &str) -> String {
    format!(
        "[[instance]]\nid = \"{id}\"\nplugin = \"hostile\"\n{extra}\n[instance.config]\n\
         attack = \"{attack}\"\nbaseUrl = \"http://127.0.0.1:9/\"\ntarget = \"http://127.0.0.1:9/\"\n\n"
    )
}

/// Ended runs of `instance` started by `trigger`, oldest first.
async fn ended_runs(d: &TestDaemon, instance: &str, trigger: &str) -> Vec<Value> {
    let (_, runs) = d.get(&format!("/runs?instance={instance}")).await;
    let mut runs: Vec<Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["trigger"] == trigger && !matches!(r["status"].as_str(), Some("queued" | "running"))
        })
        .cloned()
        .collect();
    runs.reverse();
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_failing_every_run_leave_the_daemon_and_other_schedules_alone() {
    let (sim, _server, api) = kandji_sim(8).await;
    let counts = expected_counts(&sim);
    let dir = scratch("failing");
    std::fs::write(
        dir.join("plugins.d/hostile.wasm"),
        components::get("hostile"),
    )
    .unwrap();
    let every = "polling_interval_seconds = 1";
    let instances = [
        kandji_toml("ks", &api, TOKEN, every),
        hostile_toml("trapper", "panic", every),
        hostile_toml("bomber", "memory-bomb", every),
        hostile_toml("spinner", "infinite-loop", ""),
    ]
    .concat();
    let d = TestDaemon::start(&dir, "", &instances).await;
    let spin = d.start_run("spinner").await;
    for (instance, n) in [("ks", 3), ("trapper", 3), ("bomber", 3)] {
        d.wait_for(&format!("{n} scheduled runs of {instance}"), || async {
            (ended_runs(&d, instance, "schedule").await.len() >= n).then_some(())
        })
        .await;
    }
    let builtin = sha256(builtin_kandji());
    let ks = ended_runs(&d, "ks", "schedule").await;
    for run in &ks {
        assert_succeeded(run, &builtin, counts);
    }
    for (instance, reason) in [
        ("trapper", "guest trapped"),
        ("bomber", "memory limit of 32 MiB reached"),
    ] {
        for run in ended_runs(&d, instance, "schedule").await {
            assert_eq!(run["status"], "failed", "{run}");
            let errors = run["errors"].to_string();
            assert!(errors.contains(reason), "{instance}: {errors}");
        }
    }
    let spun = d.finished(&spin).await;
    assert!(
        spun["errors"]
            .to_string()
            .contains("wall-clock limit of 3 s reached"),
        "{spun}"
    );
    // The interval is kept: scheduled runs are at least a second apart, not bunched.
    let started: Vec<String> = ks
        .iter()
        .map(|r| r["queuedAt"].as_str().unwrap().to_string())
        .collect();
    for pair in started.windows(2) {
        assert!(pair[0] < pair[1], "{started:?}");
        let ms = |t: &str| -> u64 {
            let (s, frac) = t[17..23].split_once('.').unwrap();
            s.parse::<u64>().unwrap() * 1000 + frac.parse::<u64>().unwrap()
        };
        let gap = (ms(&pair[1]) + 60_000 - ms(&pair[0])) % 60_000;
        assert!(gap >= 950, "runs {gap} ms apart: {started:?}");
    }
    let (status, health) = d.get("/healthz").await;
    assert_eq!((status, &health["status"]), (200, &Value::from("ok")));

    // Deleting a third-party plugin unloads it; its runs then fail to start.
    std::fs::remove_file(d.plugin_file("hostile")).unwrap();
    d.wait_for("hostile to unload", || async {
        (d.plugin("hostile").await["generation"] == Value::Null).then_some(())
    })
    .await;
    let run = d.finished(&d.start_run("spinner").await).await;
    assert_eq!(
        run["errors"],
        serde_json::json!(["plugin \"hostile\" is not loaded"])
    );
    d.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_history_survives_a_restart_and_runs_are_not_doubled() {
    let (sim, server, api) = kandji_sim(30).await;
    let counts = expected_counts(&sim);
    let dir = scratch("restart");
    let instance = kandji_toml("kh", &api, TOKEN, "");
    let d = TestDaemon::start(&dir, "", &instance).await;
    server.set_delay(Duration::from_millis(20));
    let run = d.start_run("kh").await;
    let (status, body) = d.post("/instances/kh/runs").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["runId"], run.as_str(), "the run in flight is reported");
    let (status, body) = d.post("/instances/nonesuch/runs").await;
    assert_eq!(
        (status, &body["error"]),
        (
            404,
            &Value::from("no instance with id \"nonesuch\" in the config")
        )
    );
    let before = d.finished(&run).await;
    assert_succeeded(&before, &sha256(builtin_kandji()), counts);
    d.shutdown(Duration::from_secs(5)).await;

    let d = TestDaemon::start(&dir, "", &instance).await;
    let (status, after) = d.get(&format!("/runs/{run}")).await;
    assert_eq!((status, &after), (200, &before));
    let next = d.start_run("kh").await;
    assert_ne!(next, run, "run ids are not reused after a restart");
    d.finished(&next).await;
    let (status, _) = d.get("/runs/run-999999").await;
    assert_eq!(status, 404);
    d.shutdown(Duration::from_secs(5)).await;
}
