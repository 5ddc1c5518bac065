//! Bodies read as they stream: every line arrives, and `maxResponseBytes` still holds.

use corral_e2e::*;
use corral_simulators::SimServer;
use corral_simulators::attack::{AttackSim, LINES};
use std::sync::Arc;

const POLICY: &str = r#"{"permissions":[{"effect":"ALLOW","actions":["*"],"resources":["*"]}],
  "limits":{"allowPrivateNetworks":true,"maxResponseBytes":1048576}}"#;

async fn attack(server: &SimServer, attack: &str) -> String {
    let rt = runtime();
    let plugin = load_component(&rt, components::get("hostile"), "hostile.wasm")
        .await
        .unwrap();
    let inst = hostile_instance(
        attack,
        &format!("{}/", server.origin()),
        "",
        "streaming-secret",
    );
    let report = run_plugin(&rt, plugin, &inst, Some(POLICY)).await;
    report.steps[0].error.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_yields_every_line() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let err = attack(&server, "stream-lines").await;
    assert_eq!(
        err,
        format!("status 200: {LINES} lines, last {{\"n\":{}}}", LINES - 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_is_cut_at_the_response_limit() {
    let server = SimServer::start(Arc::new(AttackSim), 0).await.unwrap();
    let err = attack(&server, "stream-big").await;
    assert!(
        err.starts_with("status 200 then 0 lines then response larger than 1048576 bytes"),
        "{err}"
    );
}
