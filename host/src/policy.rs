//! Capability policies: parsing the contract grammar, `{{config.FIELD}}` templating,
//! and evaluation (explicit DENY over ALLOW over default deny).
//!
//! What an instance may do is its plugin manifest's request intersected with the
//! operator's policy: see [`Grant`].

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One permission statement, with where it came from for error messages.
#[derive(Debug, Clone)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// (operator, key) → patterns; every key must match one of its patterns.
    pub conditions: Vec<(Operator, String, Vec<String>)>,
    /// `permissions[N]`
    pub index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringLike,
}

/// Resource limits. `None` means "not set here"; see [`Limits::effective`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory_mib: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub max_requests: Option<u64>,
    pub requests_per_second: Option<f64>,
    pub max_concurrent_requests: Option<u64>,
    pub max_response_bytes: Option<u64>,
    pub max_entities: Option<u64>,
    pub allow_private_networks: Option<bool>,
}

/// Limits in force for a run: every one has a value.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveLimits {
    pub memory_mib: u64,
    pub timeout_seconds: u64,
    pub max_requests: u64,
    pub requests_per_second: f64,
    pub max_concurrent_requests: u64,
    pub max_response_bytes: u64,
    pub max_entities: u64,
    pub allow_private_networks: bool,
}

impl Default for EffectiveLimits {
    fn default() -> Self {
        EffectiveLimits {
            memory_mib: 64,
            timeout_seconds: 900,
            max_requests: 100_000,
            requests_per_second: 20.0,
            max_concurrent_requests: 8,
            max_response_bytes: 32 << 20,
            max_entities: 2_000_000,
            allow_private_networks: false,
        }
    }
}

impl Limits {
    /// The tighter of the manifest's request and the operator's setting for each limit,
    /// falling back to the defaults. `allowPrivateNetworks` needs both to say true (or
    /// the operator alone, when the manifest does not mention it).
    pub fn effective(manifest: &Limits, operator: Option<&Limits>) -> EffectiveLimits {
        let d = EffectiveLimits::default();
        let none = Limits::default();
        let op = operator.unwrap_or(&none);
        fn pick<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>, default: T) -> T {
            match (a, b) {
                (Some(a), Some(b)) => {
                    if a < b {
                        a
                    } else {
                        b
                    }
                }
                (Some(v), None) | (None, Some(v)) => v,
                (None, None) => default,
            }
        }
        EffectiveLimits {
            memory_mib: pick(manifest.memory_mib, op.memory_mib, d.memory_mib),
            timeout_seconds: pick(
                manifest.timeout_seconds,
                op.timeout_seconds,
                d.timeout_seconds,
            ),
            max_requests: pick(manifest.max_requests, op.max_requests, d.max_requests),
            requests_per_second: pick(
                manifest.requests_per_second,
                op.requests_per_second,
                d.requests_per_second,
            ),
            max_concurrent_requests: pick(
                manifest.max_concurrent_requests,
                op.max_concurrent_requests,
                d.max_concurrent_requests,
            ),
            max_response_bytes: pick(
                manifest.max_response_bytes,
                op.max_response_bytes,
                d.max_response_bytes,
            ),
            max_entities: pick(manifest.max_entities, op.max_entities, d.max_entities),
            allow_private_networks: match (
                manifest.allow_private_networks,
                op.allow_private_networks,
            ) {
                (Some(a), Some(b)) => a && b,
                (None, Some(b)) => b,
                _ => false,
            },
        }
    }
}

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it came from: a file path, or "manifest of plugin X".
    pub source: String,
    pub statements: Vec<Statement>,
    pub limits: Limits,
}

#[derive(Debug, Error, PartialEq)]
pub enum PolicyError {
    #[error("{file}: line {line}, column {column}: invalid JSON: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {path}: expected {expected}, found {found}")]
    Shape {
        file: String,
        path: String,
        expected: String,
        found: String,
    },
    #[error("{file}: {path}: {message}")]
    Template {
        file: String,
        path: String,
        message: String,
    },
}

/// The request an action is checked against: keys such as `http:url`, `graph:type`.
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub values: BTreeMap<&'static str, String>,
}

