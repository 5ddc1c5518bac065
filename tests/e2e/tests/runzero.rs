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
            if let Some(email) = readable(&u["email"]) {
                add(
                    "rumble_user_is_person",
                    format!("{id}|is|person:{}", email.to_lowercase()),
                );
            }
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

    assert_run_succeeded(&report);
    let orgs: Vec<&Value> = sim.orgs.iter().collect();
    assert_eq!(
        keys_by_type(&report),
        expected(&sim, &sim.client_id, &orgs, true)
    );
    // Issue 12 item 3: the standard properties the data model's classes require, from the
    // provider's fields, on known records.
    let entity = |k: &Value| {
        report
            .graph
            .entity(k.as_str().unwrap())
            .expect("stored")
            .object
    };
    assert_eq!(
        entity(&Value::from(sim.client_id.clone()))["vendor"],
        "runZero"
    );
    let exporting: BTreeSet<&str> = sim
        .orgs
        .iter()
        .filter(|o| o["export_token"] != "")
        .filter_map(|o| o["id"].as_str())
        .collect();
    let a = sim
        .assets
        .iter()
        .find(|a| {
            a["organization_id"]
                .as_str()
                .is_some_and(|o| exporting.contains(o))
                && a["names"][0]
                    .as_str()
                    .is_some_and(|n| n.starts_with("HOST-"))
                && a["macs"].as_array().is_some_and(|m| !m.is_empty())
                && a["os"].as_str().is_some_and(|o| o.contains("Windows"))
        })
        .expect("premise: a named Windows asset with a MAC");
    let e = entity(&a["id"]);
    assert_eq!(e["ipv4Addresses"], a["addresses"]);
    assert_eq!(e["privateIpAddresses"], a["addresses"], "10.0.x.y");
    assert_eq!(e["publicIpAddresses"], Value::Null);
    assert_eq!(e["ipv6Addresses"], Value::Null);
    assert_eq!(e["macAddresses"], a["macs"]);
    assert_eq!(e["hostname"], a["names"][0]);
    assert_eq!(e["osType"], "windows");
    let u = sim
        .users
        .iter()
        .find(|u| u["first_name"].is_null())
        .expect("premise: a user without a first name");
    let e = entity(&u["id"]);
    let full = u["name"].as_str().unwrap();
    assert_eq!(
        e["firstName"],
        full.split_whitespace().next().unwrap(),
        "the first word of the full name"
    );
    assert_eq!(e["lastName"], u["last_name"]);
    let email = u["email"].as_str().unwrap();
    assert_eq!(e["email"], serde_json::json!([email]));
    assert_eq!(e["username"], serde_json::json!([email]));
    assert_eq!(
        e["shortLoginId"],
        serde_json::json!([email.split_once('@').unwrap().0])
    );
    // Export and download tokens are nowhere in the graph.
    let everything = format!(
        "{:?} {:?}",
        report
            .graph
            .entities()
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
    let exports: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.target.contains("/export/org/assets.jsonl"))
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(exports.len(), 2);
    // Validation reads the organizations once; the steps that need them (account,
    // organizations, assets) take them from the run's kv store (WIT 0.2).
    let orgs_requests = server
        .requests()
        .iter()
        .filter(|r| r.target.contains("/account/orgs"))
        .count();
    assert_eq!(orgs_requests, 1);
    // The export asks only for the fields the connector uses: no service banners.
    for t in &exports {
        let fields = t.split_once("?fields=").expect("a fields parameter").1;
        let fields = corral_simulators::server::percent_decode(fields);
        assert!(fields.split(',').any(|f| f == "names"), "{fields}");
        assert!(!fields.split(',').any(|f| f == "services"), "{fields}");
    }

    // Issue 12: tags the host would reject as properties (`expiresOn: "never"`, a 5,000
    // character `note` and `name`) are left out with a warning naming the asset and the
    // property; the asset, its other tags and its name are kept.
    let tagged: Vec<&Value> = sim
        .assets
        .iter()
        .filter(|a| a["tags"]["expiresOn"] == "never")
        .filter(|a| {
            a["organization_id"]
                .as_str()
                .is_some_and(|o| exporting.contains(o))
        })
        .collect();
    assert!(
        !tagged.is_empty(),
        "premise: collected assets with bad tags"
    );
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
    for a in tagged {
        let key = a["id"].as_str().unwrap();
        let e = entity(&a["id"]);
        for gone in ["tag.expiresOn", "tag.note", "tag.name"] {
            assert!(!e.contains_key(gone), "{key}: {gone}");
            assert!(
                report.log.iter().any(|l| {
                    l.level == "warn"
                        && l.fields.iter().any(|(k, v)| k == "key" && v == key)
                        && l.fields.iter().any(|(k, v)| k == "property" && v == gone)
                }),
                "{key}: no warning for {gone}"
            );
        }
        assert_eq!(e["tag.reviewedOn"], 1_700_000_000_000i64);
        assert_eq!(e["tag.env"], "lab");
        assert_eq!(
            e["displayName"], e["name"],
            "an over-long name tag is no name"
        );
    }
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

    assert_run_succeeded(&report);
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
    assert_run_succeeded(&report);
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

