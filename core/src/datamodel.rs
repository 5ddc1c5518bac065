//! JupiterOne data-model rules the host enforces on every emitted object, whatever the
//! connector: key length, known classes, flat properties, string size, time properties.

use serde_json::{Map, Value};

pub const MIN_KEY_LEN: usize = 10;
pub const MAX_KEY_LEN: usize = 4096;
pub const MAX_STRING_LEN: usize = 4096;
/// Classes of one object, and the longest class name (the manifest's grammar's cap).
pub const MAX_CLASSES: usize = 8;
pub const MAX_CLASS_LEN: usize = 64;

/// JupiterOne's entity classes and what each requires, generated from
/// `@jupiterone/data-model` (`core/src/classes.rs`).
pub use crate::classes::{CLASSES, DATA_MODEL_VERSION};

/// Whether `class` is one of the data model's entity classes.
pub fn known_class(class: &str) -> bool {
    CLASSES.binary_search_by(|(c, _)| c.cmp(&class)).is_ok()
}

/// `_class` as text: JupiterOne allows a string or an array of strings (anything else
/// names no class).
pub fn class_names(obj: &Map<String, Value>) -> Vec<&str> {
    match obj.get("_class") {
        Some(Value::String(c)) => vec![c.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The properties `class` requires that `obj` lacks (the schema's own check; the host
/// reports them, it does not drop the entity for them).
pub fn missing_required<'a>(obj: &Map<String, Value>, class: &str) -> Vec<&'a str> {
    let Ok(i) = CLASSES.binary_search_by(|(c, _)| c.cmp(&class)) else {
        return Vec::new();
    };
    CLASSES[i]
        .1
        .iter()
        .copied()
        .filter(|p| !obj.contains_key(*p))
        .collect()
}

/// The parts of an object every check needs.
#[derive(Debug, Clone)]
pub struct Header {
    pub key: String,
    pub type_name: String,
    pub classes: Vec<String>,
}

/// Parses one emitted JSON text into an object and its header, or the reason it is not one.
pub fn parse_object(json: &str) -> Result<(Map<String, Value>, Header), String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".into());
    };
    let header = header_of(&obj)?;
    Ok((obj, header))
}

/// Refuses a key serde_json reserves anywhere in `obj`: stored with its siblings sorted,
/// it could come first in its object, and every later parse of the record would read
/// the object as the JSON text its value holds (or fail).
fn refuse_reserved_keys(obj: &Map<String, Value>) -> Result<(), String> {
    fn in_map(m: &Map<String, Value>) -> bool {
        m.iter()
            .any(|(k, v)| k.starts_with(crate::canonical::RESERVED_KEYS) || in_value(v))
    }
    fn in_value(v: &Value) -> bool {
        match v {
            Value::Object(m) => in_map(m),
            Value::Array(items) => items.iter().any(in_value),
            _ => false,
        }
    }
    if in_map(obj) {
        return Err(format!(
            "a key starting {:?} is reserved",
            crate::canonical::RESERVED_KEYS
        ));
    }
    Ok(())
}

/// An object without its `_rawData`, that `_rawData` as canonical text, and the header.
pub type LazyObject<'a> = (Map<String, Value>, Option<&'a str>, Header);

/// [`parse_object`], with `_rawData` left as the text it came in when that text is
/// canonical ([`crate::canonical::is_canonical`]; the object then holds no `_rawData`):
/// most of a connector's bytes, which the host only measures, stores and writes out,
/// are never built as a tree. Any other text, malformed ones included, is parsed whole
/// by [`parse_object`], so what is accepted and every reason given are the same.
pub fn parse_object_lazy(json: &str) -> Result<LazyObject<'_>, String> {
    match split_raw_data(json) {
        Some((obj, raw)) => {
            let header = header_of(&obj)?;
            Ok((obj, raw, header))
        }
        None => parse_object(json).map(|(obj, header)| (obj, None, header)),
    }
}

/// The object's properties but `_rawData` parsed, and `_rawData`'s text when canonical;
/// `None` when the text is not a JSON object or its `_rawData` is not canonical.
fn split_raw_data(json: &str) -> Option<(Map<String, Value>, Option<&str>)> {
    let mut de = serde_json::Deserializer::from_str(json);
    let (obj, raw) = serde::Deserializer::deserialize_map(&mut de, SplitRawData).ok()?;
    de.end().ok()?;
    match raw.map(serde_json::value::RawValue::get) {
        Some(text) if !crate::canonical::is_canonical(text) => None,
        raw => Some((obj, raw)),
    }
}

