//! The capability request a connector makes, built with types instead of written as
//! policy JSON. The host intersects it with the operator's policy; what is not asked for
//! here is denied whatever the operator allows.
//!
//! ```ignore
//! Capabilities::new()
//!     .http(&["GET"], "{{config.apiUrl}}*")
//!     .secret("accessToken", "{{config.apiUrl}}*")
//!     .graph("type:kandji_*")
//!     .limit(Limit::RequestsPerSecond, 50.0)
//! ```

use serde_json::{Map, Value, json};

/// A limit a connector may ask for (the policy grammar's `limits`; the host clamps each
/// to its documented range, and only the operator may raise those that bound the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MemoryMib,
    TimeoutSeconds,
    MaxRequests,
    RequestsPerSecond,
    /// A provider's quota per minute (a token bucket, shared by the runs of one tenant).
    RequestsPerMinute,
    /// A provider's quota per hour (a token bucket, shared by the runs of one tenant).
    RequestsPerHour,
    MaxConcurrentRequests,
    MaxResponseBytes,
    MaxEntities,
    MaxRelationships,
    MaxGraphBytes,
    MaxRawDataBytes,
    MaxConcurrentSteps,
    MaxInFlightBytes,
}

impl Limit {
    /// The limit's name in the policy grammar.
    pub fn key(self) -> &'static str {
        match self {
            Limit::MemoryMib => "memoryMiB",
            Limit::TimeoutSeconds => "timeoutSeconds",
            Limit::MaxRequests => "maxRequests",
            Limit::RequestsPerSecond => "requestsPerSecond",
            Limit::RequestsPerMinute => "requestsPerMinute",
            Limit::RequestsPerHour => "requestsPerHour",
            Limit::MaxConcurrentRequests => "maxConcurrentRequests",
            Limit::MaxResponseBytes => "maxResponseBytes",
            Limit::MaxEntities => "maxEntities",
            Limit::MaxRelationships => "maxRelationships",
            Limit::MaxGraphBytes => "maxGraphBytes",
            Limit::MaxRawDataBytes => "maxRawDataBytes",
            Limit::MaxConcurrentSteps => "maxConcurrentSteps",
            Limit::MaxInFlightBytes => "maxInFlightBytes",
        }
    }
}

/// A capability request: ALLOW statements and limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capabilities {
    permissions: Vec<Value>,
    limits: Map<String, Value>,
}

impl Capabilities {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests with these methods (`GET`, `POST`, …) to URLs matching `url_glob`
    /// (`{{config.NAME}}` templates a config value in; `*` matches any run of characters,
    /// `/` and `?` included).
    /// Methods are written upper case (the grammar's); an empty list asks for nothing.
    pub fn http(self, methods: &[&str], url_glob: &str) -> Self {
        if methods.is_empty() {
            return self;
        }
        let actions: Vec<String> = methods
            .iter()
            .map(|m| format!("http:{}", m.to_ascii_uppercase()))
            .collect();
        self.allow(json!(actions), url_glob, None)
    }

    /// Use of the secret config field `name` (by reference: bearer, basic or a header
    /// template), only on requests to URLs matching `url_glob`.
    pub fn secret(self, name: &str, url_glob: &str) -> Self {
        let condition = json!({ "stringLike": { "http:url": url_glob } });
        self.allow(
            json!(["secret:Use"]),
            &format!("secret:{name}"),
            Some(condition),
        )
    }

    /// Emitting entities and relationships of `_type`s matching `type_glob`
    /// (`type:kandji_*`), and reading back those of this run.
    pub fn graph(self, type_glob: &str) -> Self {
        let actions = json!(["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"]);
        self.allow(actions, type_glob, None)
    }

    /// A limit for this connector's runs. A whole number is written as one (the
    /// grammar's integer limits refuse `8.0`); a value JSON cannot hold is written as
    /// `null`, which the host refuses by name.
    pub fn limit(mut self, limit: Limit, value: f64) -> Self {
        let number = if value.fract() == 0.0 && (0.0..9.0e15).contains(&value) {
            Value::from(value as u64)
        } else {
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
        };
        self.limits.insert(limit.key().to_string(), number);
        self
    }

    /// The key runs share their quotas by (`{{config.NAME}}` templates a config value
    /// in); without one, the requests to one host share them.
    pub fn quota_key(mut self, key: &str) -> Self {
        self.limits
            .insert("quotaKey".to_string(), Value::String(key.to_string()));
        self
    }

    fn allow(mut self, actions: Value, resource: &str, condition: Option<Value>) -> Self {
        let mut statement = json!({
            "effect": "ALLOW",
            "actions": actions,
            "resources": [resource],
        });
        if let Some(c) = condition {
            statement["condition"] = c;
        }
        self.permissions.push(statement);
        self
    }

    /// The request as policy JSON, what the manifest carries.
    pub fn to_json(&self) -> String {
        let mut doc = json!({ "permissions": self.permissions });
        if !self.limits.is_empty() {
            doc["limits"] = Value::Object(self.limits.clone());
        }
        doc.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_the_policy_grammar_exactly() {
        let c = Capabilities::new()
            .http(&["GET", "post"], "{{config.apiUrl}}*")
            .http(&[], "https://nothing.example/*")
            .secret("accessToken", "{{config.apiUrl}}*")
            .graph("type:kandji_*")
            .limit(Limit::RequestsPerSecond, 0.5)
            .limit(Limit::RequestsPerHour, 10_000.0)
            .quota_key("acme:{{config.apiUrl}}")
            .limit(Limit::MaxConcurrentRequests, 8.0);
        let got: Value = serde_json::from_str(&c.to_json()).unwrap();
        let want = json!({
            "permissions": [
                { "effect": "ALLOW", "actions": ["http:GET", "http:POST"], "resources": ["{{config.apiUrl}}*"] },
                { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:accessToken"],
                  "condition": { "stringLike": { "http:url": "{{config.apiUrl}}*" } } },
                { "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"],
                  "resources": ["type:kandji_*"] }
            ],
            "limits": { "requestsPerSecond": 0.5, "requestsPerHour": 10000, "quotaKey": "acme:{{config.apiUrl}}", "maxConcurrentRequests": 8 }
        });
        assert_eq!(got, want);
        assert_eq!(
            Capabilities::new().to_json(),
            r#"{"permissions":[]}"#,
            "no limits asked, no limits written"
        );
    }
}