impl Context {
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.values.insert(key, value.into());
        self
    }

    /// The context of an HTTP request.
    pub fn http(method: &str, url: &Url) -> Self {
        Context::default()
            .with("http:url", url.as_str())
            .with("http:host", url.host_str().unwrap_or_default())
            .with("http:method", method)
    }
}

/// What decided a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// e.g. `policies/kandji.json permissions[3] (DENY)` or `no ALLOW matches (…)`.
    pub rule: String,
    /// When allowed: the resource patterns of the matching ALLOW statements (the
    /// address rules ask whether one names the host itself).
    pub allowing: Vec<String>,
}

impl Decision {
    fn deny(rule: String) -> Self {
        Decision {
            allowed: false,
            rule,
            allowing: Vec::new(),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rule)
    }
}

impl Policy {
    /// Parses `text` (from `source`), replacing `{{config.FIELD}}` with the instance's
    /// non-secret config values.
    pub fn parse(
        text: &str,
        source: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            file: source.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Parser { source, config }.policy(&doc)
    }

    /// Evaluates one action on one resource.
    pub fn evaluate(&self, action: &str, resource: &str, ctx: &Context) -> Decision {
        let mut first_allow = None;
        let mut allowing = Vec::new();
        for s in &self.statements {
            let Some(pattern) = s.matching_resource(action, resource, ctx) else {
                continue;
            };
            if s.effect == Effect::Deny {
                return Decision::deny(format!("{} permissions[{}] (DENY)", self.source, s.index));
            }
            first_allow.get_or_insert(s.index);
            allowing.push(pattern.to_string());
        }
        match first_allow {
            Some(i) => Decision {
                allowed: true,
                rule: format!("{} permissions[{i}] (ALLOW)", self.source),
                allowing,
            },
            None => Decision::deny(format!("no ALLOW matches ({})", self.source)),
        }
    }
}

impl Statement {
    /// The first of this statement's resources that matches, if the statement applies.
    fn matching_resource(&self, action: &str, resource: &str, ctx: &Context) -> Option<&str> {
        if !self.actions.iter().any(|a| glob_match(a, action)) {
            return None;
        }
        let pattern = self
            .resources
            .iter()
            .find(|r| resource_match(r, resource))?;
        self.conditions_hold(ctx).then_some(pattern.as_str())
    }

    fn conditions_hold(&self, ctx: &Context) -> bool {
        self.conditions.iter().all(|(op, key, patterns)| {
            let Some(value) = ctx.values.get(key.as_str()) else {
                return false;
            };
            patterns.iter().any(|p| match op {
                Operator::StringEquals => p == value,
                Operator::StringLike if key == "http:url" => url_match(p, value),
                Operator::StringLike => glob_match(p, value),
            })
        })
    }
}

struct Parser<'a> {
    source: &'a str,
    config: &'a BTreeMap<String, String>,
}

const CONDITION_KEYS: &[&str] = &[
    "http:url",
    "http:host",
    "http:method",
    "graph:type",
    "graph:class",
];

const LIMIT_KEYS: &[&str] = &[
    "memoryMiB",
    "timeoutSeconds",
    "maxRequests",
    "requestsPerSecond",
    "maxConcurrentRequests",
    "maxResponseBytes",
    "maxEntities",
    "allowPrivateNetworks",
];

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

