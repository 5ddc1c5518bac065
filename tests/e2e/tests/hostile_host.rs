//! A hostile plugin attacks the host around the sandbox: identifiers that would reach
//! the file system, manifest shapes and numbers that would crash the process, graphs that
//! would exhaust its memory, a redaction oracle, forged console lines, `_mapping` on
//! entities, steps that would fill the instance pool. Each attack ends in its specific
//! refusal while a Kandji run beside it keeps its exact graph and output directory.

use corral::config::ConfigValue;
use corral::delivery::output;
use corral::plugin::PluginError;
use corral::run::{RunReport, resolve_with_policy};
use corral_e2e::*;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::path::Path;

const SECRET: &str = "hostile-oracle-secret-9931";
const KANDJI_TOKEN: &str = "kandji-beside-hostile-host-token";

/// Allows everything, with these limits.
fn policy(limits: &str) -> String {
    format!(
        r#"{{"permissions":[{{"effect":"ALLOW","actions":["*"],"resources":["*"]}}],"limits":{{{limits}}}}}"#
    )
}

fn step_error(r: &RunReport) -> String {
    r.steps
        .iter()
        .find_map(|s| s.error.clone())
        .unwrap_or_default()
}

/// A Kandji tenant and the well-behaved run beside the attacks, whose graph must stay
/// exact.
struct KandjiBeside {
    sim: std::sync::Arc<KandjiSim>,
    server: corral_simulators::SimServer,
}

impl KandjiBeside {
    async fn start(seed: u64, devices: usize) -> KandjiBeside {
        let sim = KandjiSim::new(&KandjiConfig {
            seed,
            devices,
            token: KANDJI_TOKEN.into(),
        });
        let server = sim.start(0).await.unwrap();
        KandjiBeside { sim, server }
    }

    async fn run(&self, rt: &corral::plugin::runtime::Runtime) -> RunReport {
        let url = format!("{}{API_PREFIX}", self.server.origin());
        let inst = kandji_instance(
            "kandji-beside",
            &url,
            ConfigValue::Text(KANDJI_TOKEN.into()),
        );
        run_kandji(rt, &inst, None).await
    }

    /// The run succeeded with exactly the keys the spec's formulas give.
    fn assert_exact(&self, report: &RunReport) {
        assert!(report.succeeded(), "{}", step_error(report));
        assert_eq!(keys_by_type(report), expected_kandji_keys(&self.sim.data()));
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("corral-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_manifests_are_refused_at_load_with_the_reason() {
    let rt = runtime();
    let cases = [
        (
            "step-traversal",
            "steps[0].id: step id \"../../victim/graph/s\" is refused",
        ),
        (
            "step-absolute",
            "steps[0].id: step id \"/tmp/corral-hostile-abs\" is refused",
        ),
        (
            "type-traversal",
            "steps[0].entities[0]._type: _type \"../../../x\" is refused",
        ),
        ("chain", "steps: 100000 steps: at most 256 are allowed"),
        ("timeout-max", "$.limits.timeoutSeconds: expected"),
        (
            "concurrency-max",
            "$.limits.maxConcurrentRequests: expected",
        ),
        ("rate-tiny", "$.limits.requestsPerSecond: expected"),
        (
            "control-name",
            "name: \"Hostile\\n\\u{1b}[32mkandji-beside succeeded\" holds the control character U+000A",
        ),
    ];
    for (variant, reason) in cases {
        let err = load_component(&rt, &hostile_variant(variant), "hostile.wasm")
            .await
            .err()
            .unwrap_or_else(|| panic!("{variant} loaded"));
        assert!(
            matches!(err, PluginError::Manifest { .. }),
            "{variant}: {err}"
        );
        assert!(err.to_string().contains(reason), "{variant}: {err}");
    }
    let default = load_component(&rt, &hostile_variant("default"), "hostile.wasm").await;
    assert!(default.is_ok(), "the unpatched manifest loads");
}

/// `corral run` loads every file in `plugin_dir`: a hostile one is refused and the
/// others, and every instance of another plugin, run on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_file_in_plugin_dir_is_refused_and_kandji_runs_on() {
    let dir = scratch("plugin-dir");
    std::fs::write(dir.join("hostile.wasm"), hostile_variant("chain")).unwrap();
    let rt = runtime();
    let failures = rt.load_plugin_dir(&dir).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].to_string().contains("at most 256"),
        "{}",
        failures[0]
    );
    let kandji = KandjiBeside::start(9, 12).await;
    kandji.assert_exact(&kandji.run(&rt).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_limits_out_of_range_are_refused_at_resolve() {
    let rt = runtime();
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let inst = hostile_instance("panic", "http://127.0.0.1:9/", "", SECRET);
    for (limit, value) in [
        ("timeoutSeconds", "18446744073709551615"),
        ("maxConcurrentRequests", "18446744073709551615"),
        ("requestsPerSecond", "1e-30"),
        ("memoryMiB", "4096"),
    ] {
        let text = policy(&format!("\"{limit}\": {value}"));
        let err = resolve_with_policy(&inst, plugin.clone(), Some((text, "op.json".into())))
            .err()
            .unwrap_or_else(|| panic!("{limit} = {value} accepted"));
        assert!(
            err.to_string()
                .contains(&format!("op.json: $.limits.{limit}: expected")),
            "{limit}: {err}"
        );
    }
}

/// A value the operator supplies from the environment (or marks secret) is a secret
/// whatever the manifest says: a plugin that declares the field plain is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_secrets_are_secret_whatever_the_manifest_says() {
    let rt = runtime();
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    for value in [
        ConfigValue::Env {
            env: "CORRAL_TEST_HOSTILE_TARGET".into(),
        },
        ConfigValue::Secret {
            secret: "s3cret-api-token".into(),
        },
    ] {
        let mut inst = hostile_instance("read-secret", "http://127.0.0.1:9/", "", SECRET);
        inst.config.insert("target".into(), value);
        let err = resolve_with_policy(&inst, plugin.clone(), None)
            .err()
            .expect("a secret in a plain field is refused");
        assert!(
            err.to_string()
                .starts_with("config field target is a secret (set from the environment or marked secret), but plugin hostile declares it non-secret"),
            "{err}"
        );
    }
}

