//! `corral policy explain` and `corral policy check`: what an instance's grant allows, in
//! plain words, and the decision (with the deciding statement) for one action.

use crate::policy::{
    Context, Decision, Effect, EffectiveLimits, Grant, Operator, Policy, Statement,
};
use std::fmt::Write;
use url::Url;

/// The grant of an instance in plain words.
pub fn explain(instance: &str, plugin: &str, grant: &Grant) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "instance {instance} runs plugin {plugin}");
    match &grant.operator {
        Some(op) => {
            let _ = writeln!(s, "operator policy: {}", op.source);
        }
        None => s.push_str("no operator policy: the plugin's request is the grant\n"),
    }
    s.push_str("\nThe plugin asks to:\n");
    for st in grant
        .manifest
        .statements
        .iter()
        .filter(|st| st.effect == Effect::Allow)
    {
        let _ = writeln!(s, "  - {}", describe(st));
        let _ = writeln!(s, "      {}", operator_verdict(grant, st));
    }
    if let Some(op) = &grant.operator {
        let denies: Vec<&Statement> = op
            .statements
            .iter()
            .filter(|st| st.effect == Effect::Deny)
            .collect();
        if !denies.is_empty() {
            s.push_str("\nThe operator forbids, whatever else says:\n");
            for st in denies {
                let _ = writeln!(
                    s,
                    "  - {} ({} permissions[{}])",
                    describe(st),
                    op.source,
                    st.index
                );
            }
        }
    }
    s.push_str("\nAnything not listed as allowed is denied.\n");
    s.push_str(
        "\nLimits in force (the tighter of the plugin's request and the operator's policy):\n",
    );
    s.push_str(&describe_limits(&grant.limits));
    s
}

/// One statement as a sentence: "HTTP GET to https://x/*, only when …".
pub fn describe(st: &Statement) -> String {
    let actions: Vec<String> = st.actions.iter().map(|a| describe_action(a)).collect();
    let resources: Vec<String> = st.resources.iter().map(|r| describe_resource(r)).collect();
    let mut text = format!("{} {}", actions.join(", "), resources.join(" or "));
    for (op, key, patterns) in &st.conditions {
        let how = match op {
            Operator::StringEquals => "is",
            Operator::StringLike => "matches",
        };
        let _ = write!(
            text,
            ", only when {} {how} {}",
            describe_key(key),
            patterns.join(" or ")
        );
    }
    text
}

fn describe_action(a: &str) -> String {
    match a {
        "*" => "do anything".into(),
        "http:*" => "any HTTP method".into(),
        "graph:EmitEntity" => "emit entities".into(),
        "graph:EmitRelationship" => "emit relationships".into(),
        "graph:Read" => "read back entities".into(),
        "graph:*" => "emit and read graph objects".into(),
        "secret:Use" | "secret:*" => "use the secret".into(),
        other => match other.strip_prefix("http:") {
            Some(m) => format!("HTTP {m}"),
            None => other.into(),
        },
    }
}

fn describe_resource(r: &str) -> String {
    if r == "*" {
        return "on anything".into();
    }
    if let Some(t) = r.strip_prefix("type:") {
        return format!("of type {t}");
    }
    if let Some(n) = r.strip_prefix("secret:") {
        return n.to_string();
    }
    format!("to {r}")
}

fn describe_key(k: &str) -> &str {
    crate::policy::condition_key(k).map_or(k, |c| c.meaning)
}

/// The operator's decision on a requested statement, checked on its own patterns.
fn operator_verdict(grant: &Grant, st: &Statement) -> String {
    let Some(op) = &grant.operator else {
        return "granted (no operator policy)".into();
    };
    let mut verdicts: Vec<String> = operator_decisions(op, st)
        .map(|(_, _, d)| {
            let word = if d.allowed { "allowed" } else { "DENIED" };
            format!("{word} by {}", d.rule)
        })
        .collect();
    verdicts.dedup();
    format!("operator: {}", verdicts.join("; "))
}

