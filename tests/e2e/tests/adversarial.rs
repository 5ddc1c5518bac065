//! Hostile plugins, built like real ones, attack the sandbox in the same host process as
//! a well-behaved Kandji run. Each attack must end in its specific error, and the Kandji
//! graph must stay exact.

use corral::capabilities::log::MAX_LINES;
use corral::config::ConfigValue;
use corral::plugin::PluginError;
use corral::run::RunReport;
use corral_e2e::*;
use corral_simulators::SimServer;
use corral_simulators::attack::AttackSim;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Awaits spawned runs in order (they run concurrently as tasks).
async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("a run task does not panic"));
    }
    out
}

const SECRET: &str = "hostile-instance-secret-4471";
const KANDJI_TOKEN: &str = "kandji-beside-hostile-token";

/// (attack, what its step error must contain)
fn expectations(attack_port: u16) -> Vec<(&'static str, String, String)> {
    let base = format!("http://127.0.0.1:{attack_port}/");
    let e = |attack: &'static str, target: &str, expect: &str| {
        (attack, target.to_string(), expect.to_string())
    };
    vec![
        e("infinite-loop", "", "wall-clock limit of 3 s reached"),
        e("memory-bomb", "", "memory limit of 32 MiB reached"),
        e("deep-recursion", "", "guest trapped"),
        e("panic", "", "guest trapped"),
        e(
            "fetch-outside",
            "https://evil.example/x",
            "denied: http:GET https://evil.example/x denied: not requested by the plugin",
        ),
        e(
            "redirect",
            "http://evil.example/stolen",
            "denied: http:GET http://evil.example/stolen denied",
        ),
        e(
            "method",
            "",
            &format!("denied: http:DELETE {base}api/items denied"),
        ),
        e(
            "secret-exfiltration",
            "",
            "denied: secret:Use secret:token denied",
        ),
        e(
            "secret-header",
            "",
            "denied: secret:Use secret:token denied",
        ),
        e("read-secret", "", "config field token is a secret"),
        e(
            "foreign-type",
            "",
            "graph:EmitEntity type:kandji_device denied",
        ),
        e("nested-object", "", "property owner is a nested object"),
        e(
            "short-key",
            "",
            "_key \"123456789\" is shorter than 10 characters",
        ),
        e("duplicate-key", "", "duplicate _key \"hostile-dup-01\""),
        e(
            "unknown-class",
            "",
            "_class \"Gadget\" is not a known data-model class",
        ),
        e(
            "dangling-relationship",
            "",
            "_fromEntityKey \"hostile-a-000\" names no entity of this run",
        ),
        e("big-response", "", "response larger than 1048576 bytes"),
        e("slow-drip", "", "timeout:"),
        e("log-flood", "", "flooded"),
        e("stdout", "", "printed"),
        e("echo-secret", "", "\"authorization\":\"Bearer [REDACTED]\""),
        e("echo-basic", "", "\"authorization\":\"Basic [REDACTED]\""),
    ]
}