/// An operator rule templated with a field the operator left unset does not take the
/// plugin's default (here `http://evil.example/`: the token would go there), and a
/// value that leaves no host (`http://`, so `http://*`) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_templates_never_take_plugin_defaults() {
    let rt = runtime();
    let plugin = load_component(&rt, &hostile_variant("default-base"), "hostile.wasm")
        .await
        .unwrap();
    let mut inst = hostile_instance("fetch-outside", "", "https://evil.example/", SECRET);
    inst.config.remove("baseUrl");
    let operator = r#"{"permissions":[
        {"effect":"ALLOW","actions":["http:GET"],"resources":["{{config.baseUrl}}*"]},
        {"effect":"ALLOW","actions":["secret:Use"],"resources":["secret:token"]},
        {"effect":"ALLOW","actions":["graph:*"],"resources":["type:hostile_*"]}]}"#;
    let err = resolve_with_policy(
        &inst,
        plugin.clone(),
        Some((operator.into(), "op.json".into())),
    )
    .err()
    .expect("a rule templated with a plugin default is refused");
    assert!(
        err.to_string()
            .contains("op.json: $.permissions[0].resources[0]")
            && err
                .to_string()
                .contains("plugin defaults do not count in an operator policy"),
        "{err}"
    );
    // Written by the operator, the same value is refused for having no host.
    inst.config
        .insert("baseUrl".into(), ConfigValue::Text("http://".into()));
    let err = resolve_with_policy(&inst, plugin, Some((operator.into(), "op.json".into())))
        .err()
        .expect("a templated resource with no host is refused");
    assert!(
        err.to_string().contains(
            "$.permissions[0].resources[0]: \"{{config.baseUrl}}*\" becomes \"http://*\", which is not an http(s) URL pattern with a literal host"
        ),
        "{err}"
    );
}

/// Without an operator policy, a manifest naming the metadata service or loopback by
/// address does not open them: only an address the operator wrote does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_alone_never_opens_restricted_addresses() {
    let sim = corral_simulators::SimServer::start(
        std::sync::Arc::new(corral_simulators::attack::AttackSim),
        0,
    )
    .await
    .unwrap();
    let rt = runtime();
    let plugin = load_component(&rt, &hostile_variant("metadata"), "hostile.wasm")
        .await
        .unwrap();
    let loopback = format!("{}/public", sim.addr());
    for (target, host) in [
        ("169.254.169.254/latest/meta-data/", "169.254.169.254"),
        (loopback.as_str(), "127.0.0.1"),
    ] {
        let inst = hostile_instance("fetch-literal", "https://api.example.com/", target, SECRET);
        let report = run_plugin(&rt, plugin.clone(), &inst, None).await;
        assert!(
            step_error(&report).contains(&format!("no rule of the operator's names {host} itself")),
            "{target}: {}",
            step_error(&report)
        );
    }
    assert!(sim.requests().is_empty(), "nothing reached loopback");
    // The operator writing the address in the config opens it.
    let base = format!("{}/", sim.origin());
    let inst = hostile_instance("fetch-literal", &base, &loopback, SECRET);
    let report = run_plugin(&rt, plugin, &inst, None).await;
    assert!(
        step_error(&report).starts_with("status 200"),
        "{}",
        step_error(&report)
    );
}