/// A string a person can read as a name: not empty, not only whitespace, at most 4096
/// characters.
fn readable(v: &Value) -> Option<&str> {
    v.as_str()
        .filter(|s| !s.trim().is_empty() && s.chars().count() <= 4096)
}

fn first_of<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v[field].as_array()?.iter().find_map(readable)
}

/// By `_key`, the (`name`, `displayName`) of every organization, site, user and asset by
/// the spec's formulas and the README's fallbacks: organization and site name or id; user
/// "first last", either, email, id; asset first usable `names`, `hw`, first address, first
/// MAC, id (displayName from a non-blank `name` tag first).
fn expected_names(sim: &RunZeroSim) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut add = |id: &str, name: String, display: Option<String>| {
        let display = display.unwrap_or_else(|| name.clone());
        out.insert(id.to_string(), (name, display));
    };
    for o in sim.orgs.iter().chain(&sim.sites) {
        let id = o["id"].as_str().unwrap();
        add(id, readable(&o["name"]).unwrap_or(id).to_string(), None);
    }
    for u in &sim.users {
        let id = u["id"].as_str().unwrap();
        let name = match (readable(&u["first_name"]), readable(&u["last_name"])) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(one), None) | (None, Some(one)) => one.to_string(),
            (None, None) => readable(&u["email"]).unwrap_or(id).to_string(),
        };
        add(id, name, None);
    }
    for a in &sim.assets {
        let id = a["id"].as_str().unwrap();
        let name = first_of(a, "names")
            .or_else(|| readable(&a["hw"]))
            .or_else(|| first_of(a, "addresses"))
            .or_else(|| first_of(a, "macs"))
            .unwrap_or(id);
        let tag = a["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.eq_ignore_ascii_case("name"))
            .find_map(|(_, v)| readable(v));
        add(id, name.to_string(), tag.map(String::from));
    }
    out
}

/// Issue 12: an organization, sites, users and assets whose name fields are `""`, blank or
/// `null` are in the graph under the documented fallback names, with their
/// relationships; nothing is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_name_keep_their_relationships() {
    let sim = sim();
    assert_eq!(
        sim.orgs[1]["name"], "",
        "premise: an organization named \"\""
    );
    assert!(sim.sites.iter().any(|s| s["name"].is_null()), "premise");
    assert!(
        sim.users
            .iter()
            .any(|u| readable(&u["first_name"]).is_none()
                && readable(&u["last_name"]).is_none()
                && u["email"].is_null()),
        "premise: a user with no name and no email"
    );
    assert!(
        sim.assets
            .iter()
            .any(|a| a["names"] == serde_json::json!([""])
                && a["addresses"] == serde_json::json!([])
                && a["macs"] == serde_json::json!([])),
        "premise: an asset with nothing but an id"
    );
    let server = sim.start(0).await.unwrap();
    let report = run_builtin(
        "runzero",
        &instance("rz-nameless", &server, ("accountAPIKey", KEY)),
    )
    .await;
    assert_run_succeeded(&report);
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
    let orgs: Vec<&Value> = sim.orgs.iter().collect();
    let keys = keys_by_type(&report);
    assert_eq!(keys, expected(&sim, &sim.client_id, &orgs, true));

    let got: std::collections::BTreeMap<String, (String, String)> = report
        .graph
        .entities()
        .iter()
        .filter(|e| e.type_name != "rumble_account")
        .map(|e| {
            let s = |f: &str| e.object[f].as_str().unwrap().to_string();
            (e.key.clone(), (s("name"), s("displayName")))
        })
        .collect();
    let mut want = expected_names(&sim);
    // Assets are collected only for organizations with an export token.
    let uncollected: BTreeSet<&str> = sim
        .assets
        .iter()
        .filter(|a| {
            sim.orgs
                .iter()
                .any(|o| o["id"] == a["organization_id"] && o["export_token"] == "")
        })
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    want.retain(|k, _| !uncollected.contains(k.as_str()));
    assert_eq!(got, want);

    // The nameless organization, its sites, and its assets' site edges are all there.
    let org = sim.orgs[1]["id"].as_str().unwrap();
    assert_eq!(got[org], (org.to_string(), org.to_string()));
    for s in sim.sites.iter().filter(|s| s["organization_id"] == org) {
        let site = s["id"].as_str().unwrap();
        assert!(keys["rumble_organization_has_site"].contains(&format!("{org}|has|{site}")));
    }
    let bare = sim
        .assets
        .iter()
        .find(|a| {
            a["organization_id"] != sim.orgs[2]["id"]
                && a["names"] == serde_json::json!([""])
                && a["addresses"] == serde_json::json!([])
                && a["macs"] == serde_json::json!([])
        })
        .expect("premise: a collected asset with nothing but an id");
    let id = bare["id"].as_str().unwrap();
    assert_eq!(got[id].0, id);
    assert!(
        keys["rumble_site_has_asset"]
            .contains(&format!("{}|has|{id}", bare["site_id"].as_str().unwrap()))
    );
}
