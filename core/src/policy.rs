//! Capability policies: parsing the contract grammar, `{{config.FIELD}}` templating,
//! and evaluation (explicit DENY over ALLOW over default deny).
//!
//! What an instance may do is its plugin manifest's request intersected with the
//! operator's policy: see [`Grant`]. The resource grammar is in `docs/security.md`
//! ("Policy resource grammar"): globs in [`crate::glob`], URL globs in
//! [`crate::url_glob`].

use crate::url_glob::check_templated;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use thiserror::Error;
use url::Url;

pub use crate::glob::{glob_escape, glob_match};
pub use crate::limits::{
    EffectiveLimits, LIMIT_KEYS, LIMIT_RANGES, LimitRange, Limits, MAX_QUOTA_KEY_BYTES, limit_range,
};
pub use crate::url_glob::{
    MatchMode, check_url_pattern, literal_host, refused_url, url_match, url_match_as,
};

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

    /// The context of an HTTP request. The host loses a final dot (`example.com.` is
    /// `example.com` to DNS).
    pub fn http(method: &str, url: &Url) -> Self {
        let host = url.host_str().unwrap_or_default();
        Context::default()
            .with("http:url", url.as_str())
            .with("http:host", host.strip_suffix('.').unwrap_or(host))
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

/// Where `{{config.FIELD}}` takes its values from.
#[derive(Debug, Clone, Copy)]
enum Templates<'a> {
    /// A manifest's request: the instance's config, plugin defaults included.
    Manifest(&'a BTreeMap<String, String>),
    /// An operator policy: only what the operator wrote; `config` (defaults included)
    /// only words the error for a field that has nothing but a default.
    Operator {
        set: &'a BTreeMap<String, String>,
        config: &'a BTreeMap<String, String>,
    },
    /// Left as written, for display (`plugin inspect`); nothing that depends on a value
    /// is checked.
    Keep,
}

impl Policy {
    /// A policy that grants nothing (a manifest read, a benchmark instance).
    pub fn nothing(source: &str) -> Policy {
        Policy {
            source: source.into(),
            statements: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Parses a plugin manifest's request `text` (from `source`), replacing
    /// `{{config.FIELD}}` with the instance's non-secret config values (plugin defaults
    /// included). Values are literal: glob characters in them are escaped.
    pub fn parse(
        text: &str,
        source: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Policy, PolicyError> {
        Self::parse_with(text, source, Templates::Manifest(config))
    }

    /// Parses an operator's policy. `{{config.FIELD}}` takes only values the operator set
    /// in the instance's config (`set`): a plugin's default is the plugin's word, not the
    /// operator's. `config` (with defaults) is used only to word the error.
    pub fn parse_operator(
        text: &str,
        source: &str,
        set: &BTreeMap<String, String>,
        config: &BTreeMap<String, String>,
    ) -> Result<Policy, PolicyError> {
        Self::parse_with(text, source, Templates::Operator { set, config })
    }

    /// Parses a policy with `{{config.FIELD}}` left as written, to show a request before
    /// any instance exists. Not for evaluation: templated resources match nothing.
    pub fn parse_untemplated(text: &str, source: &str) -> Result<Policy, PolicyError> {
        Self::parse_with(text, source, Templates::Keep)
    }

    fn parse_with(text: &str, source: &str, templates: Templates) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            file: source.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Parser { source, templates }.policy(&doc)
    }

    /// Evaluates one action on one resource. A URL (the resource or the context's
    /// `http:url`) that cannot be matched safely is denied before any statement is read.
    pub fn evaluate(&self, action: &str, resource: &str, ctx: &Context) -> Decision {
        if let Some(why) = refused_request(resource, ctx) {
            return Decision::deny(why);
        }
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

/// Whether `resource` is an http(s) URL (and so compared with URL patterns).
fn is_url(resource: &str) -> bool {
    let lower = |n: usize| resource.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

/// Why a request is refused before matching: its resource or its `http:url` is a URL no
/// pattern can be compared with safely (see [`refused_url`]).
pub fn refused_request(resource: &str, ctx: &Context) -> Option<String> {
    let resource_refusal = if is_url(resource) {
        refused_url(resource)
    } else {
        None
    };
    resource_refusal.or_else(|| ctx.values.get("http:url").and_then(|u| refused_url(u)))
}

impl Statement {
    /// How this statement compares URLs: a DENY broadly, an ALLOW exactly.
    fn mode(&self) -> MatchMode {
        match self.effect {
            Effect::Allow => MatchMode::Allow,
            Effect::Deny => MatchMode::Deny,
        }
    }

    /// The first of this statement's resources that matches, if the statement applies.
    fn matching_resource(&self, action: &str, resource: &str, ctx: &Context) -> Option<&str> {
        if !self.actions.iter().any(|a| glob_match(a, action)) {
            return None;
        }
        let pattern = self
            .resources
            .iter()
            .find(|r| resource_match_as(r, resource, self.mode()))?;
        self.conditions_hold(ctx).then_some(pattern.as_str())
    }

    fn conditions_hold(&self, ctx: &Context) -> bool {
        self.conditions.iter().all(|(op, key, patterns)| {
            let Some(value) = ctx.values.get(key.as_str()) else {
                return false;
            };
            patterns
                .iter()
                .any(|p| condition_holds(*op, key, p, value, self.mode()))
        })
    }
}

/// One condition pattern against the request's value. Host names compare
/// case-insensitively; URLs as URL globs, and in a DENY even `stringEquals` compares the
/// URL as a DENY resource would (else `?x` or a case change would slip past it).
fn condition_holds(op: Operator, key: &str, p: &str, value: &str, mode: MatchMode) -> bool {
    match (op, key) {
        (Operator::StringEquals, "http:host") => p.eq_ignore_ascii_case(value),
        (Operator::StringEquals, "http:url") if mode == MatchMode::Deny => {
            p == value || url_match_as(&glob_escape(p), value, mode)
        }
        (Operator::StringEquals, _) => p == value,
        (Operator::StringLike, "http:url") => url_match_as(p, value, mode),
        (Operator::StringLike, "http:host") => {
            glob_match(&p.to_ascii_lowercase(), &value.to_ascii_lowercase())
        }
        (Operator::StringLike, _) => glob_match(p, value),
    }
}

/// Matches a resource pattern against a resource as an ALLOW does: URL patterns part by
/// part, `type:`/`secret:` and `*` as globs.
pub fn resource_match(pattern: &str, resource: &str) -> bool {
    resource_match_as(pattern, resource, MatchMode::Allow)
}

/// As [`resource_match`], comparing URLs as `mode` says.
pub fn resource_match_as(pattern: &str, resource: &str, mode: MatchMode) -> bool {
    if pattern == "*" {
        return true;
    }
    if is_url(resource) {
        return url_match_as(pattern, resource, mode);
    }
    glob_match(pattern, resource)
}

struct Parser<'a> {
    source: &'a str,
    templates: Templates<'a>,
}

/// A condition key: its name in a policy and what it stands for, in plain words.
#[derive(Debug, PartialEq, Eq)]
pub struct ConditionKey {
    pub name: &'static str,
    pub meaning: &'static str,
}

/// Every condition key, by the capability whose requests carry it: the one list the
/// parser, `explain` and the policy checks read.
pub const CONDITION_KEYS: &[ConditionKey] = &[
    // http: each request and each redirect hop
    ConditionKey {
        name: "http:url",
        meaning: "the request URL",
    },
    ConditionKey {
        name: "http:host",
        meaning: "the request host",
    },
    ConditionKey {
        name: "http:method",
        meaning: "the request method",
    },
    // graph: each emitted object
    ConditionKey {
        name: "graph:type",
        meaning: "the object's _type",
    },
    ConditionKey {
        name: "graph:class",
        meaning: "the object's _class",
    },
];

/// The condition key named `name`, if there is one.
pub fn condition_key(name: &str) -> Option<&'static ConditionKey> {
    CONDITION_KEYS.iter().find(|k| k.name == name)
}

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

/// A pattern after templating, with where each value landed (byte ranges of `text`).
struct Templated {
    text: String,
    values: Vec<Range<usize>>,
    /// Templates were left as written ([`Templates::Keep`]).
    kept: bool,
}

/// How a templated value is inserted: escaped where the pattern is a glob.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Insert {
    Glob,
    Verbatim,
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

    fn template_error(&self, path: &str, message: String) -> PolicyError {
        PolicyError::Template {
            file: self.source.into(),
            path: path.into(),
            message,
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
            .map(|(i, r)| self.resource(r, &format!("{path}.resources[{i}]")))
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

    /// A resource pattern: templated with escaped values; a URL pattern must be valid, and
    /// a templated one (anything templated but `type:`/`secret:`) must keep a literal host.
    fn resource(&self, written: &str, path: &str) -> Result<String, PolicyError> {
        let url_like = !(written.starts_with("type:") || written.starts_with("secret:"));
        self.url_pattern(written, path, url_like)
    }

    fn url_pattern(
        &self,
        written: &str,
        path: &str,
        url_like: bool,
    ) -> Result<String, PolicyError> {
        let t = self.template(written, path, Insert::Glob)?;
        if t.kept {
            return Ok(t.text);
        }
        if url_like && !t.values.is_empty() {
            check_templated(&t.text, &t.values).map_err(|why| {
                self.template_error(
                    path,
                    format!(
                        "{written:?} becomes {:?}, which is not an http(s) URL pattern with a literal host: {why}",
                        t.text
                    ),
                )
            })?;
        } else if url_like && t.text != "*" {
            // A pattern that is no URL would match no URL: a DENY written so would be dead.
            check_url_pattern(&t.text).map_err(|why| {
                self.shape(
                    path,
                    &format!(
                        "*, type:<glob>, secret:<glob> or a URL pattern scheme://host[:port][/path[?query]] ({why})"
                    ),
                    &Value::String(t.text.clone()),
                )
            })?;
        }
        Ok(t.text)
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
            let names: Vec<&str> = CONDITION_KEYS.iter().map(|k| k.name).collect();
            let keys = self.object(body, &op_path, &names)?;
            for (key, patterns) in keys {
                let key_path = format!("{op_path}.{key}");
                let list = match patterns {
                    Value::String(_) => vec![self.plain(patterns, &key_path)?],
                    other => self.strings(Some(other), &key_path)?,
                };
                let list = list
                    .iter()
                    .map(|p| self.condition_pattern(op, key, p, &key_path))
                    .collect::<Result<_, _>>()?;
                out.push((op, key.clone(), list));
            }
        }
        Ok(out)
    }

    /// `stringEquals` compares verbatim; `stringLike` is a glob (a URL glob for `http:url`).
    fn condition_pattern(
        &self,
        op: Operator,
        key: &str,
        p: &str,
        path: &str,
    ) -> Result<String, PolicyError> {
        match op {
            Operator::StringEquals => Ok(self.template(p, path, Insert::Verbatim)?.text),
            Operator::StringLike if key == "http:url" => self.url_pattern(p, path, true),
            Operator::StringLike => Ok(self.template(p, path, Insert::Glob)?.text),
        }
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
            .map(|(i, item)| self.plain(item, &format!("{path}[{i}]")))
            .collect()
    }

    /// A string without control characters: policy text is shown by `plugin inspect`,
    /// `policy explain` and the swap log, where a newline would forge a line.
    fn plain(&self, v: &Value, path: &str) -> Result<String, PolicyError> {
        match v.as_str() {
            Some(s) if !s.chars().any(crate::text::is_control) => Ok(s.to_string()),
            _ => Err(self.shape(path, "a string without control characters", v)),
        }
    }

    /// Replaces `{{config.FIELD}}` with the field's value, escaped for a glob if `insert`
    /// says so, and records where each value landed.
    fn template(&self, text: &str, path: &str, insert: Insert) -> Result<Templated, PolicyError> {
        let mut out = Templated {
            text: String::new(),
            values: Vec::new(),
            kept: false,
        };
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.text.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| self.template_error(path, format!("unclosed {{{{ in {text:?}")))?;
            let name = rest[start + 2..start + end].trim();
            let field = name.strip_prefix("config.").ok_or_else(|| {
                self.template_error(
                    path,
                    format!(
                        "unknown template {{{{{name}}}}}: only {{{{config.FIELD}}}} is supported"
                    ),
                )
            })?;
            let value = match self.value(field, path)? {
                None => {
                    out.kept = true;
                    rest[start..start + end + 2].to_string()
                }
                Some(v) if insert == Insert::Glob => glob_escape(v),
                Some(v) => v.to_string(),
            };
            let at = out.text.len();
            out.text.push_str(&value);
            out.values.push(at..out.text.len());
            rest = &rest[start + end + 2..];
        }
        out.text.push_str(rest);
        Ok(out)
    }

    /// The value of `field`; `None` when templates are kept as written.
    fn value(&self, field: &str, path: &str) -> Result<Option<&str>, PolicyError> {
        let (values, defaults) = match self.templates {
            Templates::Keep => return Ok(None),
            Templates::Manifest(config) => (config, None),
            Templates::Operator { set, config } => (set, Some(config)),
        };
        if let Some(v) = values.get(field) {
            return Ok(Some(v));
        }
        let message = match defaults {
            None => {
                format!("{{{{config.{field}}}}} names no non-secret config field of this instance")
            }
            Some(config) if config.contains_key(field) => format!(
                "{{{{config.{field}}}}} is not set in this instance's config (plugin defaults do not count in an operator policy)"
            ),
            Some(_) => format!(
                "{{{{config.{field}}}}} is not set in this instance's config (an operator policy takes only non-secret fields the operator set)"
            ),
        };
        Err(self.template_error(path, message))
    }

    fn limits(&self, v: &Value) -> Result<Limits, PolicyError> {
        let obj = self.object(v, "$.limits", LIMIT_KEYS)?;
        let uint = |key: &str| self.integer_limit(obj.get(key), key);
        let rate = |key: &str| match obj.get(key) {
            None => Ok(None),
            Some(n) => self.number_limit(n, key).map(Some),
        };
        let quota_key = match obj.get("quotaKey") {
            None => None,
            Some(v) => Some(self.quota_key(v)?),
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
            requests_per_second: rate("requestsPerSecond")?,
            requests_per_minute: rate("requestsPerMinute")?,
            requests_per_hour: rate("requestsPerHour")?,
            quota_key,
            max_concurrent_requests: uint("maxConcurrentRequests")?,
            max_response_bytes: uint("maxResponseBytes")?,
            max_entities: uint("maxEntities")?,
            max_relationships: uint("maxRelationships")?,
            max_graph_bytes: uint("maxGraphBytes")?,
            max_raw_data_bytes: uint("maxRawDataBytes")?,
            max_concurrent_steps: uint("maxConcurrentSteps")?,
            max_in_flight_bytes: uint("maxInFlightBytes")?,
            allow_private_networks: private,
        })
    }

    /// `quotaKey`: plain text of at most [`MAX_QUOTA_KEY_BYTES`] once `{{config.FIELD}}`
    /// templates are filled in (so instances of one tenant can share a key).
    fn quota_key(&self, v: &Value) -> Result<String, PolicyError> {
        let path = "$.limits.quotaKey";
        let written = self.plain(v, path)?;
        let key = self.template(&written, path, Insert::Verbatim)?.text;
        if key.is_empty()
            || key.len() > MAX_QUOTA_KEY_BYTES
            || key.chars().any(crate::text::is_control)
        {
            let expected = format!("a non-empty string of at most {MAX_QUOTA_KEY_BYTES} bytes");
            return Err(self.shape(path, &expected, v));
        }
        Ok(key)
    }

    /// An integer limit within its range ([`LIMIT_RANGES`]).
    fn integer_limit(&self, v: Option<&Value>, key: &str) -> Result<Option<u64>, PolicyError> {
        let Some(v) = v else {
            return Ok(None);
        };
        let range = limit_range(key);
        let valid = match (v.as_u64(), range) {
            (Some(n), Some(LimitRange::Integer { min, max })) => {
                (min..=max).contains(&n).then_some(n)
            }
            _ => None,
        };
        let expected = range.map_or_else(|| "an integer".to_string(), |r| r.to_string());
        valid
            .map(Some)
            .ok_or_else(|| self.shape(&format!("$.limits.{key}"), &expected, v))
    }

    /// A number limit within its range: finite, so a rate always refills.
    fn number_limit(&self, v: &Value, key: &str) -> Result<f64, PolicyError> {
        let range = limit_range(key);
        let valid = match (v.as_f64(), range) {
            (Some(n), Some(LimitRange::Number { min, max })) => {
                (n.is_finite() && (min..=max).contains(&n)).then_some(n)
            }
            _ => None,
        };
        let expected = range.map_or_else(|| "a number".to_string(), |r| r.to_string());
        valid.ok_or_else(|| self.shape(&format!("$.limits.{key}"), &expected, v))
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
    /// decision (and its allowing resources) is the operator's when there is one. A URL
    /// that cannot be matched safely is denied first, naming why.
    pub fn check(&self, action: &str, resource: &str, ctx: &Context) -> Decision {
        if let Some(why) = refused_request(resource, ctx) {
            return Decision::deny(why);
        }
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
    fn control_characters_in_policy_text_are_refused() {
        let forged = r#"{"permissions":[{"effect":"ALLOW","actions":["graph:*"],"resources":["type:x\n  DENY: any HTTP method on any URL"]}]}"#;
        let e = Policy::parse(forged, "m.json", &cfg()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "m.json: $.permissions[0].resources[0]: expected a string without control characters"
            ),
            "{e}"
        );
        let cond = r#"{"permissions":[{"effect":"ALLOW","actions":["graph:*"],"resources":["type:x"],
            "condition":{"stringEquals":{"graph:type":"a\rb"}}}]}"#;
        assert!(Policy::parse(cond, "m.json", &cfg()).is_err());
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

    fn parse_err(text: &str) -> String {
        Policy::parse(text, "p.json", &cfg())
            .unwrap_err()
            .to_string()
    }

    fn with_limits(limits: &str) -> String {
        format!(r#"{{"permissions":[],"limits":{limits}}}"#)
    }

    #[test]
    fn limits_outside_their_range_are_refused_with_file_and_path() {
        assert_eq!(
            parse_err(&with_limits(r#"{"timeoutSeconds":18446744073709551615}"#)),
            "p.json: $.limits.timeoutSeconds: expected an integer from 1 to 86400, found 18446744073709551615"
        );
        for (limits, message) in [
            (
                r#"{"maxConcurrentRequests":18446744073709551615}"#,
                "$.limits.maxConcurrentRequests: expected an integer from 1 to 256",
            ),
            (
                r#"{"requestsPerSecond":1e-30}"#,
                "$.limits.requestsPerSecond: expected a number from 0.01 to 10000, found 9.99",
            ),
            (
                r#"{"requestsPerSecond":0}"#,
                "expected a number from 0.01 to 10000, found 0",
            ),
            (
                r#"{"memoryMiB":1025}"#,
                "$.limits.memoryMiB: expected an integer from 1 to 1024, found 1025",
            ),
            (r#"{"memoryMiB":0}"#, "found 0"),
            (r#"{"maxRequests":10000001}"#, "from 1 to 10000000"),
            (r#"{"maxResponseBytes":1073741825}"#, "from 1 to 1073741824"),
            (
                r#"{"maxEntities":-1}"#,
                "$.limits.maxEntities: expected an integer from 1 to 10000000, found -1",
            ),
            (r#"{"maxEntities":2.5}"#, "found 2.5"),
            (
                r#"{"maxRelationships":0}"#,
                "$.limits.maxRelationships: expected an integer from 1 to 10000000",
            ),
            (
                r#"{"maxGraphBytes":1048575}"#,
                "$.limits.maxGraphBytes: expected an integer from 1048576 to 8589934592",
            ),
            (
                r#"{"maxRawDataBytes":67108865}"#,
                "$.limits.maxRawDataBytes: expected an integer from 0 to 67108864",
            ),
            (
                r#"{"maxConcurrentSteps":33}"#,
                "$.limits.maxConcurrentSteps: expected an integer from 1 to 32",
            ),
            (
                r#"{"maxInFlightBytes":"64MiB"}"#,
                "$.limits.maxInFlightBytes: expected an integer from 1048576 to 1073741824, found \"64MiB\"",
            ),
        ] {
            let e = parse_err(&with_limits(limits));
            assert!(e.contains(message), "{limits}: {e}");
        }
        // The operator's policy is held to the same ranges.
        let op = Policy::parse_operator(
            &with_limits(r#"{"timeoutSeconds":0}"#),
            "op.json",
            &cfg(),
            &cfg(),
        );
        assert!(
            op.unwrap_err()
                .to_string()
                .starts_with("op.json: $.limits.timeoutSeconds")
        );
    }

    #[test]
    fn quotas_parse_combine_and_share_a_templated_key() {
        let manifest = Policy::parse(
            r#"{"permissions":[], "limits": {"requestsPerHour": 10000, "requestsPerMinute": 500,
                "quotaKey": "kandji:{{config.apiUrl}}"}}"#,
            "m.json",
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            manifest.limits.quota_key.as_deref(),
            Some("kandji:https://acme.api.kandji.io/api/v1/")
        );
        let operator = Policy::parse(
            r#"{"permissions":[], "limits": {"requestsPerHour": 4000, "quotaKey": "tenant-7"}}"#,
            "op.json",
            &cfg(),
        )
        .unwrap();
        let l = Limits::effective(&manifest.limits, Some(&operator.limits));
        assert_eq!(l.requests_per_hour, Some(4000.0), "the tighter");
        assert_eq!(l.requests_per_minute, Some(500.0));
        assert_eq!(
            l.quota_key.as_deref(),
            Some("tenant-7"),
            "the operator's key"
        );
        let none = Limits::effective(&Limits::default(), None);
        assert_eq!(
            (none.requests_per_minute, none.requests_per_hour),
            (None, None)
        );
        for (bad, path) in [
            (r#"{"requestsPerHour": 0}"#, "$.limits.requestsPerHour"),
            (
                r#"{"requestsPerMinute": "fast"}"#,
                "$.limits.requestsPerMinute",
            ),
            (r#"{"quotaKey": ""}"#, "$.limits.quotaKey"),
            (r#"{"quotaKey": 7}"#, "$.limits.quotaKey"),
            (r#"{"quotaKey": "a\nb"}"#, "$.limits.quotaKey"),
        ] {
            let text = format!(r#"{{"permissions":[], "limits": {bad}}}"#);
            let err = Policy::parse(&text, "m.json", &cfg())
                .unwrap_err()
                .to_string();
            assert!(err.contains(path), "{bad}: {err}");
        }
        let long = format!(
            r#"{{"permissions":[], "limits": {{"quotaKey": "{}"}}}}"#,
            "k".repeat(MAX_QUOTA_KEY_BYTES + 1)
        );
        assert!(Policy::parse(&long, "m.json", &cfg()).is_err());
    }

    #[test]
    fn the_new_limits_parse_and_combine() {
        let m = Policy::parse(
            &with_limits(
                r#"{"maxRelationships":5,"maxGraphBytes":8589934592,"maxRawDataBytes":0,
                    "maxConcurrentSteps":32,"maxInFlightBytes":1048576,"requestsPerSecond":0.01}"#,
            ),
            "m",
            &cfg(),
        )
        .unwrap();
        assert_eq!(m.limits.max_raw_data_bytes, Some(0));
        let op = Policy::parse(
            &with_limits(
                r#"{"maxGraphBytes":1048576,"maxConcurrentSteps":2,"maxRelationships":9}"#,
            ),
            "op",
            &cfg(),
        )
        .unwrap();
        let g = Grant::new(m, Some(op));
        assert_eq!(g.limits.max_relationships, 5);
        assert_eq!(g.limits.max_graph_bytes, 1 << 20);
        assert_eq!(g.limits.max_raw_data_bytes, 0);
        assert_eq!(g.limits.max_concurrent_steps, 2);
        assert_eq!(g.limits.max_in_flight_bytes, 1 << 20);
        assert_eq!(g.limits.requests_per_second, 0.01);
    }

    /// The limits table of docs/security.md names every limit with its default and range.
    #[test]
    fn the_docs_table_agrees_with_the_ranges_and_defaults() {
        fn thousands(n: u64) -> String {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
        let d = EffectiveLimits::default();
        let defaults = BTreeMap::from([
            ("memoryMiB", d.memory_mib),
            ("timeoutSeconds", d.timeout_seconds),
            ("maxRequests", d.max_requests),
            ("requestsPerSecond", d.requests_per_second as u64),
            ("maxConcurrentRequests", d.max_concurrent_requests),
            ("maxResponseBytes", d.max_response_bytes),
            ("maxEntities", d.max_entities),
            ("maxRelationships", d.max_relationships),
            ("maxGraphBytes", d.max_graph_bytes),
            ("maxRawDataBytes", d.max_raw_data_bytes),
            ("maxConcurrentSteps", d.max_concurrent_steps),
            ("maxInFlightBytes", d.max_in_flight_bytes),
        ]);
        let docs = include_str!("../../docs/security.md");
        for (key, range) in LIMIT_RANGES {
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` ")))
                .unwrap_or_else(|| panic!("no row for {key}"));
            let written = match range {
                LimitRange::Integer { min, max } => {
                    format!("{} – {}", thousands(*min), thousands(*max))
                }
                LimitRange::Number { min, max } => format!("{min} – {}", thousands(*max as u64)),
            };
            assert!(row.contains(&written), "{row} should give {written}");
            let default = row.split(" | ").nth(1).unwrap_or_default();
            // A quota over a longer window has no default: none unless asked for.
            let want = defaults
                .get(key)
                .map_or("none".to_string(), |d| thousands(*d));
            assert!(
                default.starts_with(&want),
                "{row} should give the default {want}"
            );
        }
    }

    fn allow_all_but(deny: &str) -> Policy {
        let text = format!(
            r#"{{"permissions":[
                {{"effect":"ALLOW","actions":["*"],"resources":["*"]}},
                {{"effect":"DENY","actions":["http:*"],"resources":["{deny}"]}}]}}"#
        );
        Policy::parse(&text, "op.json", &cfg()).unwrap()
    }

    #[test]
    fn a_query_cannot_slip_a_url_past_a_deny() {
        let p = allow_all_but("https://h.example/api/*/admin");
        for u in [
            "https://h.example/api/x/admin",
            "https://h.example/api/x/admin?",
            "https://h.example/api/x/admin?a=1",
            "https://h.example/api/x/ADMIN",
            "https://h.example/api/x/%61dmin",
            "https://h.example/api/x/admin;a=1",
            "https://h.example./api/x/admin",
            "https://h.example//api/x/admin",
        ] {
            assert_eq!(
                http(&p, "GET", u).rule,
                "op.json permissions[1] (DENY)",
                "{u}"
            );
        }
        assert!(http(&p, "GET", "https://h.example/api/x/other?admin").allowed);
        let q = Policy::parse(
            r#"{"permissions":[{"effect":"ALLOW","actions":["http:GET"],"resources":["https://h.example/pub/*/items"]}]}"#,
            "p.json",
            &cfg(),
        )
        .unwrap();
        assert!(http(&q, "GET", "https://h.example/pub/a/items?x=1").allowed);
        assert!(!http(&q, "GET", "https://h.example/pub/secret?/items").allowed);
    }

    #[test]
    fn a_url_that_cannot_be_matched_safely_is_denied_outright() {
        let p = allow_all_but("https://h.example/api/*/admin");
        let d = http(&p, "GET", "https://u:pw@h.example/");
        assert_eq!(
            d,
            Decision::deny(
                "https://u:pw@h.example/ holds user-info; refused before matching".into()
            )
        );
        // Encoded separators are read both ways: the DENY sees the decoded reading.
        assert!(http(&p, "GET", "https://h.example/a%2fb").allowed);
        for u in [
            "https://h.example/api/x%2Fadmin",
            "https://h.example/api%5cx/admin",
            "https://u:pw@h.example/",
            "https://h.example../",
        ] {
            assert!(!http(&p, "GET", u).allowed, "{u}");
        }
        let raw = p.evaluate(
            "http:GET",
            r"https://h.example/api\x\admin",
            &Context::default(),
        );
        assert!(raw.rule.contains("backslash"), "{}", raw.rule);
        // The same for a secret sent to such a URL, and through a grant.
        let u = Url::parse("https://u:pw@h.example/a").unwrap();
        let ctx = Context::http("GET", &u);
        assert!(!p.evaluate("secret:Use", "secret:token", &ctx).allowed);
        let g = Grant::new(p.clone(), Some(p));
        let d = g.check("secret:Use", "secret:token", &ctx);
        assert!(
            d.rule.ends_with("holds user-info; refused before matching"),
            "{}",
            d.rule
        );
    }

    #[test]
    fn deny_conditions_on_urls_are_as_broad_as_deny_resources() {
        let p = Policy::parse(
            r#"{"permissions":[
                {"effect":"ALLOW","actions":["secret:Use"],"resources":["secret:token"]},
                {"effect":"DENY","actions":["secret:Use"],"resources":["*"],
                 "condition":{"stringLike":{"http:url":"https://h.example/admin/*","http:host":"H.example"}}}]}"#,
            "p.json",
            &cfg(),
        )
        .unwrap();
        for u in [
            "https://h.example/admin/x?y",
            "https://h.example/ADMIN/x",
            "https://h.example./admin/x",
        ] {
            let u = Url::parse(u).unwrap();
            assert!(
                !p.evaluate("secret:Use", "secret:token", &Context::http("GET", &u))
                    .allowed,
                "{u}"
            );
        }
    }

    #[test]
    fn a_deny_on_an_exact_url_still_catches_its_spellings() {
        let p = Policy::parse(
            r#"{"permissions":[
                {"effect":"ALLOW","actions":["secret:Use"],"resources":["secret:token"]},
                {"effect":"DENY","actions":["secret:Use"],"resources":["*"],
                 "condition":{"stringEquals":{"http:url":"https://h.example/admin","http:host":"H.EXAMPLE"}}}]}"#,
            "p.json",
            &cfg(),
        )
        .unwrap();
        for u in [
            "https://h.example/admin",
            "https://h.example/admin?x",
            "https://h.example/Admin",
        ] {
            let u = Url::parse(u).unwrap();
            assert!(
                !p.evaluate("secret:Use", "secret:token", &Context::http("GET", &u))
                    .allowed,
                "{u}"
            );
        }
        let other = Url::parse("https://h.example/admin/x").unwrap();
        assert!(
            p.evaluate("secret:Use", "secret:token", &Context::http("GET", &other))
                .allowed
        );
    }

    fn op_policy(resource: &str) -> String {
        format!(
            r#"{{"permissions":[{{"effect":"ALLOW","actions":["http:GET"],"resources":["{resource}"]}}]}}"#
        )
    }

    #[test]
    fn operator_templates_take_only_values_the_operator_set() {
        let set = BTreeMap::from([("host".to_string(), "api.example".to_string())]);
        let all = BTreeMap::from([
            ("host".to_string(), "api.example".to_string()),
            ("apiBase".to_string(), "http://".to_string()),
        ]);
        let e = Policy::parse_operator(&op_policy("{{config.apiBase}}*"), "op.json", &set, &all)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "op.json: $.permissions[0].resources[0]: {{config.apiBase}} is not set in this instance's config (plugin defaults do not count in an operator policy)"
        );
        let e = Policy::parse_operator(&op_policy("{{config.nope}}*"), "op.json", &set, &all)
            .unwrap_err();
        assert!(e.to_string().contains("{{config.nope}} is not set"), "{e}");
        let p = Policy::parse_operator(
            &op_policy("https://{{config.host}}/*"),
            "op.json",
            &set,
            &all,
        )
        .unwrap();
        assert!(http(&p, "GET", "https://api.example/x").allowed);
        // Set by the operator, the empty base is refused all the same.
        let e = Policy::parse_operator(&op_policy("{{config.apiBase}}*"), "op.json", &all, &all)
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                r#"op.json: $.permissions[0].resources[0]: "{{config.apiBase}}*" becomes "http://*", which is not an http(s) URL pattern with a literal host"#
            ),
            "{e}"
        );
    }

    fn templated(resource: &str, field: &str, value: &str) -> Result<Policy, PolicyError> {
        let config = BTreeMap::from([(field.to_string(), value.to_string())]);
        Policy::parse(&op_policy(resource), "m", &config)
    }

    #[test]
    fn templated_values_are_literal() {
        let p = templated("{{config.apiUrl}}*", "apiUrl", "https://api.example/v1/*/").unwrap();
        assert_eq!(p.statements[0].resources[0], r"https://api.example/v1/\*/*");
        assert!(http(&p, "GET", "https://api.example/v1/*/x").allowed);
        assert!(!http(&p, "GET", "https://api.example/v1/other/x").allowed);
        let p = templated("https://h.example/{{config.dir}}/*", "dir", r"a\b").unwrap();
        assert_eq!(p.statements[0].resources[0], r"https://h.example/a\\b/*");
        // A glob condition escapes too; an equality compares the value as it is.
        let config = BTreeMap::from([("t".to_string(), "acme_*".to_string())]);
        let p = Policy::parse(
            r#"{"permissions":[{"effect":"ALLOW","actions":["graph:EmitEntity"],"resources":["type:*"],
                "condition":{"stringLike":{"graph:type":"{{config.t}}"},"stringEquals":{"graph:class":"{{config.t}}"}}}]}"#,
            "m",
            &config,
        )
        .unwrap();
        // (Conditions come in key order: stringEquals, then stringLike.)
        assert_eq!(p.statements[0].conditions[0].2, ["acme_*"]);
        assert_eq!(p.statements[0].conditions[1].2, [r"acme_\*"]);
    }

    #[test]
    fn a_templated_url_keeps_a_literal_host_of_its_own() {
        for (resource, field, value, why) in [
            ("{{config.apiUrl}}*", "apiUrl", "http://", "literal host"),
            (
                "{{config.apiUrl}}*",
                "apiUrl",
                "https://api.example",
                "literal host",
            ),
            (
                "{{config.apiUrl}}*",
                "apiUrl",
                "https://*.example/",
                "escaped",
            ),
            ("{{config.apiUrl}}*", "apiUrl", "ftp://h/", "http or https"),
            ("{{config.apiUrl}}*", "apiUrl", "*", "no scheme"),
            ("{{config.apiUrl}}*", "apiUrl", "", "no scheme"),
            (
                "https://{{config.sub}}.example.com/*",
                "sub",
                "evil.com/",
                "runs out of the host",
            ),
            (
                "https://{{config.sub}}.example.com/*",
                "sub",
                "evil.com?",
                "query needs a path",
            ),
            (
                "https://{{config.sub}}.example.com/*",
                "sub",
                "evil.com#",
                "fragment",
            ),
            (
                "https://{{config.sub}}.example.com/*",
                "sub",
                "x@evil.com",
                "user-info",
            ),
            (
                "https://{{config.sub}}.example.com/*",
                "sub",
                "*",
                "escaped",
            ),
            ("https://{{config.host}}/*", "host", "", "host is empty"),
            (
                "https://{{config.host}}:8443/*",
                "host",
                "evil.com:80",
                "brackets",
            ),
        ] {
            let e = templated(resource, field, value).unwrap_err().to_string();
            assert!(
                e.contains("$.permissions[0].resources[0]") && e.contains(why),
                "{value:?}: {e}"
            );
        }
        // The same for http:url conditions.
        let config = BTreeMap::from([("apiUrl".to_string(), "http://".to_string())]);
        let e = Policy::parse(
            r#"{"permissions":[{"effect":"ALLOW","actions":["secret:Use"],"resources":["secret:t"],
                "condition":{"stringLike":{"http:url":"{{config.apiUrl}}*"}}}]}"#,
            "m",
            &config,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("m: $.permissions[0].condition.stringLike.http:url: \"{{config.apiUrl}}*\" becomes \"http://*\""),
            "{e}"
        );
        // The manifest check's stand-in values, and real base URLs, pass.
        for value in [
            "https://apiurl.invalid/",
            "http://127.0.0.1:8080/api/v1/",
            "https://[::1]/",
        ] {
            assert!(
                templated("{{config.apiUrl}}*", "apiUrl", value).is_ok(),
                "{value}"
            );
            assert!(
                templated("{{config.apiUrl}}/web/*", "apiUrl", value).is_ok(),
                "{value}"
            );
        }
        assert!(templated("https://{{config.sub}}.example.com/*", "sub", "eu").is_ok());
    }

    #[test]
    fn malformed_url_patterns_are_refused_at_parse() {
        let e = parse_err(&op_policy("https://user@h.example/*"));
        assert!(
            e.starts_with("p.json: $.permissions[0].resources[0]: expected *, type:<glob>, secret:<glob> or a URL pattern scheme://host[:port][/path[?query]] (user-info"),
            "{e}"
        );
        assert!(parse_err(&op_policy("https://h.example/#x")).contains("fragment"));
        let e = parse_err(&op_policy("*evil.example*"));
        assert!(e.contains("(no scheme://"), "{e}");
        assert!(Policy::parse(&op_policy("type:a://b"), "p.json", &cfg()).is_ok());
        let any_url = r#"{"permissions":[{"effect":"DENY","actions":["secret:Use"],"resources":["*"],
            "condition":{"stringLike":{"http:url":"*"}}}]}"#;
        let p = Policy::parse(any_url, "p.json", &cfg()).unwrap();
        let u = Url::parse("https://h.example/").unwrap();
        let d = p.evaluate("secret:Use", "secret:t", &Context::http("GET", &u));
        assert_eq!(d.rule, "p.json permissions[0] (DENY)");
    }

    #[test]
    fn untemplated_parsing_keeps_templates_visible() {
        let p = Policy::parse_untemplated(DESIGN_EXAMPLE, "manifest").unwrap();
        assert_eq!(p.statements[0].resources[0], "{{config.apiUrl}}*");
        assert_eq!(p.statements[2].conditions[0].2, ["{{config.apiUrl}}*"]);
        assert!(!http(&p, "GET", "https://acme.api.kandji.io/api/v1/x").allowed);
    }
}