/// (attack, operator limits or "", what the step error must contain)
const GRAPH_ATTACKS: &[(&str, &str, &str)] = &[
    (
        "mapped-entity",
        "",
        "_mapping is allowed only on a relationship declared mapped",
    ),
    (
        "raw-data-bomb",
        "",
        "_rawData is 2097194 bytes; maxRawDataBytes is 1048576",
    ),
    (
        "graph-bytes",
        "\"maxGraphBytes\": 4194304",
        "after 4 entities: GraphError::Limit(\"maxGraphBytes limit of 4194304 reached",
    ),
    (
        "relationship-flood",
        "\"maxRelationships\": 1000, \"maxEntities\": 10",
        "after 1000 relationships: GraphError::Limit(\"maxRelationships limit of 1000 reached\")",
    ),
    ("forge-console", "", "step failed\nkandji-beside"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graph_attacks_are_bounded_and_kandji_beside_stays_exact() {
    let kandji = KandjiBeside::start(11, 40).await;
    let rt = std::sync::Arc::new(runtime());
    let hostile = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (n, (attack, limits, _)) in GRAPH_ATTACKS.iter().enumerate() {
        let (rt, hostile) = (rt.clone(), hostile.clone());
        let mut inst = hostile_instance(attack, "http://127.0.0.1:9/", "", SECRET);
        inst.id = format!("hostile-{n}");
        let policy = (!limits.is_empty()).then(|| policy(limits));
        tasks.push(tokio::spawn(async move {
            run_plugin(&rt, hostile, &inst, policy.as_deref()).await
        }));
    }
    let kandji_report = kandji.run(&rt).await;
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(
            t.await
                .expect("a hostile run does not take the process down"),
        );
    }

    let out = scratch("graph-out");
    let alone = scratch("graph-alone");
    for r in &reports {
        output::write_run(&out, r, None).unwrap();
    }
    output::write_run(&out, &kandji_report, None).unwrap();
    output::write_run(&alone, &kandji_report, None).unwrap();

    let mut failures = Vec::new();
    for ((attack, _, expect), report) in GRAPH_ATTACKS.iter().zip(&reports) {
        let err = step_error(report);
        if !err.contains(expect) {
            failures.push(format!("{attack}: expected {expect:?} in {err:?}"));
        }
        assert!(!report.succeeded(), "{attack} must not succeed");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    kandji.assert_exact(&kandji_report);
    // Kandji's directory beside the attacks is the one it writes alone.
    assert_eq!(
        files(&out.join("kandji-beside")),
        files(&alone.join("kandji-beside"))
    );
    let mut instances: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    instances.sort();
    assert_eq!(
        instances,
        [
            "hostile-0",
            "hostile-1",
            "hostile-2",
            "hostile-3",
            "hostile-4",
            "kandji-beside"
        ]
    );

    // The relationship flood stopped at its own count, not at maxEntities.
    let flood = &reports[3];
    assert_eq!(flood.graph.relationship_count(), 1000);
    assert_eq!(flood.limit_hits.len(), 1);
    // The graph-bytes attack holds at most the budget.
    let bytes = &reports[2];
    assert_eq!(bytes.graph.entity_count(), 4);

    // A forged console line stays on the hostile instance's own line, escaped.
    let console = output::console_summary(&reports[4], None);
    assert!(!console.contains('\u{1b}'), "{console}");
    assert!(
        !console.lines().any(|l| l.starts_with("kandji-beside")),
        "{console}"
    );
    assert!(
        console.contains("error: step failed\\nkandji-beside"),
        "{console}"
    );
}

/// Reading back what it emitted never tells a guest which guess was a secret; what
/// leaves the host is redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_is_not_an_oracle() {
    let rt = runtime();
    let hostile = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let guesses = format!("guess-one-123,{SECRET},guess-three-45");
    let inst = hostile_instance("secret-oracle", "http://127.0.0.1:9/", &guesses, SECRET);
    let report = run_plugin(&rt, hostile, &inst, None).await;
    assert_eq!(step_error(&report), "0 of 3 guesses came back changed");
    let stored = &report.graph.entities()[1].object["guess"];
    assert_eq!(stored, "[REDACTED]");
    let out = scratch("oracle-out");
    let dest = output::write_run(&out, &report, None).unwrap();
    for f in files(&dest) {
        let text = std::fs::read_to_string(dest.join(&f)).unwrap();
        assert!(!text.contains(SECRET), "{f} holds the secret");
    }
}

/// 64 independent steps, each holding its instance: the run executes at most its share
/// at once and waits for the rest, and a Kandji run in the same small pool is not
/// refused an instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wide_plugin_waits_for_the_pool_instead_of_starving_others() {
    let rt = std::sync::Arc::new(runtime());
    let wide = load_component(&rt, &hostile_variant("wide"), "hostile.wasm")
        .await
        .unwrap();
    let kandji = KandjiBeside::start(12, 20).await;
    let task = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let inst = hostile_instance("hold", "http://127.0.0.1:9/", "", SECRET);
            run_plugin(&rt, wide, &inst, None).await
        })
    };
    let kandji_report = kandji.run(&rt).await;
    let wide_report = task.await.unwrap();
    kandji.assert_exact(&kandji_report);
    assert!(wide_report.succeeded(), "{}", step_error(&wide_report));
    assert_eq!(wide_report.graph.entity_count(), 64);
}

