//! Alert rules (`[[alert]]` in `corral.toml`): which changes match (kinds, instance,
//! `_type` or `_class` glob, property filters) and what happens (a log line, or a JSON
//! POST to a webhook with retries, a timeout, and the address rules plugin egress has).

use crate::capabilities::address::{CheckedResolver, StaticHosts};
use crate::changes::{Change, ChangeKind};
use crate::policy::glob_match;
use crate::query::Filter;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const WEBHOOK_ATTEMPTS: u32 = 3;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Log,
    Webhook,
}

/// An `[[alert]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub name: String,
    #[serde(default = "every_kind")]
    pub on: Vec<ChangeKind>,
    /// Glob over instance ids (default: every instance).
    pub instance: Option<String>,
    #[serde(rename = "type")]
    pub type_glob: Option<String>,
    pub class: Option<String>,
    /// Property filters, `PROPERTY OP VALUE` (see `query.rs`); all must match.
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default)]
    pub action: Action,
    pub webhook: Option<String>,
    #[serde(default)]
    pub allow_private_networks: bool,
}

fn every_kind() -> Vec<ChangeKind> {
    vec![
        ChangeKind::Created,
        ChangeKind::Updated,
        ChangeKind::Deleted,
    ]
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub raw: RawAlert,
    pub filters: Vec<Filter>,
    pub webhook: Option<url::Url>,
}

impl AlertRule {
    /// Checks a rule; the error says what is wrong (the caller adds where).
    pub fn new(raw: RawAlert) -> Result<AlertRule, String> {
        if raw.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        if raw.type_glob.is_none() && raw.class.is_none() {
            return Err("give `type` (a _type glob) or `class` (a _class glob)".into());
        }
        let filters = raw
            .when
            .iter()
            .map(|w| Filter::parse(w))
            .collect::<Result<_, _>>()?;
        let webhook = match (raw.action, &raw.webhook) {
            (Action::Webhook, None) => {
                return Err("action = \"webhook\" needs `webhook = URL`".into());
            }
            (Action::Log, Some(_)) => {
                return Err(
                    "`webhook` is set but action is \"log\"; set action = \"webhook\"".into(),
                );
            }
            (_, Some(u)) => {
                let url = url::Url::parse(u).map_err(|e| format!("webhook {u:?}: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("webhook {u:?}: only http and https"));
                }
                Some(url)
            }
            (Action::Log, None) => None,
        };
        Ok(AlertRule {
            raw,
            filters,
            webhook,
        })
    }

    pub fn matches(&self, instance: &str, change: &Change) -> bool {
        let r = &self.raw;
        r.on.contains(&change.kind)
            && r.instance
                .as_deref()
                .is_none_or(|g| glob_match(g, instance))
            && r.type_glob
                .as_deref()
                .is_none_or(|g| glob_match(g, &change.object.type_name))
            && r.class
                .as_deref()
                .is_none_or(|g| change.object.classes().iter().any(|c| glob_match(g, c)))
            && self
                .filters
                .iter()
                .all(|f| f.matches(&change.object.object))
    }
}

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
                target: "corral::alerts",
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
                    tracing::error!(target: "corral::alerts", "{msg}");
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
                use crate::capabilities::{address::RestrictedAddress, http};
                // A refused address is refused again: no point in retrying.
                if let Some(r) = http::find_source::<RestrictedAddress>(&e) {
                    return Err(format!(
                        "refused: {r} (the rule may set allow_private_networks = true)"
                    ));
                }
                last = http::error_chain(&e);
            }
        }
    }
    Err(format!("{last} after {WEBHOOK_ATTEMPTS} attempts"))
}
