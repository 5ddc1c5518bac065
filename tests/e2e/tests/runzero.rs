//! runZero in the real host against the simulator, in both auth modes.

use corral::config::ConfigValue;
use corral::run::StepStatus;
use corral_e2e::*;
use corral_simulators::FaultRule;
use corral_simulators::runzero::{API_PREFIX, RunZeroConfig, RunZeroSim};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

const KEY: &str = "e2e-runzero-account-key-77";

fn sim() -> Arc<RunZeroSim> {
    RunZeroSim::new(&RunZeroConfig {
        seed: 4,
        account_key: KEY.into(),
        ..RunZeroConfig::default()
    })
}

fn instance(
    id: &str,
    server: &corral_simulators::SimServer,
    secret: (&str, &str),
) -> corral::config::InstanceConfig {
    plugin_instance(
        id,
        "runzero",
        vec![
            (
                "baseUrl",
                ConfigValue::Text(format!("{}{API_PREFIX}", server.origin())),
            ),
            (secret.0, ConfigValue::Text(secret.1.into())),
        ],
    )
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// The spec's keys for `orgs` (the organizations whose data is collected).
fn expected(sim: &RunZeroSim, account: &str, orgs: &[&Value], api_mode: bool) -> KeysByType {
    let mut out = KeysByType::new();
    let mut add = |t: &str, k: String| {
        out.entry(t.to_string()).or_default().insert(k);
    };
    add("rumble_account", account.into());
    let org_ids: BTreeSet<String> = if api_mode {
        ids(&sim.orgs).into_iter().collect()
    } else {
        BTreeSet::new()
    };
    let scoped: BTreeSet<&str> = orgs.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let sites: Vec<&Value> = sim
        .sites
        .iter()
        .filter(|s| api_mode || scoped.contains(s["organization_id"].as_str().unwrap()))
        .collect();
    let site_ids: BTreeSet<&str> = sites.iter().map(|s| s["id"].as_str().unwrap()).collect();
    if api_mode {
        for o in &org_ids {
            add("rumble_organization", o.clone());
            add(
                "rumble_account_has_organization",
                format!("{account}|has|{o}"),
            );
        }
        for u in &sim.users {
            let id = u["id"].as_str().unwrap();
            add("rumble_user", id.into());
            add("rumble_account_has_user", format!("{account}|has|{id}"));
            add(
                "rumble_user_is_person",
                format!("{id}|is|person:{}", u["email"].as_str().unwrap()),
            );
            for org in u["org_roles"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|o| org_ids.contains(*o))
            {
                add(
                    "rumble_user_assigned_organization",
                    format!("{id}|assigned|{org}"),
                );
            }
        }
    }
    for s in &sites {
        let id = s["id"].as_str().unwrap();
        add("rumble_site", id.into());
        add("rumble_account_has_site", format!("{account}|has|{id}"));
        let org = s["organization_id"].as_str().unwrap();
        if org_ids.contains(org) {
            add("rumble_organization_has_site", format!("{org}|has|{id}"));
        }
    }
    let exporting: BTreeSet<&str> = orgs
        .iter()
        .filter(|o| o["export_token"] != "")
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    for a in sim
        .assets
        .iter()
        .filter(|a| exporting.contains(a["organization_id"].as_str().unwrap()))
    {
        let id = a["id"].as_str().unwrap();
        add("rumble_asset", id.into());
        let site = a["site_id"].as_str().unwrap();
        if site_ids.contains(site) {
            add("rumble_site_has_asset", format!("{site}|has|{id}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_key_mode_collects_everything() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    let rt = runtime();
    let plugin = rt.plugin("runzero").await.unwrap();
    let report = run_plugin(
        &rt,
        plugin,
        &instance("rz-api", &server, ("accountAPIKey", KEY)),
        None,
    )
    .await;

    assert!(
        report.succeeded(),
        "{:?} {:?}",
        report.validation,
        report
            .steps
            .iter()
            .map(|s| (&s.info.id, &s.error))
            .collect::<Vec<_>>()
    );
    let orgs: Vec<&Value> = sim.orgs.iter().collect();
    assert_eq!(
        keys_by_type(&report),
        expected(&sim, &sim.client_id, &orgs, true)
    );
    // Export and download tokens are nowhere in the graph.
    let everything = format!(
        "{:?} {:?}",
        report
            .graph
            .entities
            .iter()
            .map(|e| &e.object)
            .collect::<Vec<_>>(),
        report.log
    );
    for o in &sim.orgs {
        for f in ["export_token", "download_token"] {
            let t = o[f].as_str().unwrap();
            assert!(t.is_empty() || !everything.contains(t), "{f} stored");
        }
    }
    assert!(
        !everything.contains("secret page"),
        "service banners are not kept"
    );
    assert!(!everything.contains(KEY));
    // The org without an export token is a warning; each other org's export is read once.
    assert!(report.log.iter().any(|l| {
        l.message
            .starts_with("Organization does not have export token")
    }));
    let exports = server
        .requests()
        .iter()
        .filter(|r| r.target.ends_with("assets.jsonl"))
        .count();
    assert_eq!(exports, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_token_mode_disables_the_account_steps() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    let token = sim.orgs[0]["export_token"].as_str().unwrap().to_string();
    let rt = runtime();
    let plugin = rt.plugin("runzero").await.unwrap();
    let report = run_plugin(
        &rt,
        plugin,
        &instance("rz-export", &server, ("exportToken", &token)),
        None,
    )
    .await;

    assert!(
        report.succeeded(),
        "{:?}",
        report
            .steps
            .iter()
            .map(|s| (&s.info.id, &s.error))
            .collect::<Vec<_>>()
    );
    let disabled: BTreeSet<&str> = report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Disabled)
        .map(|s| s.info.id.as_str())
        .collect();
    assert_eq!(
        disabled,
        BTreeSet::from([
            "fetch-users",
            "fetch-organization",
            "build-user-organization-relationships",
            "build-organization-site-relationships"
        ])
    );
    assert_eq!(
        keys_by_type(&report),
        expected(&sim, &sim.client_id, &[&sim.orgs[0]], false)
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.target.contains("/account/"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new("/account/users", 429, 1).retry_after(1));
    server.add_fault(FaultRule::new("assets.jsonl", 503, 1));
    let rt = runtime();
    let plugin = rt.plugin("runzero").await.unwrap();
    let report = run_plugin(
        &rt,
        plugin,
        &instance("rz-retry", &server, ("accountAPIKey", KEY)),
        None,
    )
    .await;
    assert!(
        report.succeeded(),
        "{:?}",
        report
            .steps
            .iter()
            .map(|s| (&s.info.id, &s.error))
            .collect::<Vec<_>>()
    );
    let orgs: Vec<&Value> = sim.orgs.iter().collect();
    assert_eq!(
        keys_by_type(&report),
        expected(&sim, &sim.client_id, &orgs, true)
    );
    assert_eq!(server.requests().iter().filter(|r| r.injected).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_validation() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    let rt = runtime();
    let plugin = rt.plugin("runzero").await.unwrap();
    let wrong = "wrong-runzero-key-3131";
    let report = run_plugin(
        &rt,
        plugin,
        &instance("rz-bad", &server, ("accountAPIKey", wrong)),
        None,
    )
    .await;
    let err = report.validation.clone().unwrap_err();
    assert!(
        err.contains("Provider authentication failed at") && err.ends_with("401 Unauthorized"),
        "{err}"
    );
    assert!(!format!("{err} {:?}", report.log).contains(wrong));
    assert!(report.steps.is_empty());
}