/// Busy-looping steps give their worker threads back every epoch tick: on a runtime
/// with two workers, four spinning guests do not stall a Kandji run beside them until
/// their deadline (20 s: a run that needs a second alone has room on a loaded machine;
/// one stalled behind the spinners would still end only after them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_guests_do_not_stall_the_runs_beside_them() {
    let rt = std::sync::Arc::new(runtime());
    let wide = load_component(&rt, &hostile_variant("wide"), "hostile.wasm")
        .await
        .unwrap();
    let kandji = KandjiBeside::start(13, 10).await;
    let spinning = {
        let rt = rt.clone();
        tokio::spawn(async move {
            let inst = hostile_instance("infinite-loop", "http://127.0.0.1:9/", "", SECRET);
            run_plugin(&rt, wide, &inst, Some(&policy("\"timeoutSeconds\": 20"))).await
        })
    };
    // Let the spinners take both workers first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let kandji_report = kandji.run(&rt).await;
    let spun = spinning.await.unwrap();
    kandji.assert_exact(&kandji_report);
    assert!(step_error(&spun).contains("wall-clock limit of 20 s reached"));
    assert!(
        kandji_report.ended_at_ms < spun.ended_at_ms,
        "Kandji ended only after the spinners were stopped"
    );
}

/// Lists whose elements all point at one 4 MiB string (or body): terabytes if the host
/// copied each element. Every call is refused before it is copied, with its specific
/// limit (`docs/security.md`, "What one run can cost the process"), nothing is sent or
/// stored, and a Kandji run beside the attacks keeps its exact graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliased_lists_are_refused_before_the_host_copies_them() {
    // The hostile manifest's memoryMiB: the most one call may carry.
    let bytes = |call: &str| {
        format!(
            "{call}: the call carries more than {} bytes; at most memoryMiB (32 MiB) are allowed per call",
            32u64 << 20
        )
    };
    let log_count = "log: 200000 fields in one line; at most 64 are allowed".to_string();
    let cases: [(&str, String, Vec<String>); 5] = [
        (
            "alias-emit",
            "limit: emit-entities: 500000 items in one call; at most 100000 are allowed".into(),
            vec!["emit-entities: 500000 items in one call; at most 100000 are allowed".into()],
        ),
        (
            "alias-emit-bytes",
            format!("limit: {}", bytes("emit-relationships")),
            vec![bytes("emit-relationships")],
        ),
        (
            "alias-log",
            "logged twice".into(),
            vec![log_count, bytes("log")],
        ),
        (
            "alias-headers",
            format!(
                "invalid: fetch: 200000 headers in one request; at most 256 are allowed / invalid: {}",
                bytes("fetch-streaming")
            ),
            vec![
                "fetch: 200000 headers in one request; at most 256 are allowed".into(),
                bytes("fetch-streaming"),
            ],
        ),
        (
            "alias-batch",
            format!("1000 results, the first invalid: {}", bytes("fetch-batch")),
            vec![bytes("fetch-batch")],
        ),
    ];

    let kandji = KandjiBeside::start(13, 20).await;
    let rt = std::sync::Arc::new(runtime());
    let hostile = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let attacks = {
        let (rt, hostile) = (rt.clone(), hostile.clone());
        let names: Vec<&'static str> = cases.iter().map(|c| c.0).collect();
        tokio::spawn(async move {
            let mut reports = Vec::new();
            for attack in names {
                let inst = hostile_instance(attack, "http://127.0.0.1:9/", "", SECRET);
                reports.push(run_plugin(&rt, hostile.clone(), &inst, None).await);
            }
            reports
        })
    };
    let kandji_report = kandji.run(&rt).await;
    let reports = attacks
        .await
        .expect("an aliasing run does not take the process down");

    for ((attack, answer, rules), report) in cases.iter().zip(&reports) {
        assert_eq!(&step_error(report), answer, "{attack}");
        let hits: Vec<&str> = report.limit_hits.iter().map(|e| e.rule.as_str()).collect();
        assert_eq!(hits, *rules, "{attack}");
        assert_eq!(report.requests, 0, "{attack}: nothing is sent");
        assert!((report.graph.entity_count() == 0) && (report.graph.relationship_count() == 0));
    }
    // The two refused log lines are dropped and counted, not kept.
    let log = &reports[2];
    assert_eq!(log.log_dropped, 2);
    assert!(
        !log.log.iter().any(|r| r.origin == "guest"),
        "{:?}",
        log.log
    );

    kandji.assert_exact(&kandji_report);
}