/// The visitor of [`split_raw_data`]: a repeated property keeps its last value, as a
/// parsed map does. It gives up (and the whole text is parsed) on a repeated `_rawData`,
/// whose earlier values a `RawValue` would only skim (a whole parse refuses a number out
/// of range or a lone surrogate there), and on a key serde_json reserves: a whole parse
/// reads `{"$serde_json::private::RawValue": "…"}` as the text it holds.
struct SplitRawData;

impl<'de> serde::de::Visitor<'de> for SplitRawData {
    type Value = (Map<String, Value>, Option<&'de serde_json::value::RawValue>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut obj = Map::new();
        let mut raw = None;
        while let Some(key) = map.next_key::<String>()? {
            if key.starts_with(crate::canonical::RESERVED_KEYS) {
                return Err(serde::de::Error::custom("a key serde_json reserves"));
            }
            if key == crate::canonical::RAW_DATA {
                if raw.is_some() {
                    return Err(serde::de::Error::custom("_rawData repeated"));
                }
                raw = Some(map.next_value()?);
            } else {
                obj.insert(key, map.next_value()?);
            }
        }
        Ok((obj, raw))
    }
}

/// The header of a parsed object, or why it has none.
fn header_of(obj: &Map<String, Value>) -> Result<Header, String> {
    refuse_reserved_keys(obj)?;
    let key = string_field(obj, "_key")?;
    if key.chars().count() < MIN_KEY_LEN {
        return Err(format!(
            "_key {key:?} is shorter than {MIN_KEY_LEN} characters"
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("_key is longer than {MAX_KEY_LEN} bytes"));
    }
    let type_name = string_field(obj, "_type")?;
    // `_type` names output files: the manifest's grammar, whatever was declared.
    crate::manifest::check_type_name(&type_name).map_err(|e| e.message)?;
    let classes = match obj.get("_class") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|c| {
                c.as_str()
                    .map(String::from)
                    .ok_or("_class must hold strings".to_string())
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("_class must be a string or a non-empty array of strings".into()),
    };
    // Classes are matched against policy conditions: bounded like the manifest's.
    if classes.len() > MAX_CLASSES || classes.iter().any(|c| c.len() > MAX_CLASS_LEN) {
        return Err(format!(
            "_class holds more than {MAX_CLASSES} classes or one longer than {MAX_CLASS_LEN} characters"
        ));
    }
    Ok(Header {
        key,
        type_name,
        classes,
    })
}

fn string_field(obj: &Map<String, Value>, field: &str) -> Result<String, String> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{field} must be a string")),
        None => Err(format!("{field} is missing")),
    }
}

/// Entity rules beyond the header: known classes, name and displayName, flat properties.
pub fn check_entity(obj: &Map<String, Value>, header: &Header) -> Result<(), String> {
    if obj.contains_key("_mapping") {
        return Err("_mapping is allowed only on a relationship declared mapped".into());
    }
    if let Some(c) = header.classes.iter().find(|c| !known_class(c)) {
        return Err(format!("_class {c:?} is not a known data-model class"));
    }
    for field in ["name", "displayName"] {
        match obj.get(field) {
            Some(Value::String(_)) => {}
            Some(_) => return Err(format!("{field} must be a string")),
            None => return Err(format!("{field} is missing")),
        }
    }
    check_properties(obj)
}

/// Relationship rules beyond the header: an upper-case verb class, both ends named.
pub fn check_relationship(obj: &Map<String, Value>, header: &Header) -> Result<(), String> {
    match header.classes.as_slice() {
        [c] if !c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {}
        _ => return Err("relationship _class must be one upper-case verb such as HAS".into()),
    }
    let mapped = obj.contains_key("_mapping");
    if !mapped {
        for field in ["_fromEntityKey", "_toEntityKey"] {
            if !matches!(obj.get(field), Some(Value::String(s)) if !s.is_empty()) {
                return Err(format!("{field} is missing"));
            }
        }
    }
    check_properties(obj)
}

