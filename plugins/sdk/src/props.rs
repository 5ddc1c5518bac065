//! Reading provider JSON into data-model properties, and the host's rules for a
//! property's value (`host/src/datamodel.rs`), so a connector can leave out a value the
//! host would reject the whole object for.

use serde_json::Value;

/// The longest string the host accepts as a property value (or as an array item), in
/// characters.
pub const MAX_STRING_CHARS: usize = 4096;

/// Why the host would reject an object holding property `name` with `value`, or `None`
/// when the host accepts it. The host's rules: no nested objects; an array holds values
/// of one primitive type (no `null`, no nested arrays or objects); no string (nor array
/// item) longer than [`MAX_STRING_CHARS`] characters; a property whose name ends in `On`
/// is a time in epoch milliseconds (an integer) or `null`.
pub fn property_problem(name: &str, value: &Value) -> Option<&'static str> {
    if let Some(problem) = value_problem(value) {
        return Some(problem);
    }
    if name.ends_with("On") && !(value.is_null() || value.is_i64() || value.is_u64()) {
        return Some("a time property (`…On`) that is not epoch milliseconds");
    }
    None
}

/// Why the host would reject `value` as any property's value, whatever its name.
pub fn value_problem(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(_) => Some("a nested object"),
        Value::String(s) if too_long(s) => Some("a string longer than 4096 characters"),
        Value::Array(items) => array_problem(items),
        _ => None,
    }
}

fn too_long(s: &str) -> bool {
    // Bytes bound characters from above: most strings need no count.
    s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS
}

/// The kind of a primitive array item; `None` for `null`, arrays and objects.
fn kind(v: &Value) -> Option<u8> {
    match v {
        Value::String(_) => Some(0),
        Value::Number(_) => Some(1),
        Value::Bool(_) => Some(2),
        _ => None,
    }
}

fn array_problem(items: &[Value]) -> Option<&'static str> {
    if let Some(problem) = array_shape_problem(items) {
        return Some(problem);
    }
    items
        .iter()
        .any(|i| i.as_str().is_some_and(too_long))
        .then_some("an array holding a string longer than 4096 characters")
}

/// An array's shape against the host's rule: one primitive type, no `null`, nothing nested.
fn array_shape_problem(items: &[Value]) -> Option<&'static str> {
    let mut first = None;
    for item in items {
        let Some(k) = kind(item) else {
            return Some("an array holding null or a nested value");
        };
        if *first.get_or_insert(k) != k {
            return Some("an array mixing types");
        }
    }
    None
}

/// Whether `v` has a property's shape: a primitive, `null`, or a flat array of one
/// primitive type without `null`s. Content rules (string length, `…On` times) are not
/// shape: the builders apply those to every property ([`crate::entity`]).
fn has_property_shape(v: &Value) -> bool {
    match v {
        Value::Object(_) => false,
        Value::Array(items) => array_shape_problem(items).is_none(),
        _ => true,
    }
}

/// The value if it has a property's shape: a primitive, or a flat array of one primitive
/// type. `null` is dropped (an absent property); objects, and arrays that hold `null`, a
/// nested value or mixed types, too (they stay in `_rawData`; JupiterOne has no property
/// form for them, and cleaning an array would store a list the provider never sent).
///
/// The host's content rules (a string over [`MAX_STRING_CHARS`] characters, a `…On`
/// property that is not epoch milliseconds) are applied when the entity is built: the
/// builder leaves such a property out with a warning naming the entity and the property.
pub fn plain(v: &Value, field: &str) -> Option<Value> {
    v.get(field)
        .filter(|x| !x.is_null())
        .and_then(|x| allowed(Some(x)))
}

/// As [`plain`], but an explicit `null` is kept (JupiterOne keeps API nulls).
pub fn plain_or_null(v: &Value, field: &str) -> Option<Value> {
    allowed(v.get(field))
}

/// A value with a property's shape (`null` included), or `None`; see [`plain`].
pub fn allowed(v: Option<&Value>) -> Option<Value> {
    v.filter(|x| has_property_shape(x)).cloned()
}

/// `items[].field` of a list of objects, as one flat array: the items whose `field` is a
/// string, number or boolean, in order (an item without the field, or with `null`,
/// contributes nothing, as JupiterOne's `map` then `filter` gives). `None` when `list`
/// is not an array, or when the values mix types (the host rejects a mixed array; the
/// list stays in `_rawData`).
pub fn pluck(list: Option<&Value>, field: &str) -> Option<Value> {
    let values: Vec<Value> = list?
        .as_array()?
        .iter()
        .filter_map(|i| i.get(field))
        .filter(|v| kind(v).is_some())
        .cloned()
        .collect();
    array_shape_problem(&values)
        .is_none()
        .then_some(Value::Array(values))
}

