//! SentinelOne in the real host against the simulator.

use corral::config::ConfigValue;
use corral_e2e::*;
use corral_simulators::FaultRule;
use corral_simulators::sentinelone::{SentinelOneConfig, SentinelOneSim};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

const TOKEN: &str = "e2e-s1-token-0d9b7e";

fn sim(groups: usize, agents: usize) -> Arc<SentinelOneSim> {
    SentinelOneSim::new(&SentinelOneConfig {
        seed: 3,
        groups,
        agents,
        token: TOKEN.into(),
    })
}

fn instance(
    id: &str,
    server: &corral_simulators::SimServer,
    token: &str,
) -> corral::config::InstanceConfig {
    plugin_instance(
        id,
        "sentinelone",
        vec![
            // A trailing slash, as operators paste it: the connector must not send `//web`.
            (
                "serverUrl",
                ConfigValue::Text(format!("{}/", server.origin())),
            ),
            ("apiToken", ConfigValue::Text(token.into())),
        ],
    )
}

/// The keys the spec's formulas give for this tenant and instance id.
fn expected(sim: &SentinelOneSim, instance_id: &str) -> KeysByType {
    let mut out = KeysByType::new();
    let mut add = |t: &str, k: String| {
        out.entry(t.to_string()).or_default().insert(k);
    };
    let account = format!("sentinelone_account-{instance_id}");
    add("sentinelone_account", account.clone());
    let groups: BTreeSet<String> = sim
        .groups
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect();
    for g in &groups {
        add("sentinelone_group", format!("sentinelone_group-id-{g}"));
        add(
            "sentinelone_account_has_group",
            format!("{account}|has|sentinelone_group-id-{g}"),
        );
    }
    for a in &sim.agents {
        let key = format!("sentinelone_agent-id-{}", a["id"].as_str().unwrap());
        add("sentinelone_agent", key.clone());
        add(
            "sentinelone_agent_protects_device",
            format!("{key}|protects|device"),
        );
        let group = a["groupId"].as_str().unwrap();
        if groups.contains(group) {
            add(
                "sentinelone_group_has_agent",
                format!("sentinelone_group-id-{group}|has|{key}"),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_is_exact_across_cursor_pages() {
    let sim = sim(120, 250);
    let server = sim.start(0).await.unwrap();
    let report = run_builtin("sentinelone", &instance("s1-e2e", &server, TOKEN)).await;

    assert!(
        report.succeeded(),
        "{:?} {:?}",
        report.validation,
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    assert_eq!(keys_by_type(&report), expected(&sim, "s1-e2e"));
    let log = server.requests();
    let targets: Vec<&str> = log.iter().map(|r| r.target.as_str()).collect();
    // 1 validation + groups 100+20 + agents 100+100+50; cursors percent-encoded.
    assert_eq!(log.len(), 6, "{targets:?}");
    assert!(
        targets.contains(&"/web/api/v2.1/groups?limit=100&cursor=YXJn%2B100%2Fb2Zmc2V0%3D%3D"),
        "{targets:?}"
    );
    assert!(log.iter().all(|r| r.status == 200));

    // Spot checks of the reference's rules.
    let entities = report.graph.entities();
    let agents: Vec<&serde_json::Map<String, Value>> = entities
        .iter()
        .filter(|e| e.type_name == "sentinelone_agent")
        .map(|e| &e.object)
        .collect();
    assert!(
        agents
            .iter()
            .all(|a| !a.contains_key("licenseKey")
                && !a["_rawData"].to_string().contains("LICENSE-"))
    );
    let nameless = &sim.agents[4];
    let e = agents.iter().find(|a| a["id"] == nameless["id"]).unwrap();
    assert_eq!(
        e["name"], nameless["serialNumber"],
        "missing computerName falls back to the serial number"
    );
    let tagged = agents
        .iter()
        .find(|a| a["id"] == sim.agents[3]["id"])
        .unwrap();
    assert_eq!(tagged["displayName"], "tagged-host-3");
    assert_eq!(tagged["tag.critical"], true);
    assert_eq!(tagged["tags"], serde_json::json!(["critical", "flag"]));
    let owned = agents
        .iter()
        .find(|a| a["id"] == sim.agents[2]["id"])
        .unwrap();
    assert_eq!(owned["owner"], "owner.2@example.com");
    // Issue 12 item 3: what the data model's `HostAgent` and `Account` require.
    assert!(agents.iter().all(|a| a["function"]
        == serde_json::json!(["endpoint-protection", "anti-malware"])
        && (a["lastSeenOn"].is_null() || a["lastSeenOn"].is_i64())));
    assert_eq!(
        owned["lastSeenOn"].is_i64(),
        sim.agents[2]["lastActiveDate"].is_string(),
        "lastSeenOn from lastActiveDate"
    );
    let account = &report
        .graph
        .entity("sentinelone_account-s1-e2e")
        .expect("the account")
        .object;
    assert_eq!(account["vendor"], "SentinelOne");
    let groups = entities
        .iter()
        .filter(|e| e.type_name == "sentinelone_group");
    assert!(
        groups
            .into_iter()
            .all(|g| !g.object["_rawData"].to_string().contains("regtoken-"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let sim = sim(10, 120);
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new("/agents", 429, 2).retry_after(1));
    server.add_fault(FaultRule::new("/groups", 500, 1));
    let report = run_builtin("sentinelone", &instance("s1-retry", &server, TOKEN)).await;
    assert!(
        report.succeeded(),
        "{:?}",
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    assert_eq!(keys_by_type(&report), expected(&sim, "s1-retry"));
    let injected = server.requests().iter().filter(|r| r.injected).count();
    assert_eq!(injected, 3);
    assert_eq!(server.requests().len(), 1 + 1 + 2 + 3);
}

/// A 404 for a later page (a cursor the console no longer knows) fails the step instead
/// of ending the list: the step's types are partial, so nothing of them is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_on_a_later_page_fails_the_step() {
    let sim = sim(10, 150);
    sim.cursors_expire
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let server = sim.start(0).await.unwrap();
    let report = run_builtin("sentinelone", &instance("s1-lost-cursor", &server, TOKEN)).await;
    let step = |id: &str| report.steps.iter().find(|s| s.info.id == id).unwrap();
    assert_eq!(
        step("fetch-groups").status,
        corral::run::StepStatus::Success,
        "one page: no cursor sent"
    );
    let agents = step("fetch-agents");
    assert_eq!(agents.status, corral::run::StepStatus::Failure);
    let err = agents.error.clone().unwrap();
    assert!(err.contains("404"), "{err}");
    assert!(
        report
            .partial_types()
            .contains(&"sentinelone_agent".to_string()),
        "{:?}",
        report.partial_types()
    );
    let cursor_pages = server
        .requests()
        .iter()
        .filter(|r| r.target.contains("/agents") && r.target.contains("cursor="))
        .count();
    assert_eq!(cursor_pages, 1, "404 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_validation_and_leaks_nothing() {
    let sim = sim(2, 2);
    let server = sim.start(0).await.unwrap();
    let wrong = "wrong-s1-token-5521";
    let report = run_builtin("sentinelone", &instance("s1-bad", &server, wrong)).await;
    let err = report.validation.clone().unwrap_err();
    assert!(
        err.contains("Provider authentication failed at") && err.ends_with("401 Unauthorized"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
    let everything = format!("{err} {:?}", report.log);
    assert!(!everything.contains(wrong) && !everything.contains(TOKEN));
}

/// A string a person can read as a name: not empty, not only whitespace.
fn readable(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// By `_key`, each agent's and group's (`name`, `displayName`) by the spec's formulas and
/// the README's fallbacks: agent `computerName`, `serialNumber`, id (displayName from a
/// non-blank `name` tag first); group `name` or id, displayed `` `${name} ${type}` `` of the
/// raw fields, or `<id> <type>`/`<id>` when the name is blank.
fn expected_names(sim: &SentinelOneSim) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out = std::collections::BTreeMap::new();
    let js = |v: &Value| match v {
        Value::Null => "null".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for g in &sim.groups {
        let id = g["id"].as_str().unwrap();
        let (name, display) = match readable(&g["name"]) {
            Some(n) => (
                n.to_string(),
                format!("{n} {}", g.get("type").map_or("undefined".into(), js)),
            ),
            None => (
                id.to_string(),
                readable(&g["type"]).map_or(id.to_string(), |t| format!("{id} {t}")),
            ),
        };
        out.insert(format!("sentinelone_group-id-{id}"), (name, display));
    }
    for a in &sim.agents {
        let id = a["id"].as_str().unwrap();
        let name = readable(&a["computerName"])
            .or_else(|| readable(&a["serialNumber"]))
            .unwrap_or(id)
            .to_string();
        let tag = a["tags"]["sentinelone"]
            .as_array()
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|t| {
                t["key"]
                    .as_str()
                    .is_some_and(|k| k.eq_ignore_ascii_case("name"))
            })
            .filter_map(|t| readable(&t["value"]))
            .next_back();
        let display = tag.map_or(name.clone(), String::from);
        out.insert(format!("sentinelone_agent-id-{id}"), (name, display));
    }
    out
}

/// Issue 12: agents whose `computerName` is `""`, blank or `null` (some without a serial
/// too) and groups whose `name` is `""` or `null` are in the graph, named by the
/// documented fallbacks, with their relationships; nothing is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_groups_without_a_name_keep_their_relationships() {
    use corral_simulators::sentinelone::{agent_name_case, group_name_case};
    let sim = sim(30, 40);
    assert!(
        (0..30).any(|i| group_name_case(i) == Some(Value::Null)),
        "premise"
    );
    assert!(
        (0..30).any(|i| group_name_case(i) == Some(serde_json::json!(""))),
        "premise"
    );
    assert!(
        sim.agents
            .iter()
            .any(|a| a["computerName"] == "" && a["serialNumber"].is_null()),
        "premise: an agent with neither a name nor a serial"
    );
    assert!(
        sim.agents.iter().any(|a| a["computerName"] == "   "),
        "premise"
    );
    let server = sim.start(0).await.unwrap();
    let report = run_builtin("sentinelone", &instance("s1-nameless", &server, TOKEN)).await;
    assert!(
        report.succeeded(),
        "{:?}",
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
    let keys = keys_by_type(&report);
    assert_eq!(keys, expected(&sim, "s1-nameless"));

    let got: std::collections::BTreeMap<String, (String, String)> = report
        .graph
        .entities()
        .iter()
        .filter(|e| e.type_name != "sentinelone_account")
        .map(|e| {
            let s = |f: &str| e.object[f].as_str().unwrap().to_string();
            (e.key.clone(), (s("name"), s("displayName")))
        })
        .collect();
    assert_eq!(got, expected_names(&sim));

    let account = "sentinelone_account-s1-nameless";
    for (i, g) in sim.groups.iter().enumerate() {
        if group_name_case(i as u64).is_some() {
            let key = format!("sentinelone_group-id-{}", g["id"].as_str().unwrap());
            assert_eq!(got[&key].0, g["id"].as_str().unwrap());
            assert!(
                keys["sentinelone_account_has_group"].contains(&format!("{account}|has|{key}"))
            );
        }
    }
    for (i, a) in sim.agents.iter().enumerate() {
        if agent_name_case(i as u64).is_none() {
            continue;
        }
        let key = format!("sentinelone_agent-id-{}", a["id"].as_str().unwrap());
        let want = readable(&a["serialNumber"]).unwrap_or(a["id"].as_str().unwrap());
        assert_eq!(got[&key].0, want, "{key}");
        let group = format!("sentinelone_group-id-{}", a["groupId"].as_str().unwrap());
        if keys["sentinelone_group"].contains(&group) {
            assert!(keys["sentinelone_group_has_agent"].contains(&format!("{group}|has|{key}")));
        }
        assert!(
            keys["sentinelone_agent_protects_device"].contains(&format!("{key}|protects|device"))
        );
    }
}