/// Most target filter keys, and properties in one filter, of a mapped relationship.
const MAX_FILTERS: usize = 16;

/// A mapped relationship's `_mapping`: `relationshipDirection` (`FORWARD`/`REVERSE`),
/// `sourceEntityKey`, `targetFilterKeys` (lists of property names), `targetEntity` (flat
/// properties with a `_class`), optional `skipTargetCreation`; nothing else.
pub fn check_mapping_shape(mapping: &Value) -> Result<(), String> {
    let Value::Object(m) = mapping else {
        return Err("_mapping must be an object".into());
    };
    const KEYS: [&str; 5] = [
        "relationshipDirection",
        "sourceEntityKey",
        "targetFilterKeys",
        "targetEntity",
        "skipTargetCreation",
    ];
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "_mapping.{k} is not a mapping field ({})",
            KEYS.join(", ")
        ));
    }
    if !matches!(
        m.get("relationshipDirection").and_then(Value::as_str),
        Some("FORWARD" | "REVERSE")
    ) {
        return Err("_mapping.relationshipDirection must be \"FORWARD\" or \"REVERSE\"".into());
    }
    if !matches!(m.get("sourceEntityKey"), Some(Value::String(_))) {
        return Err("_mapping.sourceEntityKey must be a string".into());
    }
    if !matches!(m.get("skipTargetCreation"), None | Some(Value::Bool(_))) {
        return Err("_mapping.skipTargetCreation must be true or false".into());
    }
    check_filter_keys(m.get("targetFilterKeys"))?;
    let Some(Value::Object(target)) = m.get("targetEntity") else {
        return Err("_mapping.targetEntity must be an object".into());
    };
    if !matches!(
        target.get("_class"),
        Some(Value::String(_) | Value::Array(_))
    ) {
        return Err("_mapping.targetEntity must name a _class".into());
    }
    check_properties(target).map_err(|e| format!("_mapping.targetEntity: {e}"))
}

fn check_filter_keys(keys: Option<&Value>) -> Result<(), String> {
    let bad = || {
        format!(
            "_mapping.targetFilterKeys must be 1-{MAX_FILTERS} lists of 1-{MAX_FILTERS} property names"
        )
    };
    let Some(Value::Array(lists)) = keys else {
        return Err(bad());
    };
    let list_ok = |l: &Value| {
        l.as_array().is_some_and(|names| {
            (1..=MAX_FILTERS).contains(&names.len())
                && names
                    .iter()
                    .all(|n| n.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 256))
        })
    };
    if !(1..=MAX_FILTERS).contains(&lists.len()) || !lists.iter().all(list_ok) {
        return Err(bad());
    }
    Ok(())
}

/// Property values are primitives, null, or flat arrays of one primitive type; no nested
/// objects except `_rawData` (and a mapped relationship's `_mapping`); strings are capped;
/// `*On` properties are epoch milliseconds.
fn check_properties(obj: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in obj {
        if name == "_rawData" || name == "_mapping" || name == "_class" {
            continue;
        }
        match value {
            Value::Object(_) => return Err(format!("property {name} is a nested object")),
            Value::Array(items) => check_flat_array(name, items)?,
            Value::String(s) if s.chars().count() > MAX_STRING_LEN => {
                return Err(format!(
                    "property {name} is longer than {MAX_STRING_LEN} characters"
                ));
            }
            _ => {}
        }
        if name.ends_with("On") && !(value.is_null() || value.is_i64() || value.is_u64()) {
            return Err(format!(
                "property {name} must be a time in epoch milliseconds"
            ));
        }
    }
    Ok(())
}