/// The operator's decision on each (action, resource) a statement requests.
fn operator_decisions<'a>(
    op: &'a Policy,
    st: &'a Statement,
) -> impl Iterator<Item = (&'a str, &'a str, Decision)> + 'a {
    st.actions.iter().flat_map(move |action| {
        st.resources.iter().map(move |resource| {
            let d = op.evaluate(action, resource, &context_for(action, resource, st));
            (action.as_str(), resource.as_str(), d)
        })
    })
}

/// What the plugin requests that the operator's policy does not grant, one line each;
/// empty when there is no operator policy (then the request is the grant).
pub fn beyond_operator(grant: &Grant) -> Vec<String> {
    let Some(op) = &grant.operator else {
        return Vec::new();
    };
    grant
        .manifest
        .statements
        .iter()
        .filter(|st| st.effect == Effect::Allow)
        .flat_map(|st| operator_decisions(op, st))
        .filter(|(_, _, d)| !d.allowed)
        .map(|(action, resource, d)| format!("{action} {resource} ({})", d.rule))
        .collect()
}

/// The capability request of a manifest as sentences, templates left visible.
pub fn requested_capabilities(m: &crate::manifest::Manifest) -> Vec<String> {
    match Policy::parse_untemplated(&m.capabilities, "manifest") {
        Ok(p) => {
            let limits = crate::policy::Limits::effective(&p.limits, None);
            describe_policy(&p)
                .lines()
                .map(|l| l.trim().to_string())
                .chain(describe_limits(&limits).lines().map(|l| {
                    let l = l.trim();
                    format!(
                        "limit {}",
                        l.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                }))
                .collect()
        }
        Err(e) => vec![format!("(unreadable: {e})")],
    }
}

/// What `new` requests that `old` did not (`+`) and what it no longer requests (`-`).
pub fn capability_diff(
    old: &crate::manifest::Manifest,
    new: &crate::manifest::Manifest,
) -> Vec<String> {
    let (old, new) = (requested_capabilities(old), requested_capabilities(new));
    let added = new
        .iter()
        .filter(|l| !old.contains(l))
        .map(|l| format!("+ {l}"));
    let removed = old
        .iter()
        .filter(|l| !new.contains(l))
        .map(|l| format!("- {l}"));
    added.chain(removed).collect()
}

/// The context a request for `resource` would carry, filled from the statement's own
/// conditions where they name a value.
fn context_for(action: &str, resource: &str, st: &Statement) -> Context {
    let mut ctx = request_context(action, resource);
    for (_, key, patterns) in &st.conditions {
        if let (Some(k), Some(p)) = (static_key(key), patterns.first()) {
            ctx = ctx.with(k, p.clone());
        }
    }
    ctx
}

fn static_key(k: &str) -> Option<&'static str> {
    crate::policy::condition_key(k).map(|c| c.name)
}

/// The context of a single action on a resource, as the host builds it.
pub fn request_context(action: &str, resource: &str) -> Context {
    if let Some(method) = action.strip_prefix("http:")
        && let Ok(url) = Url::parse(resource)
    {
        return Context::http(method, &url);
    }
    match resource.strip_prefix("type:") {
        Some(t) => Context::default().with("graph:type", t),
        None => Context::default(),
    }
}

/// `corral policy check`: the decision on one action, with `url` as the request context
/// for `secret:Use`.
pub fn check(grant: &Grant, action: &str, resource: &str, url: Option<&Url>) -> Decision {
    let ctx = match url {
        Some(u) => Context::http(action.strip_prefix("http:").unwrap_or("GET"), u),
        None => request_context(action, resource),
    };
    grant.check(action, resource, &ctx)
}

/// The quotas over longer windows and whom they are shared with.
fn describe_quota(l: &EffectiveLimits) -> String {
    let windows: Vec<String> = [
        (l.requests_per_minute, "a minute"),
        (l.requests_per_hour, "an hour"),
    ]
    .into_iter()
    .filter_map(|(n, w)| n.map(|n| format!("{n} {w}")))
    .collect();
    if windows.is_empty() {
        return "none beyond the rate".into();
    }
    let shared = match &l.quota_key {
        Some(k) => format!("shared by every run with quota key {k:?}"),
        None => "shared by every run reaching the same host".into(),
    };
    format!("{}, {shared}", windows.join(" and "))
}

