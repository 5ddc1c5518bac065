//! Each resource limit, set by an operator policy, stops the hostile plugin at exactly
//! the limit and is counted as a limit hit.

use corral::run::RunReport;
use corral_e2e::*;
use corral_simulators::SimServer;
use corral_simulators::attack::AttackSim;
use std::sync::Arc;
use std::time::Duration;

/// Allows everything (the simulator is on loopback) but sets `limits`.
fn policy(limits: &str) -> String {
    format!(
        r#"{{"permissions":[{{"effect":"ALLOW","actions":["*"],"resources":["*"]}}],
            "limits":{{"allowPrivateNetworks":true,{limits}}}}}"#
    )
}

async fn attack(server: &SimServer, attack: &str, limits: &str) -> RunReport {
    let rt = runtime();
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let inst = hostile_instance(
        attack,
        &format!("{}/", server.origin()),
        "",
        "limits-secret-value",
    );
    run_plugin(&rt, plugin, &inst, Some(&policy(limits))).await
}

fn step_error(r: &RunReport) -> String {
    r.steps[0].error.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_stops_at_the_limit() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let r = attack(&server, "request-flood", r#""maxRequests": 10"#).await;
    assert_eq!(
        step_error(&r),
        "10 sent; rate limited by host: maxRequests limit of 10 reached"
    );
    assert_eq!(server.requests().len(), 10);
    assert_eq!(r.limit_hits.len(), 40);
    assert_eq!(r.limit_hits[0].rule, "maxRequests limit of 10 reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_entities_stops_at_the_limit() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let r = attack(&server, "entity-flood", r#""maxEntities": 10"#).await;
    assert_eq!(
        step_error(&r),
        "GraphError::Limit(\"maxEntities limit of 10 reached\")"
    );
    assert_eq!(r.graph.entity_count(), 10);
    assert_eq!(r.limit_hits.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_bounded() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    server.set_delay(Duration::from_millis(100));
    let r = attack(
        &server,
        "concurrency",
        r#""maxConcurrentRequests": 3, "requestsPerSecond": 1000"#,
    )
    .await;
    assert_eq!(step_error(&r), "12 answered");
    assert_eq!(server.max_in_flight(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_wall_clock_limits_are_counted() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let r = attack(&server, "memory-bomb", r#""memoryMiB": 16"#).await;
    assert_eq!(step_error(&r), "memory limit of 16 MiB reached");
    assert_eq!(
        (r.limit_hits[0].resource.as_str(), r.limit_hits.len()),
        ("memoryMiB", 1)
    );

    let r = attack(&server, "infinite-loop", r#""timeoutSeconds": 1"#).await;
    assert_eq!(step_error(&r), "wall-clock limit of 1 s reached");
    assert_eq!(
        (r.limit_hits[0].resource.as_str(), r.limit_hits.len()),
        ("timeoutSeconds", 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_size_is_enforced_while_streaming() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let r = attack(&server, "big-response", r#""maxResponseBytes": 65536"#).await;
    assert_eq!(step_error(&r), "response larger than 65536 bytes");
    assert_eq!(
        r.limit_hits[0].rule,
        "maxResponseBytes limit of 65536 reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rate_is_held_to_the_token_bucket() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    // 12 requests at once, 4 a second with a burst of 4: the last cannot leave before
    // 8 more tokens have been earned, 2 s after the first.
    let r = attack(
        &server,
        "concurrency",
        r#""requestsPerSecond": 4, "maxConcurrentRequests": 12"#,
    )
    .await;
    assert_eq!(step_error(&r), "12 answered");
    let times: Vec<Duration> = server.requests().iter().map(|q| q.at).collect();
    let spread = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    assert!(
        spread >= Duration::from_millis(1900),
        "12 requests in {spread:?}"
    );
}
