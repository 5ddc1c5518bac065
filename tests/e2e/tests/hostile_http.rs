//! The hostile plugin attacks the `http` import through wasm, beside a well-behaved
//! Kandji run: it tries to frame its own requests, to use methods outside the documented
//! set, and to learn the credential from a provider that echoes it (in a redirect, a
//! body or a header, raw or encoded). Each attack must end in its specific answer, the
//! provider must see only what the host allowed, nothing the host writes may hold the
//! secret, and the Kandji graph must stay exact.

use corral::config::ConfigValue;
use corral::run::RunReport;
use corral_e2e::*;
use corral_simulators::attack::AttackSim;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use corral_simulators::{LoggedRequest, SimServer};
use std::sync::Arc;

/// Has a `/` (escaped `\/` in JSON, `%2F` in a URL) to exercise every form.
const SECRET: &str = "hos/tile-http-secret-8812";
const KANDJI_TOKEN: &str = "kandji-beside-hostile-http-token";

/// One attack on a simulator of its own: its step error must contain `expect`, and the
/// simulator must have seen exactly the paths `seen` (without query).
struct Case {
    attack: &'static str,
    target: String,
    expect: String,
    seen: Vec<&'static str>,
}

fn case(attack: &'static str, target: &str, expect: &str, seen: &[&'static str]) -> Case {
    Case {
        attack,
        target: target.into(),
        expect: expect.into(),
        seen: seen.to_vec(),
    }
}

/// `{origin}` in a case's expectation is its simulator's origin.
fn cases() -> Vec<Case> {
    let framed =
        |h: &str| format!("invalid request: the {h} header is set by the host, not the plugin");
    let refused = |m: &str| {
        format!(
            "invalid request: method \"{m}\" is not allowed: use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        )
    };
    let leak = "denied: http:GET http://elsewhere.example/leak?v=[REDACTED] denied: not requested by the plugin";
    let landing = "status 200 url {origin}/api/landing?v=[REDACTED]";
    let mut cases = vec![
        case(
            "smuggle",
            "",
            &format!("{}; status 200", framed("Content-Length")),
            &["/api/items"],
        ),
        case(
            "redirect-echo",
            "form=raw&to=http://elsewhere.example/leak",
            leak,
            &["/api/redirect-echo"],
        ),
        case(
            "redirect-echo",
            "form=percent-mixed&to=http://elsewhere.example/leak",
            leak,
            &["/api/redirect-echo"],
        ),
        case(
            "redirect-echo",
            "form=raw&to=/api/landing",
            landing,
            &["/api/redirect-echo", "/api/landing"],
        ),
        case(
            "redirect-echo",
            "form=percent-slash&to=/api/landing",
            landing,
            &["/api/redirect-echo", "/api/landing"],
        ),
        case(
            "redirect-echo-stream",
            "form=raw&to=/api/landing",
            landing,
            &["/api/redirect-echo", "/api/landing"],
        ),
    ];
    for h in [
        "Content-Length",
        "transfer-encoding",
        "Connection",
        "Host",
        "Upgrade",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Keep-Alive",
    ] {
        cases.push(case("frame-header", &format!("{h}: 33"), &framed(h), &[]));
    }
    for m in ["CONNECT", "TRACE", "PURGE"] {
        cases.push(case("method-any", m, &refused(m), &[]));
    }
    for form in ["raw", "json-u", "json-slash", "percent", "percent-mixed"] {
        let expect = r#"{"v":"[REDACTED]"} | [REDACTED]"#;
        cases.push(case("echo-encoded", form, expect, &["/api/echo-encoded"]));
    }
    cases
}

fn step_error(r: &RunReport) -> String {
    r.steps
        .first()
        .and_then(|s| s.error.clone())
        .unwrap_or_default()
}

/// Everything the host wrote about a run: log lines, denials, limit hits, rejections.
fn host_records(r: &RunReport) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        r.log, r.denials, r.limit_hits, r.rejections
    )
}

fn paths(seen: &[LoggedRequest]) -> Vec<String> {
    seen.iter()
        .map(|r| r.target.split('?').next().unwrap_or_default().to_string())
        .collect()
}

