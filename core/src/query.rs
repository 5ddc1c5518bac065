//! Property filters over stored graph objects, shared by `corral query` and alert rules:
//! `PROPERTY OP VALUE` with `=`, `!=`, `~` (contains), `<`, `<=`, `>`, `>=`.
//!
//! VALUE is JSON when it parses as JSON (`false`, `12`, `"text"`), else plain text.
//! Ordering compares numbers as numbers, dotted versions (`10.0.19044`) part by part, and
//! other text as text, so `osVersion < 10.0.19045` means what it says.

use serde_json::{Map, Value};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Contains,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub property: String,
    pub op: Op,
    pub value: Value,
}

/// Longest operators first, so `<=` is not read as `<`.
const OPS: [(&str, Op); 7] = [
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("~", Op::Contains),
    ("<", Op::Lt),
    (">", Op::Gt),
];

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let found = OPS
            .iter()
            .filter_map(|(sym, op)| text.find(sym).map(|at| (at, *sym, *op)))
            .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())));
        let Some((at, sym, op)) = found else {
            return Err(format!(
                "filter {text:?}: expected PROPERTY OP VALUE with OP one of = != ~ < <= > >="
            ));
        };
        let property = text[..at].trim();
        let raw = text[at + sym.len()..].trim();
        if property.is_empty() {
            return Err(format!("filter {text:?}: no property before {sym:?}"));
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        Ok(Filter {
            property: property.to_string(),
            op,
            value,
        })
    }

    /// Whether `object` has the property and it satisfies the filter; an array matches
    /// when any element does.
    pub fn matches(&self, object: &Map<String, Value>) -> bool {
        match object.get(&self.property) {
            None | Some(Value::Null) => self.op == Op::Ne && !self.value.is_null(),
            Some(Value::Array(items)) => items.iter().any(|v| self.test(v)),
            Some(v) => self.test(v),
        }
    }

    fn test(&self, v: &Value) -> bool {
        match self.op {
            Op::Eq => loose_eq(v, &self.value),
            Op::Ne => !loose_eq(v, &self.value),
            Op::Contains => text_of(v)
                .to_lowercase()
                .contains(&text_of(&self.value).to_lowercase()),
            Op::Lt => compare(v, &self.value) == Some(Ordering::Less),
            Op::Le => matches!(
                compare(v, &self.value),
                Some(Ordering::Less | Ordering::Equal)
            ),
            Op::Gt => compare(v, &self.value) == Some(Ordering::Greater),
            Op::Ge => matches!(
                compare(v, &self.value),
                Some(Ordering::Greater | Ordering::Equal)
            ),
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Equal as JSON, or as text when one side is a string (`"12"` = 12).
fn loose_eq(a: &Value, b: &Value) -> bool {
    a == b || ((a.is_string() || b.is_string()) && text_of(a) == text_of(b))
}

/// Numbers as numbers, dotted versions part by part, else text; `None` when one side
/// is not comparable (null, bool, object).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x.partial_cmp(&y);
    }
    let (x, y) = (scalar_text(a)?, scalar_text(b)?);
    match (version_parts(&x), version_parts(&y)) {
        (Some(vx), Some(vy)) => Some(vx.cmp(&vy)),
        _ => Some(x.cmp(&y)),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `10.0.19044` → [10, 0, 19044]; trailing zero parts dropped so `14` = `14.0`.
fn version_parts(s: &str) -> Option<Vec<u64>> {
    let mut parts: Vec<u64> = s
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_operators_and_values() {
        let f = Filter::parse("encrypted = false").unwrap();
        assert_eq!(
            (f.property.as_str(), f.op, f.value),
            ("encrypted", Op::Eq, json!(false))
        );
        let f = Filter::parse("osVersion<=10.0.19044").unwrap();
        assert_eq!((f.op, f.value), (Op::Le, json!("10.0.19044")));
        let f = Filter::parse("osName ~ Windows Server").unwrap();
        assert_eq!((f.op, f.value), (Op::Contains, json!("Windows Server")));
        assert_eq!(Filter::parse("a != 3").unwrap().op, Op::Ne);
        assert!(Filter::parse("no operator").is_err());
        assert!(Filter::parse("= 3").is_err());
    }

    #[test]
    fn compares_versions_numbers_and_text() {
        let o = obj(
            json!({"v": "10.0.19044", "n": 12, "s": "macOS 13.4", "tags": ["a", "b"], "e": false}),
        );
        let yes = |f: &str| Filter::parse(f).unwrap().matches(&o);
        assert!(yes("v < 10.0.19045"));
        assert!(yes("v > 9.9"));
        assert!(!yes("v < 10.0.9"));
        assert!(yes("v >= 10.0.19044.0"));
        assert!(yes("n < 13") && yes("n = 12") && yes("n = \"12\""));
        assert!(yes("s ~ macos"));
        assert!(yes("tags = b") && !yes("tags = c"));
        assert!(yes("e = false") && !yes("e = true"));
        assert!(!yes("missing = 1") && yes("missing != 1"));
    }
}