/// A non-empty string field.
pub fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A string a person can read as a name: a JSON string that is not empty, not only
/// whitespace, and not longer than [`MAX_STRING_CHARS`] characters (the host rejects a
/// longer one, and a name cut short would read as whole), kept as the provider wrote it.
/// `null`, numbers and other shapes are not.
pub fn readable(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| readable_text(s))
        .map(String::from)
}

/// Whether `s` is readable as a name: see [`readable`].
pub fn readable_text(s: &str) -> bool {
    !s.trim().is_empty() && !too_long(s)
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

/// `v` without the named top-level fields (secrets, bulky blobs), for `_rawData`. It
/// takes the record whole, so nothing is copied: a caller that still needs it clones it.
pub fn without(mut v: Value, drop: &[&str]) -> Value {
    if let Value::Object(m) = &mut v {
        for field in drop {
            m.remove(*field);
        }
    }
    v
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
        assert_eq!(without(v, &["a", "b", "c", "d", "e"]), json!({ "f": "" }));
    }

    #[test]
    fn arrays_of_mixed_types_null_or_nested_items_have_no_property_shape() {
        let v = json!({
            "mixed": [1, "a"], "bools": [true, 1], "nulls": ["a", null], "nested": ["a", ["b"]],
            "objects": [{"a": 1}], "empty": [], "strings": ["a", "b"], "numbers": [1, 2.5],
        });
        for f in ["mixed", "bools", "nulls", "nested", "objects"] {
            assert_eq!(plain(&v, f), None, "{f}");
            assert_eq!(plain_or_null(&v, f), None, "{f}");
            assert_eq!(allowed(v.get(f)), None, "{f}");
        }
        for f in ["empty", "strings", "numbers"] {
            assert_eq!(plain(&v, f).as_ref(), v.get(f), "{f}");
        }
    }

    #[test]
    fn property_problems_are_the_hosts() {
        let long = "é".repeat(MAX_STRING_CHARS + 1);
        let at_limit = "é".repeat(MAX_STRING_CHARS);
        assert_eq!(
            property_problem("p", &json!(at_limit)),
            None,
            "characters, not bytes"
        );
        assert_eq!(
            property_problem("p", &json!(long)),
            Some("a string longer than 4096 characters")
        );
        assert_eq!(
            property_problem("p", &json!(["a", long])),
            Some("an array holding a string longer than 4096 characters")
        );
        assert_eq!(
            property_problem("p", &json!({"a": 1})),
            Some("a nested object")
        );
        assert_eq!(
            property_problem("p", &json!([1, "a"])),
            Some("an array mixing types")
        );
        assert_eq!(
            property_problem("p", &json!([1, null])),
            Some("an array holding null or a nested value")
        );
        assert_eq!(
            property_problem("p", &json!([[1]])),
            Some("an array holding null or a nested value")
        );
        for ok in [json!(null), json!(1_700_000_000_000i64), json!(0)] {
            assert_eq!(property_problem("createdOn", &ok), None, "{ok}");
        }
        for bad in [json!("2024-01-01"), json!(1.5), json!(true), json!([1])] {
            assert_eq!(
                property_problem("tag.reviewedOn", &bad),
                Some("a time property (`…On`) that is not epoch milliseconds"),
                "{bad}"
            );
        }
        assert_eq!(
            property_problem("on", &json!("x")),
            None,
            "only a name ending in `On`"
        );
        // Plain keeps what is only a content problem: the builder leaves it out, warning.
        let v = json!({ "long": long });
        assert!(plain(&v, "long").is_some());
    }

    #[test]
    fn pluck_gives_one_flat_array_or_nothing() {
        let list = json!([{ "uid": "a" }, { "uid": null }, {}, { "uid": "b" }, { "uid": ["c"] }, { "uid": {"d": 1} }]);
        assert_eq!(pluck(Some(&list), "uid"), Some(json!(["a", "b"])));
        let mixed = json!([{ "uid": 501 }, { "uid": "root" }]);
        assert_eq!(pluck(Some(&mixed), "uid"), None, "mixed types: left out");
        assert_eq!(pluck(Some(&json!([])), "uid"), Some(json!([])));
        assert_eq!(pluck(Some(&json!({ "uid": 1 })), "uid"), None);
        assert_eq!(pluck(None, "uid"), None);
    }

    #[test]
    fn readable_names_are_bounded() {
        let long = "x".repeat(MAX_STRING_CHARS + 1);
        let v = json!({ "long": long, "ok": "x".repeat(MAX_STRING_CHARS), "serial": "C02X" });
        assert_eq!(readable(v.get("long")), None);
        assert!(readable(v.get("ok")).is_some());
        assert_eq!(
            first_readable(&v, &["long", "serial"]).as_deref(),
            Some("C02X"),
            "an over-long name falls through to the next field"
        );
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
