//! Alerts delivered: every rule (`corral_core::alerts`) fired on the changes of a run
//! that it matches, as a log line or a JSON POST to a webhook with retries, a timeout,
//! and the address rules plugin egress has.

use crate::net::address::{CheckedResolver, StaticHosts};
pub use corral_core::alerts::{Action, AlertRule, RawAlert};
use corral_core::changes::Change;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const WEBHOOK_ATTEMPTS: u32 = 3;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What firing the rules for one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fired {
    pub matched: usize,
    pub delivered: usize,
    pub failed: Vec<String>,
}

/// Fires every rule on every matching change of one run.
pub async fn fire(
    rules: &[AlertRule],
    instance: &str,
    run_id: &str,
    changes: &[Change],
    hosts: &StaticHosts,
) -> Fired {
    let mut fired = Fired::default();
    for rule in rules {
        let client = rule
            .webhook
            .as_ref()
            .map(|_| webhook_client(rule, hosts.clone()));
        for change in changes.iter().filter(|c| rule.matches(instance, c)) {
            fired.matched += 1;
            let body = payload(rule, instance, run_id, change);
            tracing::warn!(
                target: "corral::delivery::alerts",
                alert = %rule.raw.name,
                instance,
                run = run_id,
                "{:?} {} {}",
                change.kind,
                change.object.type_name,
                change.object.key
            );
            let (Some(url), Some(client)) = (&rule.webhook, &client) else {
                fired.delivered += 1;
                continue;
            };
            match post(client, url, &body).await {
                Ok(()) => fired.delivered += 1,
                Err(e) => {
                    let msg = format!("alert {:?}: webhook {url}: {e}", rule.raw.name);
                    tracing::error!(target: "corral::delivery::alerts", "{msg}");
                    fired.failed.push(msg);
                }
            }
        }
    }
    fired
}

/// The JSON an alert sends: the rule, the change, and the object without `_rawData`.
pub fn payload(rule: &AlertRule, instance: &str, run_id: &str, change: &Change) -> Value {
    let mut object = change.object.object.clone();
    object.remove("_rawData");
    json!({
        "alert": rule.raw.name,
        "instance": instance,
        "runId": run_id,
        "change": change.kind,
        "_type": change.object.type_name,
        "_key": change.object.key,
        "properties": change.properties,
        "object": object,
    })
}

fn webhook_client(rule: &AlertRule, hosts: StaticHosts) -> reqwest::Client {
    let resolver = CheckedResolver {
        allow_private: rule.raw.allow_private_networks,
        hosts,
    };
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(WEBHOOK_TIMEOUT)
        .dns_resolver(Arc::new(resolver))
        .user_agent(concat!("corral/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid")
}

/// POSTs with retries on 5xx, 429 and transport errors. The address rules of plugin
/// egress apply through the client's resolver: a hostname resolving only to loopback,
/// private, link-local or metadata addresses is refused unless the rule sets
/// `allow_private_networks`; an IP literal or `localhost` written in the URL is named by
/// the operator, as a policy rule naming it would be, and is allowed.
async fn post(client: &reqwest::Client, url: &url::Url, body: &Value) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..WEBHOOK_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        let request = client
            .post(url.clone())
            .header("content-type", "application/json")
            .body(body.to_string());
        match request.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                last = format!("answered {}", r.status());
            }
            Ok(r) => return Err(format!("answered {} (not retried)", r.status())),
            Err(e) => {
                use crate::net::{address::RestrictedAddress, error_chain, find_source};
                // A refused address is refused again: no point in retrying.
                if let Some(r) = find_source::<RestrictedAddress>(&e) {
                    return Err(format!(
                        "refused: {r} (the rule may set allow_private_networks = true)"
                    ));
                }
                last = error_chain(&e);
            }
        }
    }
    Err(format!("{last} after {WEBHOOK_ATTEMPTS} attempts"))
}