/// A run of the hostile plugin's `attack` against `base` with `target`.
fn hostile(attack: &str, base: &str, target: &str, n: usize) -> corral::config::InstanceConfig {
    let mut inst = hostile_instance(attack, base, target, SECRET);
    inst.id = format!("hostile-http-{n}");
    inst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_attacks_are_refused_and_never_see_the_secret() {
    let kandji = KandjiSim::new(&KandjiConfig {
        seed: 11,
        devices: 40,
        token: KANDJI_TOKEN.into(),
    });
    let kandji_server = kandji.start(0).await.unwrap();
    let rt = Arc::new(runtime());
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();

    let mut runs = Vec::new();
    for (n, c) in cases().into_iter().enumerate() {
        let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
        let inst = hostile(c.attack, &format!("{}/", server.origin()), &c.target, n);
        let (rt, plugin) = (rt.clone(), plugin.clone());
        let task = tokio::spawn(async move { run_plugin(&rt, plugin, &inst, None).await });
        runs.push((c, server, task));
    }
    let kandji_task = {
        let rt = rt.clone();
        let url = format!("{}{API_PREFIX}", kandji_server.origin());
        tokio::spawn(async move {
            let inst = kandji_instance(
                "kandji-beside-http",
                &url,
                ConfigValue::Text(KANDJI_TOKEN.into()),
            );
            run_kandji(&rt, &inst, None).await
        })
    };

    let mut failures = Vec::new();
    for (c, server, task) in runs {
        let report = task.await.expect("a run task does not panic");
        let err = step_error(&report);
        let name = format!("{} {:?}", c.attack, c.target);
        let expect = c.expect.replace("{origin}", &server.origin());
        if !err.contains(&expect) {
            failures.push(format!("{name}: expected {expect:?} in {err:?}"));
        }
        let seen = paths(&server.requests());
        if seen != c.seen {
            failures.push(format!(
                "{name}: the provider saw {seen:?}, not {:?}",
                c.seen
            ));
        }
        let everything = format!("{err} {}", host_records(&report));
        for leak in [SECRET, "tile-http-secret", "hos%2Ftile"] {
            if everything.contains(leak) {
                failures.push(format!("{name}: {leak:?} leaked in {everything}"));
            }
        }
        // A refused redirect is counted, scrubbed, with the URL it led to.
        if c.expect.starts_with("denied:") {
            let resources: Vec<&str> = report.denials.iter().map(|d| d.resource.as_str()).collect();
            if resources != ["http://elsewhere.example/leak?v=[REDACTED]"] {
                failures.push(format!("{name}: denials {resources:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let kandji_report = kandji_task.await.unwrap();
    assert!(
        kandji_report.succeeded(),
        "{:?}",
        step_error(&kandji_report)
    );
    assert_eq!(
        keys_by_type(&kandji_report),
        expected_kandji_keys(&kandji.data())
    );
}

/// The guest's own text comes back verbatim, even when it is the secret: answering
/// `[REDACTED]` would confirm a guess. What the host writes is still scrubbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessed_secret_is_not_confirmed_by_redaction() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let rt = runtime();
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    // A wrong guess comes back as the guest wrote it.
    let wrong = "https://evil.example/?guess=not-the-secret-value";
    let inst = hostile(
        "redaction-oracle",
        &format!("{}/", server.origin()),
        wrong,
        0,
    );
    let report = run_plugin(&rt, plugin.clone(), &inst, None).await;
    assert_eq!(
        step_error(&report),
        "guess echoed verbatim: true, [REDACTED] seen: false"
    );
    // The right one is never sent anywhere and never shows as `[REDACTED]`: the run's
    // HTTP closes (one bit per run, recorded for the operator).
    let guess = format!("https://evil.example/?guess={SECRET}");
    let inst = hostile(
        "redaction-oracle",
        &format!("{}/", server.origin()),
        &guess,
        0,
    );
    let report = run_plugin(&rt, plugin, &inst, None).await;
    assert_eq!(
        step_error(&report),
        "guess echoed verbatim: false, [REDACTED] seen: false"
    );
    let records = host_records(&report);
    assert!(!records.contains("tile-http-secret"), "{records}");
    assert_eq!(
        report.denials[0].rule,
        "the plugin sent a secret value it was never given; HTTP is closed for the rest of this run"
    );
    assert!(server.requests().is_empty());
}

/// One batch of 40 responses of 500 kB under a 4 MiB `maxInFlightBytes`: the host holds
/// only as many bodies as fit, and refuses the rest at once with the limit named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_large_responses_is_held_to_the_bytes_in_flight() {
    const POLICY: &str = r#"{"permissions":[{"effect":"ALLOW","actions":["*"],"resources":["*"]}],
      "limits":{"allowPrivateNetworks":true,"maxInFlightBytes":4194304,
                "requestsPerSecond":1000,"maxConcurrentRequests":16}}"#;
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let rt = runtime();
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let inst = hostile(
        "in-flight-batch",
        &format!("{}/", server.origin()),
        "40:500000",
        0,
    );
    let report = run_plugin(&rt, plugin, &inst, Some(POLICY)).await;
    assert_eq!(
        step_error(&report),
        "8 ok, 32 failed: rate limited by host: maxInFlightBytes limit of 4194304 reached: \
         the run already holds that many bytes of response bodies"
    );
    assert_eq!(report.limit_hits.len(), 32);
}