impl Parser<'_> {
    fn shape(&self, path: &str, expected: &str, found: &Value) -> PolicyError {
        PolicyError::Shape {
            file: self.source.into(),
            path: path.into(),
            expected: expected.into(),
            found: kind(found),
        }
    }

    fn object<'v>(
        &self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Result<&'v serde_json::Map<String, Value>, PolicyError> {
        let obj = v
            .as_object()
            .ok_or_else(|| self.shape(path, "an object", v))?;
        if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(self.shape(
                &format!("{path}.{unknown}"),
                &format!("one of {}", allowed.join(", ")),
                &Value::String(unknown.clone()),
            ));
        }
        Ok(obj)
    }

    fn policy(&self, doc: &Value) -> Result<Policy, PolicyError> {
        let obj = self.object(doc, "$", &["permissions", "limits"])?;
        let perms = obj
            .get("permissions")
            .ok_or_else(|| self.shape("$.permissions", "an array of statements", &Value::Null))?;
        let list = perms
            .as_array()
            .ok_or_else(|| self.shape("$.permissions", "an array of statements", perms))?;
        let statements = list
            .iter()
            .enumerate()
            .map(|(i, s)| self.statement(s, i))
            .collect::<Result<_, _>>()?;
        let limits = match obj.get("limits") {
            Some(l) => self.limits(l)?,
            None => Limits::default(),
        };
        Ok(Policy {
            source: self.source.into(),
            statements,
            limits,
        })
    }

    fn statement(&self, v: &Value, index: usize) -> Result<Statement, PolicyError> {
        let path = format!("$.permissions[{index}]");
        let obj = self.object(v, &path, &["effect", "actions", "resources", "condition"])?;
        let effect_v = obj.get("effect").unwrap_or(&Value::Null);
        let effect = match effect_v.as_str() {
            Some("ALLOW") => Effect::Allow,
            Some("DENY") => Effect::Deny,
            _ => {
                return Err(self.shape(
                    &format!("{path}.effect"),
                    "\"ALLOW\" or \"DENY\"",
                    effect_v,
                ));
            }
        };
        let actions = self.strings(obj.get("actions"), &format!("{path}.actions"))?;
        for (i, a) in actions.iter().enumerate() {
            if !valid_action(a) {
                return Err(self.shape(
                    &format!("{path}.actions[{i}]"),
                    "http:<METHOD>, http:*, graph:EmitEntity, graph:EmitRelationship, graph:Read, secret:Use or *",
                    &Value::String(a.clone()),
                ));
            }
        }
        let resources = self
            .strings(obj.get("resources"), &format!("{path}.resources"))?
            .iter()
            .enumerate()
            .map(|(i, r)| self.template(r, &format!("{path}.resources[{i}]")))
            .collect::<Result<_, _>>()?;
        let conditions = match obj.get("condition") {
            Some(c) => self.conditions(c, &format!("{path}.condition"))?,
            None => Vec::new(),
        };
        Ok(Statement {
            effect,
            actions,
            resources,
            conditions,
            index,
        })
    }

    fn conditions(
        &self,
        v: &Value,
        path: &str,
    ) -> Result<Vec<(Operator, String, Vec<String>)>, PolicyError> {
        let obj = self.object(v, path, &["stringEquals", "stringLike"])?;
        let mut out = Vec::new();
        for (op_name, body) in obj {
            let op = if op_name == "stringEquals" {
                Operator::StringEquals
            } else {
                Operator::StringLike
            };
            let op_path = format!("{path}.{op_name}");
            let keys = self.object(body, &op_path, CONDITION_KEYS)?;
            for (key, patterns) in keys {
                let key_path = format!("{op_path}.{key}");
                let list = match patterns {
                    Value::String(s) => vec![s.clone()],
                    other => self.strings(Some(other), &key_path)?,
                };
                let list = list
                    .iter()
                    .map(|p| self.template(p, &key_path))
                    .collect::<Result<_, _>>()?;
                out.push((op, key.clone(), list));
            }
        }
        Ok(out)
    }

    fn strings(&self, v: Option<&Value>, path: &str) -> Result<Vec<String>, PolicyError> {
        let v = v.unwrap_or(&Value::Null);
        let expected = "a non-empty array of strings";
        let list = v
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| self.shape(path, expected, v))?;
        list.iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(String::from)
                    .ok_or_else(|| self.shape(&format!("{path}[{i}]"), "a string", item))
            })
            .collect()
    }

    /// Replaces `{{config.FIELD}}` with the field's value.
    fn template(&self, text: &str, path: &str) -> Result<String, PolicyError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| PolicyError::Template {
                    file: self.source.into(),
                    path: path.into(),
                    message: format!("unclosed {{{{ in {text:?}"),
                })?;
            let name = rest[start + 2..start + end].trim();
            let field = name
                .strip_prefix("config.")
                .ok_or_else(|| PolicyError::Template {
                    file: self.source.into(),
                    path: path.into(),
                    message: format!(
                        "unknown template {{{{{name}}}}}: only {{{{config.FIELD}}}} is supported"
                    ),
                })?;
            let value = self
                .config
                .get(field)
                .ok_or_else(|| PolicyError::Template {
                    file: self.source.into(),
                    path: path.into(),
                    message: format!(
                        "{{{{config.{field}}}}} names no non-secret config field of this instance"
                    ),
                })?;
            out.push_str(value);
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn limits(&self, v: &Value) -> Result<Limits, PolicyError> {
        let obj = self.object(v, "$.limits", LIMIT_KEYS)?;
        let uint =
            |key: &str| -> Result<Option<u64>, PolicyError> {
                match obj.get(key) {
                    None => Ok(None),
                    Some(n) => n.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                        self.shape(&format!("$.limits.{key}"), "a positive integer", n)
                    }),
                }
            };
        let rps =
            match obj.get("requestsPerSecond") {
                None => None,
                Some(n) => Some(n.as_f64().filter(|f| *f > 0.0).ok_or_else(|| {
                    self.shape("$.limits.requestsPerSecond", "a positive number", n)
                })?),
            };
        let private =
            match obj.get("allowPrivateNetworks") {
                None => None,
                Some(b) => Some(b.as_bool().ok_or_else(|| {
                    self.shape("$.limits.allowPrivateNetworks", "true or false", b)
                })?),
            };
        Ok(Limits {
            memory_mib: uint("memoryMiB")?,
            timeout_seconds: uint("timeoutSeconds")?,
            max_requests: uint("maxRequests")?,
            requests_per_second: rps,
            max_concurrent_requests: uint("maxConcurrentRequests")?,
            max_response_bytes: uint("maxResponseBytes")?,
            max_entities: uint("maxEntities")?,
            allow_private_networks: private,
        })
    }
}

