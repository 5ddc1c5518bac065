//! Reading provider JSON into data-model properties.

use serde_json::{Map, Value};

/// The value if the data model allows it as a property: a primitive, or a flat array of
/// primitives. `null` is dropped (an absent property), objects and nested arrays too.
pub fn plain(v: &Value, field: &str) -> Option<Value> {
    match v.get(field)? {
        Value::Null | Value::Object(_) => None,
        Value::Array(items)
            if items
                .iter()
                .any(|i| i.is_object() || i.is_array() || i.is_null()) =>
        {
            None
        }
        other => Some(other.clone()),
    }
}

/// As [`plain`], but an explicit `null` is kept (JupiterOne keeps API nulls).
pub fn plain_or_null(v: &Value, field: &str) -> Option<Value> {
    allowed(v.get(field))
}

/// A value the data model allows as a property (`null` included), or `None`.
pub fn allowed(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Null => Some(Value::Null),
        Value::Object(_) => None,
        Value::Array(items)
            if items
                .iter()
                .any(|i| i.is_object() || i.is_array() || i.is_null()) =>
        {
            None
        }
        other => Some(other.clone()),
    }
}

/// A non-empty string field.
pub fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A string a person can read as a name: a JSON string that is not empty and not only
/// whitespace, kept as the provider wrote it. `null`, numbers and other shapes are not.
pub fn readable(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(String::from)
}

/// The first [`readable`] value of `fields` in `v`, in order: a `name`/`displayName`
/// fallback chain such as `device_name`, then `serial_number`.
pub fn first_readable(v: &Value, fields: &[&str]) -> Option<String> {
    fields.iter().find_map(|f| readable(v.get(*f)))
}

/// An ISO time field as epoch milliseconds.
pub fn time_ms(v: &Value, field: &str) -> Option<i64> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(crate::time::parse_epoch_ms)
}

/// `v` without the named top-level fields (secrets, bulky blobs), for `_rawData`.
pub fn without(v: &Value, drop: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !drop.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// A tag value typed as JupiterOne's tag helpers type it: `true`/`false`, integers,
/// decimals (when `decimals`), else the string.
pub fn tag_value(v: &str, decimals: bool) -> Value {
    match v {
        "true" => true.into(),
        "false" => false.into(),
        _ => {
            if !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_digit())
                && let Ok(i) = v.parse::<i64>()
            {
                return i.into();
            }
            match v.parse::<f64>() {
                Ok(f) if decimals && f.is_finite() && v.contains('.') => f.into(),
                _ => v.into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_values_only() {
        let v = json!({ "a": 1, "b": null, "c": { "x": 1 }, "d": [1, 2], "e": [[1]], "f": "" });
        assert_eq!(plain(&v, "a"), Some(json!(1)));
        assert_eq!(plain(&v, "b"), None);
        assert_eq!(plain_or_null(&v, "b"), Some(Value::Null));
        assert_eq!(plain(&v, "c"), None);
        assert_eq!(plain(&v, "d"), Some(json!([1, 2])));
        assert_eq!(plain(&v, "e"), None);
        assert_eq!(text(&v, "f"), None);
        assert_eq!(without(&v, &["a", "b", "c", "d", "e"]), json!({ "f": "" }));
    }

    #[test]
    fn readable_names_skip_blank_null_and_non_strings() {
        let v = json!({ "a": "", "b": "  \t\n", "c": null, "d": 7, "e": " Ada ", "f": "Bo" });
        for f in ["a", "b", "c", "d", "missing"] {
            assert_eq!(readable(v.get(f)), None, "{f}");
        }
        assert_eq!(
            readable(v.get("e")).as_deref(),
            Some(" Ada "),
            "kept as written"
        );
        assert_eq!(
            first_readable(&v, &["a", "b", "c", "d", "f", "e"]).as_deref(),
            Some("Bo")
        );
        assert_eq!(first_readable(&v, &["a", "missing"]), None);
    }

    #[test]
    fn tag_values_are_typed() {
        assert_eq!(tag_value("true", false), json!(true));
        assert_eq!(tag_value("12", false), json!(12));
        assert_eq!(tag_value("1.5", true), json!(1.5));
        assert_eq!(tag_value("1.5", false), json!("1.5"));
        assert_eq!(tag_value("TRUE", true), json!("TRUE"));
    }
}