pub fn describe_limits(l: &EffectiveLimits) -> String {
    let private = if l.allow_private_networks {
        "allowed".to_string()
    } else {
        "refused (loopback, private, link-local and metadata addresses), unless the allowing rule names the IP literal or localhost".to_string()
    };
    let rows = [
        ("memory", format!("{} MiB per instance", l.memory_mib)),
        ("wall time", format!("{} s per run", l.timeout_seconds)),
        ("requests", format!("{} per run", l.max_requests)),
        (
            "request rate",
            format!("{} per second", l.requests_per_second),
        ),
        ("provider quota", describe_quota(l)),
        ("concurrent requests", l.max_concurrent_requests.to_string()),
        ("response size", format!("{} bytes", l.max_response_bytes)),
        ("entities", format!("{} per run", l.max_entities)),
        ("relationships", format!("{} per run", l.max_relationships)),
        (
            "graph size",
            format!("{} bytes of JSON per run", l.max_graph_bytes),
        ),
        (
            "_rawData size",
            format!("{} bytes of JSON per object", l.max_raw_data_bytes),
        ),
        ("concurrent steps", l.max_concurrent_steps.to_string()),
        (
            "bodies held",
            format!("{} bytes at once per run", l.max_in_flight_bytes),
        ),
        ("private networks", private),
    ];
    rows.iter()
        .map(|(k, v)| format!("  {k:<20} {v}\n"))
        .collect()
}

/// Statements of a policy as sentences, for `plugin inspect`.
pub fn describe_policy(p: &Policy) -> String {
    p.statements
        .iter()
        .map(|st| {
            let effect = if st.effect == Effect::Allow {
                "allow"
            } else {
                "DENY"
            };
            format!("  {effect}: {}\n", describe(st))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ConfigField, Manifest};
    use std::collections::BTreeMap;

    const BASE: &str = r#"{ "permissions": [
        { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.apiUrl}}*"] },
        { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:token"],
          "condition": { "stringLike": { "http:url": "{{config.apiUrl}}*" } } } ] }"#;

    fn manifest(capabilities: &str) -> Manifest {
        Manifest {
            id: "p".into(),
            version: "1".into(),
            name: "P".into(),
            description: String::new(),
            config_fields: vec![ConfigField {
                name: "apiUrl".into(),
                secret: false,
                optional: false,
                description: String::new(),
                default: None,
            }],
            steps: Vec::new(),
            capabilities: capabilities.into(),
        }
    }

    fn grant(request: &str, operator: &str) -> Grant {
        let config =
            BTreeMap::from([("apiUrl".to_string(), "https://api.example/v1/".to_string())]);
        let parse = |text: &str, source: &str| Policy::parse(text, source, &config).unwrap();
        Grant::new(parse(request, "manifest"), Some(parse(operator, "op.json")))
    }

    #[test]
    fn a_request_within_the_operator_policy_is_not_beyond_it() {
        assert_eq!(beyond_operator(&grant(BASE, BASE)), Vec::<String>::new());
    }

    #[test]
    fn wider_urls_methods_and_unconditional_secrets_are_beyond_it() {
        let greedy = BASE.replace(
            r#""http:GET"], "resources": ["{{config.apiUrl}}*"]"#,
            r#""http:*"], "resources": ["https://*"]"#,
        );
        assert_eq!(
            beyond_operator(&grant(&greedy, BASE)),
            ["http:* https://* (no ALLOW matches (op.json))"]
        );
        let unconditional = r#"{ "permissions": [
            { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:token"] } ] }"#;
        assert_eq!(
            beyond_operator(&grant(unconditional, BASE)),
            ["secret:Use secret:token (no ALLOW matches (op.json))"]
        );
    }

    #[test]
    fn the_capability_diff_names_what_was_added_and_removed() {
        let old = manifest(BASE);
        let new = manifest(&BASE.replace("http:GET", "http:POST"));
        assert_eq!(
            capability_diff(&old, &new),
            [
                "+ allow: HTTP POST to {{config.apiUrl}}*",
                "- allow: HTTP GET to {{config.apiUrl}}*"
            ]
        );
        assert!(capability_diff(&old, &old).is_empty());
    }
}