fn valid_action(a: &str) -> bool {
    match a.split_once(':') {
        None => a == "*",
        Some(("http", m)) => {
            m == "*" || (!m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
        }
        Some(("graph", g)) => matches!(g, "EmitEntity" | "EmitRelationship" | "Read" | "*"),
        Some(("secret", s)) => matches!(s, "Use" | "*"),
        _ => false,
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Matches a resource pattern against a resource: URL patterns component by component,
/// `type:`/`secret:` and `*` as globs.
pub fn resource_match(pattern: &str, resource: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if resource.starts_with("http://") || resource.starts_with("https://") {
        return url_match(pattern, resource);
    }
    glob_match(pattern, resource)
}

/// A URL glob `scheme://host[:port][/path]` against a URL. The host glob cannot run
/// into the port or path; a port that is not written is the scheme's default (unless
/// the host part is a bare `*`, which means any host and port); no path means any path.
pub fn url_match(pattern: &str, url: &str) -> bool {
    let Ok(url) = Url::parse(url) else {
        return false;
    };
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return false;
    };
    if !glob_match(&scheme.to_ascii_lowercase(), url.scheme()) {
        return false;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(0).to_string();
    let authority_ok = if authority == "*" {
        true
    } else {
        let (host_glob, port_glob) = split_host_port(authority);
        let default_port = default_port(scheme).to_string();
        glob_match(&host_glob.to_ascii_lowercase(), &host.to_ascii_lowercase())
            && glob_match(port_glob.unwrap_or(&default_port), &port)
    };
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    // Repeated slashes in a pattern's path read as one, so a templated base URL with a
    // trailing slash (`{{config.serverUrl}}/api/*` with `https://h/`) still means `/api/*`.
    authority_ok && path.is_none_or(|p| glob_match(&collapse_slashes(p), &target))
}

fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    // Bracketed IPv6 literal: [::1]:8080
    if let Some(end) = authority.find(']') {
        let host = &authority[..=end];
        return (host, authority[end + 1..].strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

fn default_port(scheme: &str) -> u16 {
    match scheme {
        "http" => 80,
        _ => 443,
    }
}

/// The capability grant of one instance: its plugin's request and, if the operator gave
/// one, the operator's policy. An action is allowed only when both allow it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub manifest: Policy,
    pub operator: Option<Policy>,
    pub limits: EffectiveLimits,
}

impl Grant {
    pub fn new(manifest: Policy, operator: Option<Policy>) -> Self {
        let limits = Limits::effective(&manifest.limits, operator.as_ref().map(|p| &p.limits));
        Grant {
            manifest,
            operator,
            limits,
        }
    }

    /// Allowed only if the manifest requested it and the operator (if any) allows it; the
    /// decision (and its allowing resources) is the operator's when there is one.
    pub fn check(&self, action: &str, resource: &str, ctx: &Context) -> Decision {
        let requested = self.manifest.evaluate(action, resource, ctx);
        if !requested.allowed {
            return Decision::deny(format!("not requested by the plugin: {}", requested.rule));
        }
        match &self.operator {
            Some(op) => op.evaluate(action, resource, ctx),
            None => requested,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "apiUrl".to_string(),
            "https://acme.api.kandji.io/api/v1/".to_string(),
        )])
    }

    const DESIGN_EXAMPLE: &str = r#"{
      "permissions": [
        { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.apiUrl}}*"] },
        { "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship"], "resources": ["type:kandji_*"] },
        { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:accessToken"],
          "condition": { "stringLike": { "http:url": "{{config.apiUrl}}*" } } },
        { "effect": "DENY", "actions": ["http:*"], "resources": ["http://*"] }
      ],
      "limits": { "memoryMiB": 64, "timeoutSeconds": 900, "maxRequests": 100000,
                  "requestsPerSecond": 20, "maxConcurrentRequests": 8,
                  "maxResponseBytes": 33554432, "maxEntities": 2000000,
                  "allowPrivateNetworks": false }
    }"#;

    fn http(p: &Policy, method: &str, url: &str) -> Decision {
        let u = Url::parse(url).unwrap();
        p.evaluate(
            &format!("http:{method}"),
            u.as_str(),
            &Context::http(method, &u),
        )
    }

    #[test]
    fn design_example_parses_and_evaluates() {
        let p = Policy::parse(DESIGN_EXAMPLE, "p.json", &cfg()).unwrap();
        assert_eq!(p.limits.memory_mib, Some(64));
        assert!(
            http(
                &p,
                "GET",
                "https://acme.api.kandji.io/api/v1/devices?limit=1"
            )
            .allowed
        );
        assert!(http(&p, "GET", "https://acme.api.kandji.io:443/api/v1/devices").allowed);
        let d = http(&p, "POST", "https://acme.api.kandji.io/api/v1/devices");
        assert_eq!(d, Decision::deny("no ALLOW matches (p.json)".into()));
        let ok = http(&p, "GET", "https://acme.api.kandji.io/api/v1/devices");
        assert_eq!(
            ok.allowing,
            vec!["https://acme.api.kandji.io/api/v1/*".to_string()]
        );
        assert!(!http(&p, "GET", "https://acme.api.kandji.io:8443/api/v1/devices").allowed);
        assert!(!http(&p, "GET", "https://evil.example/api/v1/").allowed);
        let d = http(&p, "GET", "http://acme.api.kandji.io/api/v1/devices");
        assert_eq!(d.rule, "p.json permissions[3] (DENY)");
        let u = Url::parse("https://acme.api.kandji.io/api/v1/x").unwrap();
        assert!(
            p.evaluate(
                "secret:Use",
                "secret:accessToken",
                &Context::http("GET", &u)
            )
            .allowed
        );
        let evil = Url::parse("https://evil.example/").unwrap();
        assert!(
            !p.evaluate(
                "secret:Use",
                "secret:accessToken",
                &Context::http("GET", &evil)
            )
            .allowed
        );
        assert!(
            p.evaluate(
                "graph:EmitEntity",
                "type:kandji_device",
                &Context::default()
            )
            .allowed
        );
        assert!(
            !p.evaluate("graph:EmitEntity", "type:rumble_asset", &Context::default())
                .allowed
        );
    }

    #[test]
    fn graph_conditions_and_string_equals() {
        let p = Policy::parse(
            r#"{"permissions":[
                {"effect":"ALLOW","actions":["graph:EmitEntity"],"resources":["type:*"],
                 "condition":{"stringLike":{"graph:type":"acme_*"},"stringEquals":{"graph:class":["Device","User"]}}},
                {"effect":"ALLOW","actions":["http:*"],"resources":["https://*"],
                 "condition":{"stringEquals":{"http:method":"GET"}}}]}"#,
            "c.json",
            &cfg(),
        )
        .unwrap();
        let g = |t: &str, c: &str| {
            Context::default()
                .with("graph:type", t)
                .with("graph:class", c)
        };
        assert!(
            p.evaluate(
                "graph:EmitEntity",
                "type:acme_laptop",
                &g("acme_laptop", "Device")
            )
            .allowed
        );
        assert!(
            !p.evaluate(
                "graph:EmitEntity",
                "type:acme_laptop",
                &g("acme_laptop", "Host")
            )
            .allowed
        );
        assert!(
            !p.evaluate(
                "graph:EmitEntity",
                "type:other_laptop",
                &g("other_laptop", "Device")
            )
            .allowed
        );
        assert!(
            !p.evaluate("graph:EmitEntity", "type:acme_laptop", &Context::default())
                .allowed,
            "a missing key fails the condition"
        );
        assert!(http(&p, "GET", "https://x.example/").allowed);
        assert!(!http(&p, "DELETE", "https://x.example/").allowed);
    }

    #[test]
    fn host_globs_do_not_cross_into_paths() {
        assert!(url_match(
            "https://*.example.com/*",
            "https://a.example.com/x"
        ));
        assert!(!url_match(
            "https://*.example.com/*",
            "https://evil.com/.example.com/x"
        ));
        assert!(!url_match(
            "https://*.example.com/*",
            "https://a.example.com:8443/x"
        ));
        assert!(url_match("http://*", "http://127.0.0.1:8080/anything"));
        assert!(url_match("http://[::1]:8080/*", "http://[::1]:8080/a"));
        assert!(url_match(
            "https://h.example//api/*",
            "https://h.example/api/x"
        ));
        assert!(!url_match(
            "https://h.example//api/*",
            "https://h.example/other"
        ));
    }

    #[test]
    fn errors_name_file_path_and_expectation() {
        let bad =
            r#"{"permissions":[{"effect":"allow","actions":["http:GET"],"resources":["*"]}]}"#;
        let e = Policy::parse(bad, "policies/k.json", &cfg()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "policies/k.json: $.permissions[0].effect: expected \"ALLOW\" or \"DENY\", found \"allow\""
        );
        let e = Policy::parse("{\n  \"permissions\": [,]\n}", "k.json", &cfg()).unwrap_err();
        assert!(matches!(e, PolicyError::Syntax { line: 2, .. }), "{e}");
        let e = Policy::parse(r#"{"permissions":[{"effect":"ALLOW","actions":["http:GET"],"resources":["{{config.nope}}*"]}]}"#, "k.json", &cfg()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "k.json: $.permissions[0].resources[0]: {{config.nope}} names no non-secret config field of this instance"
        );
        let e = Policy::parse(
            r#"{"permissions":[], "limits": {"memoryMb": 3}}"#,
            "k.json",
            &cfg(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("k.json: $.limits.memoryMb: expected one of memoryMiB"),
            "{e}"
        );
    }

    #[test]
    fn grant_is_the_intersection() {
        let manifest = Policy::parse(DESIGN_EXAMPLE, "manifest", &cfg()).unwrap();
        let operator = Policy::parse(
            r#"{"permissions":[{"effect":"ALLOW","actions":["*"],"resources":["*"]},
                {"effect":"DENY","actions":["graph:EmitEntity"],"resources":["type:kandji_app"]}],
                "limits":{"memoryMiB":32,"requestsPerSecond":100}}"#,
            "op.json",
            &cfg(),
        )
        .unwrap();
        let g = Grant::new(manifest, Some(operator));
        assert!(
            g.check(
                "graph:EmitEntity",
                "type:kandji_device",
                &Context::default()
            )
            .allowed
        );
        assert!(
            !g.check("graph:EmitEntity", "type:kandji_app", &Context::default())
                .allowed
        );
        assert!(
            !g.check("graph:EmitEntity", "type:other_thing", &Context::default())
                .allowed
        );
        assert_eq!(g.limits.memory_mib, 32);
        assert_eq!(g.limits.requests_per_second, 20.0);
    }
}
