//! The post-DNS address rules, with the Kandji plugin as the client: loopback, private
//! and metadata addresses are refused unless the grant allows private networks or the
//! allowing rule names the IP literal or `localhost` itself.

use corral::config::ConfigValue;
use corral_e2e::*;
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

const TOKEN: &str = "address-test-token-1";

fn token() -> ConfigValue {
    ConfigValue::Text(TOKEN.into())
}

/// A runtime where `name` resolves to `ip`.
fn runtime_with_host(name: &str, ip: &str) -> corral::plugin::runtime::Runtime {
    let mut rt = runtime();
    let ip: IpAddr = ip.parse().unwrap();
    rt.hosts = Arc::new(HashMap::from([(name.to_string(), vec![ip])]));
    rt
}

async fn kandji_sim() -> (Arc<KandjiSim>, corral_simulators::SimServer) {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 3,
        devices: 5,
        token: TOKEN.into(),
    });
    let server = sim.start(0).await.unwrap();
    (sim, server)
}

const PRIVATE_OK: &str = r#"{"permissions":[{"effect":"ALLOW","actions":["*"],"resources":["*"]}],
  "limits":{"allowPrivateNetworks":true}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostname_resolving_to_loopback_is_refused_after_dns() {
    let (_sim, server) = kandji_sim().await;
    let rt = runtime_with_host("kandji.sim.test", "127.0.0.1");
    let url = format!(
        "http://kandji.sim.test:{}{API_PREFIX}",
        server.addr().port()
    );
    let report = run_kandji(&rt, &kandji_instance("addr-dns", &url, token()), None).await;

    let err = report.validation.clone().unwrap_err();
    assert!(
        err.contains("kandji.sim.test resolves only to restricted addresses: 127.0.0.1 (loopback)"),
        "{err}"
    );
    assert_eq!(
        server.requests().len(),
        0,
        "nothing reached the loopback server"
    );
    assert_eq!(report.denials.len(), 1);
    assert_eq!(report.denials[0].action, "http:connect");

    // The operator may allow private networks explicitly.
    let report = run_kandji(
        &rt,
        &kandji_instance("addr-dns-ok", &url, token()),
        Some(PRIVATE_OK),
    )
    .await;
    assert!(report.succeeded(), "{:?}", report.validation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostname_resolving_to_cloud_metadata_is_refused() {
    let rt = runtime_with_host("metadata.sim.test", "169.254.169.254");
    let url = format!("http://metadata.sim.test:9{API_PREFIX}");
    let report = run_kandji(&rt, &kandji_instance("addr-meta", &url, token()), None).await;
    let err = report.validation.clone().unwrap_err();
    assert!(err.contains("169.254.169.254 (cloud metadata)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_literal_is_reachable_only_when_the_allowing_rule_names_it() {
    let (sim, server) = kandji_sim().await;
    let rt = runtime();
    let url = format!("{}{API_PREFIX}", server.origin());

    // The plugin's request names 127.0.0.1 (through {{config.apiUrl}}): allowed.
    let report = run_kandji(&rt, &kandji_instance("addr-literal", &url, token()), None).await;
    assert!(report.succeeded(), "{:?}", report.validation);
    assert_eq!(keys_by_type(&report), expected_kandji_keys(&sim.data()));

    // An operator whose allowing rule is a wildcard has not named it: refused before sending.
    server.clear_requests();
    let wildcard = r#"{"permissions":[{"effect":"ALLOW","actions":["*"],"resources":["*"]}]}"#;
    let report = run_kandji(
        &rt,
        &kandji_instance("addr-wild", &url, token()),
        Some(wildcard),
    )
    .await;
    let err = report.validation.clone().unwrap_err();
    assert!(
        err.contains("127.0.0.1 is a loopback address; allowPrivateNetworks is false"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_named_by_the_rule_is_allowed() {
    let (_sim, server) = kandji_sim().await;
    let rt = runtime();
    let url = format!("http://localhost:{}{API_PREFIX}", server.addr().port());
    let report = run_kandji(&rt, &kandji_instance("addr-localhost", &url, token()), None).await;
    assert!(report.succeeded(), "{:?}", report.validation);
}