fn check_flat_array(name: &str, items: &[Value]) -> Result<(), String> {
    let kind = |v: &Value| match v {
        Value::String(_) => Some(0),
        Value::Number(_) => Some(1),
        Value::Bool(_) => Some(2),
        _ => None,
    };
    let mut first = None;
    for item in items {
        let Some(k) = kind(item) else {
            return Err(format!(
                "property {name} holds a nested value or null in an array"
            ));
        };
        if *first.get_or_insert(k) != k {
            return Err(format!("property {name} mixes types in one array"));
        }
        if let Value::String(s) = item
            && s.chars().count() > MAX_STRING_LEN
        {
            return Err(format!(
                "property {name} holds a string longer than {MAX_STRING_LEN} characters"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(extra: &str) -> Result<(), String> {
        let json = format!(
            r#"{{"_key":"device-0001","_type":"t_device","_class":["Device"],"name":"n","displayName":"n"{extra}}}"#
        );
        let (obj, h) = parse_object(&json)?;
        check_entity(&obj, &h)
    }

    #[test]
    fn each_rule_names_its_reason() {
        assert_eq!(entity(""), Ok(()));
        assert_eq!(
            entity(r#","p":{"a":1}"#),
            Err("property p is a nested object".into())
        );
        assert_eq!(
            entity(r#","p":[1,"a"]"#),
            Err("property p mixes types in one array".into())
        );
        assert_eq!(
            entity(r#","createdOn":"2020-01-01""#),
            Err("property createdOn must be a time in epoch milliseconds".into())
        );
        assert_eq!(
            entity(r#","_rawData":[{"name":"default","rawData":{"a":{"b":1}}}]"#),
            Ok(())
        );
        let long = "x".repeat(4097);
        assert_eq!(
            entity(&format!(r#","p":"{long}""#)),
            Err("property p is longer than 4096 characters".into())
        );
    }

    #[test]
    fn mapping_only_on_relationships_and_only_in_its_shape() {
        assert_eq!(
            entity(r#","_mapping":{"a":{"b":{"c":1}}}"#),
            Err("_mapping is allowed only on a relationship declared mapped".into())
        );
        let good = serde_json::json!({"relationshipDirection": "FORWARD", "sourceEntityKey": "k",
            "targetFilterKeys": [["_class", "email"]], "targetEntity": {"_class": "Person", "email": "a@b"},
            "skipTargetCreation": true});
        assert_eq!(check_mapping_shape(&good), Ok(()));
        let mut nested = good.clone();
        nested["targetEntity"]["deep"] = serde_json::json!({"x": [[1]]});
        assert_eq!(
            check_mapping_shape(&nested),
            Err("_mapping.targetEntity: property deep is a nested object".into())
        );
        let mut extra = good.clone();
        extra["payload"] = serde_json::json!([1, 2]);
        assert!(
            check_mapping_shape(&extra)
                .unwrap_err()
                .starts_with("_mapping.payload is not a mapping field")
        );
        let mut filters = good.clone();
        filters["targetFilterKeys"] = serde_json::json!([[{"a": 1}]]);
        assert!(
            check_mapping_shape(&filters)
                .unwrap_err()
                .starts_with("_mapping.targetFilterKeys")
        );
        let mut direction = good;
        direction["relationshipDirection"] = "SIDEWAYS".into();
        assert!(
            check_mapping_shape(&direction)
                .unwrap_err()
                .contains("relationshipDirection")
        );
    }

    #[test]
    fn classes_come_sorted_from_the_package_and_carry_their_requirements() {
        assert!(CLASSES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(known_class("Device") && known_class("HostAgent") && !known_class("Gadget"));
        let (obj, _) = parse_object(
            r#"{"_key":"device-0001","_type":"t_device","_class":"Device","name":"n","displayName":"n"}"#,
        )
        .unwrap();
        let missing = missing_required(&obj, "Device");
        assert!(missing.contains(&"ipv4Addresses") && !missing.contains(&"name"));
    }

    #[test]
    fn header_rules() {
        assert_eq!(
            parse_object(r#"{"_key":"123456789","_type":"t","_class":"Device"}"#).unwrap_err(),
            "_key \"123456789\" is shorter than 10 characters"
        );
        let (obj, h) = parse_object(
            r#"{"_key":"1234567890","_type":"t","_class":"Gadget","name":"a","displayName":"a"}"#,
        )
        .unwrap();
        assert_eq!(
            check_entity(&obj, &h),
            Err("_class \"Gadget\" is not a known data-model class".into())
        );
        assert_eq!(parse_object("[1]").unwrap_err(), "not a JSON object");
        let long_class = format!(
            r#"{{"_key":"1234567890","_type":"t","_class":"{}"}}"#,
            "A".repeat(1 << 20)
        );
        assert_eq!(
            parse_object(&long_class).unwrap_err(),
            "_class holds more than 8 classes or one longer than 64 characters"
        );
    }

    #[test]
    fn a_lazy_parse_accepts_refuses_and_encodes_as_a_whole_one() {
        use crate::canonical::{encode, encode_with_raw_data};
        let head = r#""_key":"device-0001","_type":"kandji_device","_class":"Device","name":"n""#;
        let texts = [
            format!(
                r#"{{{head},"_rawData":[{{"name":"default","rawData":{{"a":1,"b":"x\ny"}}}}]}}"#
            ),
            // Not canonical: unsorted, spaced; canonical with a fraction; an escaped key
            // and a repeat (the last one counts).
            format!(r#"{{{head},"_rawData":[{{"rawData":{{"b":1,"a":2}},"name":"default"}}]}}"#),
            format!(r#"{{{head},"_rawData": [1, 2]}}"#),
            format!(r#"{{{head},"_rawData":[1.5]}}"#),
            format!(r#"{{{head},"_raw\u0044ata":[1],"_rawData":[2]}}"#),
            format!(r#"{{{head},"_rawData":[1],"_rawData":[2,3]}}"#),
            format!(r#"{{"_rawData":[1],{head},"name":"m"}}"#),
            format!(r#"{{{head}}}"#),
            // Refused, for the same reasons either way.
            format!(r#"{{{head},"_rawData":[1}}"#),
            format!(
                r#"{{{head},"_rawData":{}}}"#,
                "[".repeat(200) + &"]".repeat(200)
            ),
            format!(
                r#"{{{head},"deep":{}}}"#,
                "[".repeat(200) + &"]".repeat(200)
            ),
            r#"{"_key":"short","_type":"t","_class":"Device","_rawData":[]}"#.to_string(),
            // An earlier `_rawData` the whole parse refuses, a later one it would keep.
            format!(r#"{{{head},"_rawData":[1e400],"_rawData":[1]}}"#),
            format!(r#"{{{head},"_rawData":"\ud800","_rawData":1}}"#),
            format!(
                r#"{{{head},"_rawData":{},"_rawData":1}}"#,
                "[".repeat(200) + &"]".repeat(200)
            ),
            // serde_json's reserved key: its string is read as JSON by a whole parse.
            format!(r#"{{{head},"_rawData":{{"$serde_json::private::RawValue":"[1]"}}}}"#),
            format!(r#"{{{head},"_rawData":{{"$serde_json::private::RawValue":"x"}}}}"#),
            format!(
                r#"{{"$serde_json::private::RawValue":"{{{}}}"}}"#,
                head.replace('"', "\\\"")
            ),
            r#"{"$serde_json::private::RawValue":"[1]"}"#.to_string(),
            // Not first in its object: refused, whichever property holds it.
            format!(r#"{{{head},"_rawData":{{"a":1,"$serde_json::private::RawValue":"x"}}}}"#),
            format!(r#"{{{head},"tags":[{{"a":1,"$serde_json::private::RawValue":"x"}}]}}"#),
            "[1]".to_string(),
            "{} {}".to_string(),
            String::new(),
        ];
        let mut lazy_raw = 0;
        for text in &texts {
            let whole = parse_object(text);
            let lazy = parse_object_lazy(text);
            match (whole, lazy) {
                (Ok((obj, h)), Ok((lazy_obj, raw, lazy_h))) => {
                    assert_eq!(
                        (h.key, h.type_name, h.classes),
                        (lazy_h.key, lazy_h.type_name, lazy_h.classes)
                    );
                    assert_eq!(encode(&obj), encode_with_raw_data(&lazy_obj, raw), "{text}");
                    if raw.is_some() {
                        assert!(!lazy_obj.contains_key("_rawData"));
                        lazy_raw += 1;
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
                (a, b) => panic!("{text}: {:?} against {:?}", a.map(|_| ()), b.map(|_| ())),
            }
        }
        // The canonical one, the one with a fraction, and the one whose `_rawData` comes
        // first (a repeated `_rawData` is parsed whole).
        assert_eq!(lazy_raw, 3);
        let reserved =
            format!(r#"{{{head},"x":[{{"b":2,"$serde_json::private::RawValue":"1"}}]}}"#);
        assert_eq!(
            parse_object_lazy(&reserved).unwrap_err(),
            r#"a key starting "$serde_json::private::" is reserved"#
        );
    }
}