fn step_error(r: &RunReport) -> String {
    r.steps
        .first()
        .and_then(|s| s.error.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_attack_is_contained_and_kandji_stays_exact() {
    let kandji = KandjiSim::new(&KandjiConfig {
        seed: 5,
        devices: 60,
        token: KANDJI_TOKEN.into(),
    });
    let kandji_server = kandji.start(0).await.unwrap();
    let attack_server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let port = attack_server.addr().port();
    let mut rt = runtime();
    let hosts: HashMap<String, Vec<IpAddr>> = HashMap::from([
        ("loopback.test".into(), vec!["127.0.0.1".parse().unwrap()]),
        (
            "metadata.test".into(),
            vec!["169.254.169.254".parse().unwrap()],
        ),
    ]);
    rt.hosts = Arc::new(hosts);
    let rt = Arc::new(rt);
    let hostile = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();

    let mut tasks = Vec::new();
    let mut names = Vec::new();
    let base = format!("http://127.0.0.1:{port}/");
    let mut cases: Vec<(String, String, String, String)> = expectations(port)
        .into_iter()
        .map(|(a, t, e)| (a.to_string(), base.clone(), t, e))
        .collect();
    // Hostnames that resolve to loopback and to the metadata service: the policy allows
    // the URL, the address rules refuse it after DNS.
    cases.push((
        "fetch-outside".into(),
        format!("http://loopback.test:{port}/"),
        format!("http://loopback.test:{port}/api/x"),
        "loopback.test resolves only to restricted addresses: 127.0.0.1 (loopback)".into(),
    ));
    cases.push((
        "fetch-outside".into(),
        "http://metadata.test/".into(),
        "http://metadata.test/latest/meta-data/".into(),
        "169.254.169.254 (cloud metadata)".into(),
    ));
    for (n, (attack, base_url, target, expect)) in cases.iter().cloned().enumerate() {
        let (rt, hostile) = (rt.clone(), hostile.clone());
        let mut inst = hostile_instance(&attack, &base_url, &target, SECRET);
        inst.id = format!("hostile-{n}");
        names.push((attack, expect));
        tasks.push(tokio::spawn(async move {
            run_plugin(&rt, hostile, &inst, None).await
        }));
    }
    let kandji_task = {
        let rt = rt.clone();
        let url = format!("{}{API_PREFIX}", kandji_server.origin());
        tokio::spawn(async move {
            let inst = kandji_instance(
                "kandji-beside",
                &url,
                ConfigValue::Text(KANDJI_TOKEN.into()),
            );
            run_kandji(&rt, &inst, None).await
        })
    };
    let reports = join_all(tasks).await;
    let kandji_report = kandji_task.await.unwrap();

    assert!(
        kandji_report.succeeded(),
        "{:?}",
        kandji_report
            .steps
            .iter()
            .map(|s| &s.error)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        keys_by_type(&kandji_report),
        expected_kandji_keys(&kandji.data())
    );

    let mut failures = Vec::new();
    for ((attack, expect), report) in names.iter().zip(&reports) {
        let err = step_error(report);
        if !err.contains(expect.as_str()) {
            failures.push(format!("{attack}: expected {expect:?} in {err:?}"));
        }
        assert!(!report.succeeded(), "{attack} must not succeed");
        let everything = format!(
            "{err} {:?} {:?} {:?}",
            report.log, report.denials, report.rejections
        );
        assert!(!everything.contains(SECRET), "{attack}: the secret leaked");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let by_attack = |a: &str| &reports[names.iter().position(|(n, _)| n == a).unwrap()];
    // Secrets aimed at a forbidden URL are refused before anything is sent.
    let seen = attack_server.requests();
    assert!(
        !seen.iter().any(|r| r.target == "/public"),
        "a request carrying the secret was sent"
    );
    // The method and secret refusals are counted as denials with their rule.
    assert_eq!(by_attack("method").denials.len(), 1);
    assert_eq!(
        by_attack("secret-exfiltration").denials[0].action,
        "secret:Use"
    );
    // The redirect's first hop was sent and its second refused.
    assert!(seen.iter().any(|r| r.target.starts_with("/redirect")));
    // The big response was cut while streaming.
    assert_eq!(by_attack("big-response").limit_hits.len(), 1);
    // A provider echoing the credential back hands the guest only `[REDACTED]`.
    let echo = by_attack("echo-secret");
    let stored = &echo.graph.entities()[0].object["echoed"];
    assert!(
        stored.as_str().unwrap().contains("Bearer [REDACTED]"),
        "{stored}"
    );
    // Log flooding is capped, and counted.
    let flood = by_attack("log-flood");
    assert_eq!(flood.log.len() as u64, MAX_LINES);
    assert!(
        flood.log_dropped >= 100_000 - MAX_LINES,
        "{}",
        flood.log_dropped
    );
    // Guest stdout and stderr become log lines of the instance.
    let out = by_attack("stdout");
    for (origin, text) in [
        ("stdout", "hello from guest stdout"),
        ("stderr", "hello from guest stderr"),
    ] {
        assert!(
            out.log
                .iter()
                .any(|l| l.origin == origin && l.message == text),
            "{origin}: {:?}",
            out.log
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_built_for_another_interface_are_refused_at_load() {
    let rt = runtime();
    let err = load_component(&rt, components::get("wrong-wit"), "wrong-wit.wasm")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::Link { .. }), "{err}");
    assert!(err.to_string().contains("built against a WIT version this host does not offer (this host offers corral:integration@0.1.0 and @0.2.0)"), "{err}");

    let err = load_component(&rt, components::get("extra-import"), "extra-import.wasm")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::Link { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("imports something this host does not offer"),
        "{err}"
    );
    assert!(err.to_string().contains("evil:extras/shell"), "{err}");

    let err = load_component(&rt, b"\0asm\x01\0\0\0", "module.wasm")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::NotComponent { .. }), "{err}");
}
