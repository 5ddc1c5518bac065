//! Builders for JupiterOne's entity and direct-relationship shapes.
//!
//! The shapes follow the JupiterOne SDK so that keys and properties match an existing
//! graph: `_class` is an array, `_rawData` is `[{name: "default", rawData}]`,
//! `displayName` falls back to `name`, a relationship's `_type` is
//! `<fromType>_<class>_<toType without the shared prefix>` and its `_key` is
//! `<fromKey>|<class>|<toKey>`.

use serde_json::{Map, Value};

/// A graph object ready to emit: a flat JSON object.
pub type Object = Map<String, Value>;

/// Property setters shared by the entity and relationship builders.
pub trait Properties: Sized {
    fn object_mut(&mut self) -> &mut Object;

    /// Sets a property; `null` is kept, as JupiterOne keeps it.
    fn prop(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.object_mut().insert(name.to_string(), value.into());
        self
    }

    /// Sets a property only when there is a value (JavaScript's `undefined` vanishes).
    fn opt<V: Into<Value>>(self, name: &str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.prop(name, v),
            None => self,
        }
    }
}

impl Properties for EntityBuilder {
    fn object_mut(&mut self) -> &mut Object {
        &mut self.obj
    }
}

impl Properties for RelationshipBuilder {
    fn object_mut(&mut self) -> &mut Object {
        &mut self.obj
    }
}

#[derive(Debug, Clone)]
pub struct EntityBuilder {
    obj: Object,
}

impl EntityBuilder {
    pub fn new(key: impl Into<String>, entity_type: &str, class: &str) -> Self {
        let mut obj = Object::new();
        obj.insert("_key".into(), Value::String(key.into()));
        obj.insert("_type".into(), entity_type.into());
        obj.insert("_class".into(), Value::Array(vec![class.into()]));
        EntityBuilder { obj }
    }

    /// Attaches the provider's object as `_rawData`, unless it is empty.
    pub fn raw_data(mut self, source: Value) -> Self {
        let empty = match &source {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            _ => false,
        };
        if !empty {
            let raw = serde_json::json!([{ "name": "default", "rawData": source }]);
            self.obj.insert("_rawData".into(), raw);
        }
        self
    }

    pub fn build(mut self) -> Object {
        if !truthy(self.obj.get("displayName")) && truthy(self.obj.get("name")) {
            let name = self.obj["name"].clone();
            self.obj.insert("displayName".into(), name);
        }
        self.obj
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

/// The `_type` JupiterOne generates for a direct relationship:
/// `kandji_account` HAS `kandji_device` is `kandji_account_has_device`.
pub fn relationship_type(class: &str, from_type: &str, to_type: &str) -> String {
    let from: Vec<&str> = from_type.split('_').collect();
    let to: Vec<&str> = to_type.split('_').collect();
    let mut shared = 0;
    while shared + 1 < to.len() && from.get(shared) == to.get(shared) {
        shared += 1;
    }
    format!(
        "{from_type}_{}_{}",
        class.to_lowercase(),
        to[shared..].join("_")
    )
}

/// The default direct-relationship `_key`: `<fromKey>|<class>|<toKey>`.
pub fn relationship_key(class: &str, from_key: &str, to_key: &str) -> String {
    format!("{from_key}|{}|{to_key}", class.to_lowercase())
}

/// One end of a relationship: the entity's `_key` and `_type`.
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    pub key: &'a str,
    pub entity_type: &'a str,
}

#[derive(Debug, Clone)]
pub struct RelationshipBuilder {
    obj: Object,
}

impl RelationshipBuilder {
    /// A direct relationship with JupiterOne's default `_type` and `_key`.
    pub fn direct(class: &str, from: End<'_>, to: End<'_>) -> Self {
        let class_upper = class.to_uppercase();
        let mut obj = Object::new();
        obj.insert(
            "_key".into(),
            relationship_key(class, from.key, to.key).into(),
        );
        obj.insert(
            "_type".into(),
            relationship_type(class, from.entity_type, to.entity_type).into(),
        );
        obj.insert("_class".into(), class_upper.clone().into());
        obj.insert("_fromEntityKey".into(), from.key.into());
        obj.insert("_toEntityKey".into(), to.key.into());
        obj.insert("displayName".into(), class_upper.into());
        RelationshipBuilder { obj }
    }

    /// Overrides the `_key` where the provider spec gives an explicit formula.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.obj.insert("_key".into(), Value::String(key.into()));
        self
    }

    pub fn build(self) -> Object {
        self.obj
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relationship_type_strips_the_shared_prefix() {
        assert_eq!(
            relationship_type("HAS", "kandji_account", "kandji_device"),
            "kandji_account_has_device"
        );
        assert_eq!(
            relationship_type("HAS", "circleci_user_group", "circleci_user"),
            "circleci_user_group_has_user"
        );
        assert_eq!(
            relationship_type("USES", "aws_instance", "github_repo"),
            "aws_instance_uses_github_repo"
        );
    }

    #[test]
    fn entity_shape_matches_jupiterone() {
        let e = EntityBuilder::new("kandji_user:7", "kandji_user", "User")
            .prop("name", "Ada")
            .prop("email", Value::Null)
            .opt::<String>("missing", None)
            .raw_data(json!({"id": 7}))
            .build();
        assert_eq!(
            Value::Object(e),
            json!({
                "_key": "kandji_user:7", "_type": "kandji_user", "_class": ["User"],
                "name": "Ada", "displayName": "Ada", "email": null,
                "_rawData": [{"name": "default", "rawData": {"id": 7}}]
            })
        );
    }

    #[test]
    fn empty_name_gives_no_display_name() {
        let e = EntityBuilder::new("0123456789", "t_x", "Device")
            .prop("name", "")
            .raw_data(json!({}))
            .build();
        assert!(!e.contains_key("displayName"));
        assert!(!e.contains_key("_rawData"));
    }

    #[test]
    fn direct_relationship_shape() {
        let from = End {
            key: "kandji-account",
            entity_type: "kandji_account",
        };
        let to = End {
            key: "dev-1",
            entity_type: "kandji_device",
        };
        let r = RelationshipBuilder::direct("HAS", from, to).build();
        assert_eq!(
            Value::Object(r),
            json!({
                "_key": "kandji-account|has|dev-1", "_type": "kandji_account_has_device",
                "_class": "HAS", "_fromEntityKey": "kandji-account", "_toEntityKey": "dev-1",
                "displayName": "HAS"
            })
        );
    }
}
