//! JupiterOne data-model rules the host enforces on every emitted object, whatever the
//! connector: key length, known classes, flat properties, string size, time properties.

use serde_json::{Map, Value};

pub const MIN_KEY_LEN: usize = 10;
pub const MAX_KEY_LEN: usize = 4096;
pub const MAX_STRING_LEN: usize = 4096;

/// JupiterOne's entity classes.
pub const KNOWN_CLASSES: &[&str] = &[
    "AccessKey",
    "AccessPolicy",
    "AccessRole",
    "Account",
    "Alert",
    "Application",
    "ApplicationEndpoint",
    "Assessment",
    "Attacker",
    "Backup",
    "Certificate",
    "Channel",
    "Cluster",
    "CodeCommit",
    "CodeDeploy",
    "CodeModule",
    "CodeRepo",
    "CodeReview",
    "Configuration",
    "Container",
    "Control",
    "ControlPolicy",
    "CryptoKey",
    "DataCollection",
    "DataObject",
    "DataStore",
    "Database",
    "Deployment",
    "Device",
    "Directory",
    "Disk",
    "Document",
    "Domain",
    "DomainRecord",
    "DomainZone",
    "Entity",
    "Finding",
    "Firewall",
    "Framework",
    "Function",
    "Gateway",
    "GraphObject",
    "Group",
    "Host",
    "HostAgent",
    "Image",
    "Incident",
    "Internet",
    "IpAddress",
    "Issue",
    "Key",
    "Logs",
    "Model",
    "Module",
    "Network",
    "NetworkEndpoint",
    "NetworkInterface",
    "Organization",
    "PR",
    "PasswordPolicy",
    "Person",
    "Policy",
    "Problem",
    "Procedure",
    "Process",
    "Product",
    "Program",
    "Project",
    "Question",
    "Queue",
    "Record",
    "Repository",
    "Requirement",
    "Resource",
    "Review",
    "Risk",
    "Rule",
    "Ruleset",
    "Scanner",
    "Secret",
    "Section",
    "Service",
    "Site",
    "Standard",
    "Subscription",
    "Task",
    "Team",
    "ThreatIntel",
    "Training",
    "User",
    "UserGroup",
    "Vendor",
    "Vulnerability",
    "Weakness",
    "Workflow",
    "Workload",
];

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
    let key = string_field(&obj, "_key")?;
    if key.chars().count() < MIN_KEY_LEN {
        return Err(format!(
            "_key {key:?} is shorter than {MIN_KEY_LEN} characters"
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("_key is longer than {MAX_KEY_LEN} bytes"));
    }
    let type_name = string_field(&obj, "_type")?;
    if type_name.is_empty()
        || !type_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("_type {type_name:?} must be lower_snake_case"));
    }
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
    Ok((
        obj,
        Header {
            key,
            type_name,
            classes,
        },
    ))
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
    if let Some(c) = header
        .classes
        .iter()
        .find(|c| !KNOWN_CLASSES.contains(&c.as_str()))
    {
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
    }
}