/// A component whose start function waits on the host forever is stopped by the
/// manifest read's deadline (5 s), not left to hold `corral run` or `serve` for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_function_that_never_returns_is_bounded_by_the_deadline() {
    let wat = include_str!("../fixtures/hang-at-start.wat");
    let bytes = wat::parse_str(wat).unwrap();
    let rt = runtime();
    let load = load_component(&rt, &bytes, "hang.wasm");
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), load)
        .await
        .expect("loading ends well within a minute")
        .err()
        .expect("the component is refused");
    assert!(matches!(err, PluginError::Manifest { .. }), "{err}");
    assert!(
        err.to_string().contains("wall-clock limit of 5 s reached"),
        "{err}"
    );
}

/// A FIFO or a link to `/dev/zero` in `plugin_dir` is refused without being read (one
/// would block forever, the other never end), and the rest loads and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_never_end_are_refused_in_plugin_dir() {
    let dir = scratch("special-files");
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.wasm")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("fifo.wasm"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let rt = runtime();
    let load = rt.load_plugin_dir(&dir);
    let failures = tokio::time::timeout(std::time::Duration::from_secs(30), load)
        .await
        .expect("loading ends")
        .unwrap();
    assert_eq!(failures.len(), 2);
    for f in &failures {
        assert!(f.to_string().contains("not a regular file"), "{f}");
    }
    let kandji = KandjiBeside::start(14, 5).await;
    kandji.assert_exact(&kandji.run(&rt).await);
}

/// The run's kv store (WIT 0.2) at and past every bound, by a guest: each refused with
/// its kind and recorded as a limit hit where a limit was hit; a key of 1 MiB is looked
/// up without being stored or copied; without a kept state the previous graph is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_store_refuses_past_its_bounds_and_the_run_goes_on() {
    let rt = runtime();
    let hostile = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let inst = hostile_instance("kv-flood", "http://127.0.0.1:9/", "", SECRET);
    let report = run_plugin(&rt, hostile, &inst, None).await;
    assert_eq!(
        step_error(&report),
        "invalid, invalid, limit, stored, stored, stored, limit, 10000 keys then limit, \
         long key get: None, previous: true"
    );
    let kv_hits: Vec<&str> = report
        .limit_hits
        .iter()
        .filter(|e| e.resource == "kv")
        .map(|e| e.rule.as_str())
        .collect();
    assert_eq!(kv_hits.len(), 3, "{kv_hits:?}");
    assert!(
        kv_hits[0].contains("a value of 4194305 bytes"),
        "{kv_hits:?}"
    );
    assert!(kv_hits[1].contains("at most 16777216"), "{kv_hits:?}");
    assert!(kv_hits[2].contains("10000 keys"), "{kv_hits:?}");
}
