//! Builders for JupiterOne's entity and direct-relationship shapes.
//!
//! The shapes follow the JupiterOne SDK so that keys and properties match an existing
//! graph: `_class` is an array, `_rawData` is `[{name: "default", rawData}]`,
//! `displayName` falls back to `name`, a relationship's `_type` is
//! `<fromType>_<class>_<toType without the shared prefix>` and its `_key` is
//! `<fromKey>|<class>|<toKey>`.
//!
//! Both builders end with the host's property rules ([`conform`]): a property the host
//! would reject the whole object for is left out, with a warning naming the object's key
//! and the property, so the record itself is stored.

use crate::props::property_problem;
use serde_json::{Map, Value};
use std::cell::Cell;

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
            // Built by hand: `json!` would copy `source` whole (it serializes by reference).
            let mut entry = Object::new();
            entry.insert("name".into(), Value::String("default".into()));
            entry.insert("rawData".into(), source);
            let raw = Value::Array(vec![Value::Object(entry)]);
            self.obj.insert("_rawData".into(), raw);
        }
        self
    }

    /// The entity: its properties held to the host's rules ([`conform`]), and
    /// `displayName` falling back to `name`.
    pub fn build(mut self) -> Object {
        conform(&mut self.obj);
        if !truthy(self.obj.get("displayName")) && truthy(self.obj.get("name")) {
            let name = self.obj["name"].clone();
            self.obj.insert("displayName".into(), name);
        }
        self.obj
    }
}

/// A property [`conform`] changed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    pub property: String,
    pub reason: &'static str,
    /// What took the value's place: `Some("_key")` for a `name`, else `None` (left out).
    pub replaced_by: Option<&'static str>,
}

/// Most warnings [`conform`] logs in one instance; after them, one saying the rest are
/// not logged (a provider field that breaks a rule usually breaks it on every record).
pub const MAX_WARNINGS: u32 = 50;

thread_local! {
    static WARNED: Cell<u32> = const { Cell::new(0) };
}

/// Holds `obj`'s properties to the host's rules (`host/src/datamodel.rs`), which reject
/// the whole object for one bad property: every property but the underscored ones
/// (`_key`, `_type`, `_class`, `_rawData`, …, which the SDK writes) that is a nested
/// object, an array holding `null`, nested values or mixed types, a string longer than
/// 4096 characters, or a `…On` property that is not an integer, is **left out**, not
/// cleaned or cut: a list with items taken out, or a cut string, would read as the
/// provider's whole value. The value stays in `_rawData` where the connector keeps it.
///
/// `name` and `displayName` cannot be left out (the host requires them): a `name` that
/// breaks a rule is replaced by the object's `_key` (the record's identity, within the
/// host's key limit); a `displayName` that breaks one is left out, so the entity builder
/// falls back to `name`.
///
/// Each change is logged as a warning naming the object's key, the property and the
/// reason (at most [`MAX_WARNINGS`] per instance), and returned.
pub fn conform(obj: &mut Object) -> Vec<LeftOut> {
    let bad: Vec<(String, &'static str)> = obj
        .iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .filter_map(|(name, value)| Some((name.clone(), property_problem(name, value)?)))
        .collect();
    if bad.is_empty() {
        return Vec::new();
    }
    let key = obj
        .get("_key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut changes = Vec::with_capacity(bad.len());
    for (property, reason) in bad {
        let replaced_by = if property == "name" && !key.is_empty() {
            obj.insert(property.clone(), Value::String(key.clone()));
            Some("_key")
        } else {
            obj.remove(&property);
            None
        };
        warn(&key, &property, reason, replaced_by);
        changes.push(LeftOut {
            property,
            reason,
            replaced_by,
        });
    }
    changes
}

fn warn(key: &str, property: &str, reason: &str, replaced_by: Option<&str>) {
    let n = WARNED.with(|w| {
        let n = w.get().saturating_add(1);
        w.set(n);
        n
    });
    if n > MAX_WARNINGS + 1 {
        return;
    }
    if n == MAX_WARNINGS + 1 {
        crate::log::warn(
            "further properties left out for the host's rules are not logged",
            &[("logged", &MAX_WARNINGS.to_string())],
        );
        return;
    }
    let message = match replaced_by {
        Some(_) => "name replaced by the key: the host would reject the record for it",
        None => "property left out: the host would reject the record for it",
    };
    crate::log::warn(
        message,
        &[("key", key), ("property", property), ("reason", reason)],
    );
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

/// The provider's object an entity carries as `_rawData` (what
/// [`EntityBuilder::raw_data`] attached), if any.
pub fn raw_data(entity: &Object) -> Option<&Value> {
    entity.get("_rawData")?.get(0)?.get("rawData")
}

/// The `_type` JupiterOne generates for a direct relationship:
/// `kandji_account` HAS `kandji_device` is `kandji_account_has_device`.
pub fn relationship_type(class: &str, from_type: &str, to_type: &str) -> String {
    // The words `to_type` shares with `from_type` from the start are dropped, but never
    // its last one: what is left starts at the byte after the last shared word's `_`.
    let mut rest = to_type;
    let mut from = from_type.split('_');
    while let Some((word, tail)) = rest.split_once('_') {
        if from.next() != Some(word) {
            break;
        }
        rest = tail;
    }
    let class = class.to_lowercase();
    let mut out = String::with_capacity(from_type.len() + class.len() + rest.len() + 2);
    for part in [from_type, "_", &class, "_", rest] {
        out.push_str(part);
    }
    out
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
    /// The class as given, for the default `_key` ([`relationship_key`] lowercases it).
    class: String,
}

impl RelationshipBuilder {
    /// A direct relationship with JupiterOne's default `_type`; the default `_key` is
    /// added by [`RelationshipBuilder::build`] unless one is given.
    pub fn direct(class: &str, from: End<'_>, to: End<'_>) -> Self {
        let class_upper = class.to_uppercase();
        let mut obj = Object::new();
        obj.insert(
            "_type".into(),
            relationship_type(class, from.entity_type, to.entity_type).into(),
        );
        obj.insert("_class".into(), class_upper.clone().into());
        obj.insert("_fromEntityKey".into(), from.key.into());
        obj.insert("_toEntityKey".into(), to.key.into());
        obj.insert("displayName".into(), class_upper.into());
        RelationshipBuilder {
            obj,
            class: class.to_string(),
        }
    }

    /// Overrides the `_key` where the provider spec gives an explicit formula.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.obj.insert("_key".into(), Value::String(key.into()));
        self
    }

    /// The relationship, its properties held to the host's rules ([`conform`]). Without
    /// a `_key` set ([`RelationshipBuilder::key`]), it is the default one, joined here
    /// from the class and `_fromEntityKey`/`_toEntityKey` as they are now (not in
    /// [`RelationshipBuilder::direct`]: most connectors give their own).
    pub fn build(mut self) -> Object {
        if !self.obj.contains_key("_key") {
            let end = |name| {
                self.obj
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            let key = relationship_key(&self.class, end("_fromEntityKey"), end("_toEntityKey"));
            self.obj.insert("_key".into(), Value::String(key));
        }
        conform(&mut self.obj);
        self.obj
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_data_reads_back_what_the_builder_attached() {
        let e = EntityBuilder::new("dev-0001", "acme_device", "Device")
            .raw_data(serde_json::json!({"id": 7}))
            .build();
        assert_eq!(raw_data(&e), Some(&serde_json::json!({"id": 7})));
        let bare = EntityBuilder::new("dev-0002", "acme_device", "Device").build();
        assert_eq!(raw_data(&bare), None);
    }

    use super::*;
    use serde_json::json;

    /// The rule as first written (words split, compared, joined), against which the
    /// allocation-free one is checked.
    fn relationship_type_by_words(class: &str, from_type: &str, to_type: &str) -> String {
        let from: Vec<&str> = from_type.split('_').collect();
        let to: Vec<&str> = to_type.split('_').collect();
        let mut shared = 0;
        while shared + 1 < to.len() && from.get(shared) == to.get(shared) {
            shared += 1;
        }
        let rest = to[shared..].join("_");
        format!("{from_type}_{}_{rest}", class.to_lowercase())
    }

    #[test]
    fn relationship_type_is_the_word_rule_on_odd_names() {
        let names = [
            "",
            "_",
            "__",
            "a",
            "a_",
            "_a",
            "a_b",
            "a__b",
            "a_b_",
            "a_b_c",
            "a_b_c_d",
            "ab_c",
            "a_bc",
            "kandji_device",
            "kandji_device_app",
            "kandji",
            "x_kandji_device",
        ];
        for from in names {
            for to in names {
                for class in ["HAS", "Uses", "is"] {
                    assert_eq!(
                        relationship_type(class, from, to),
                        relationship_type_by_words(class, from, to),
                        "{class} {from:?} {to:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_relationship_key_is_the_default_unless_one_is_given() {
        let ends = || {
            (
                End {
                    key: "d1",
                    entity_type: "kandji_device",
                },
                End {
                    key: "app:1",
                    entity_type: "kandji_app",
                },
            )
        };
        let (from, to) = ends();
        let default = RelationshipBuilder::direct("HAS", from, to).build();
        assert_eq!(default["_key"], json!("d1|has|app:1"));
        assert_eq!(default["_type"], json!("kandji_device_has_app"));
        let (from, to) = ends();
        let given = RelationshipBuilder::direct("HAS", from, to)
            .key("k")
            .build();
        assert_eq!(given["_key"], json!("k"));
        // The class as given is lowercased, not its upper case (they differ outside ASCII).
        let (from, to) = ends();
        let odd = RelationshipBuilder::direct("ſees", from, to).build();
        assert_eq!(odd["_key"], json!(relationship_key("ſees", "d1", "app:1")));
        assert_eq!(odd["_key"], json!("d1|ſees|app:1"));
        let (from, to) = ends();
        let as_prop = RelationshipBuilder::direct("HAS", from, to)
            .prop("_key", "p")
            .build();
        assert_eq!(as_prop["_key"], json!("p"));
    }

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

    /// Each of the host's property rules (`host/src/datamodel.rs`), broken by a cosmetic
    /// property: the entity is built without it, and a warning names the key and property.
    #[test]
    fn a_property_the_host_would_reject_is_left_out_with_a_warning() {
        crate::log::take_captured();
        let long = "x".repeat(4097);
        let e = EntityBuilder::new("device-0001", "t_device", "Device")
            .prop("name", "Mac-01")
            .prop("notes", long.as_str())
            .prop("nested", json!({"a": 1}))
            .prop("mixed", json!([1, "a"]))
            .prop("nulls", json!(["a", null]))
            .prop("deep", json!([["a"]]))
            .prop("longItems", json!(["ok", long]))
            .prop("expiresOn", "2024-01-01")
            .prop("tag.reviewedOn", 1.5)
            .prop("createdOn", 1_700_000_000_000i64)
            .prop("deletedOn", Value::Null)
            .prop("tags", json!(["a", "b"]))
            .prop("fine", "x".repeat(4096))
            .raw_data(json!({"notes": long}))
            .build();
        let left_out = [
            "notes",
            "nested",
            "mixed",
            "nulls",
            "deep",
            "longItems",
            "expiresOn",
            "tag.reviewedOn",
        ];
        for p in left_out {
            assert!(!e.contains_key(p), "{p} left out");
        }
        for p in [
            "name",
            "displayName",
            "createdOn",
            "deletedOn",
            "tags",
            "fine",
        ] {
            assert!(e.contains_key(p), "{p} kept");
        }
        assert_eq!(
            e["_rawData"][0]["rawData"]["notes"], long,
            "raw data keeps it"
        );
        let warnings = crate::log::take_captured();
        let mut named: Vec<&str> = warnings
            .iter()
            .filter(|w| w.level == "warn" && w.field("key") == Some("device-0001"))
            .filter_map(|w| w.field("property"))
            .collect();
        named.sort_unstable();
        let mut want = left_out.to_vec();
        want.sort_unstable();
        assert_eq!(named, want);
        assert!(warnings.iter().all(|w| w.field("reason").is_some()));
    }

    #[test]
    fn an_over_long_name_becomes_the_key_and_display_name_falls_back() {
        crate::log::take_captured();
        let long = "n".repeat(5000);
        let e = EntityBuilder::new("device-0002", "t_device", "Device")
            .prop("name", long.as_str())
            .build();
        assert_eq!(
            (e["name"].as_str(), e["displayName"].as_str()),
            (Some("device-0002"), Some("device-0002"))
        );
        let w = crate::log::take_captured();
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].field("key"), w[0].field("property")),
            (Some("device-0002"), Some("name"))
        );
        assert!(w[0].message.starts_with("name replaced by the key"));

        let e = EntityBuilder::new("device-0003", "t_device", "Device")
            .prop("name", "Mac-03")
            .prop("displayName", long.as_str())
            .build();
        assert_eq!(e["displayName"], "Mac-03", "back to the name");
        let w = crate::log::take_captured();
        assert_eq!(w[0].field("property"), Some("displayName"));
    }

    /// The two ends the relationship tests link.
    fn account_and_device() -> (End<'static>, End<'static>) {
        let from = End {
            key: "kandji-account",
            entity_type: "kandji_account",
        };
        let to = End {
            key: "dev-1",
            entity_type: "kandji_device",
        };
        (from, to)
    }

    #[test]
    fn relationships_are_held_to_the_same_rules() {
        crate::log::take_captured();
        let (from, to) = account_and_device();
        let r = RelationshipBuilder::direct("HAS", from, to)
            .prop("assignedRole", "x".repeat(4097))
            .prop("since", "2024")
            .build();
        assert!(!r.contains_key("assignedRole"));
        assert_eq!(r["since"], "2024");
        let w = crate::log::take_captured();
        assert_eq!(w[0].field("key"), Some("kandji-account|has|dev-1"));
    }

    #[test]
    fn warnings_stop_after_the_cap() {
        crate::log::take_captured();
        for i in 0..(MAX_WARNINGS + 10) {
            EntityBuilder::new(format!("device-{i:04}"), "t_device", "Device")
                .prop("name", "n")
                .prop("bad", json!({}))
                .build();
        }
        let w = crate::log::take_captured();
        assert_eq!(w.len() as u32, MAX_WARNINGS + 1);
        assert!(w.last().unwrap().message.starts_with("further properties"));
        // Every object is still conformed after the cap.
        let e = EntityBuilder::new("device-9999", "t_device", "Device")
            .prop("name", "n")
            .prop("bad", json!({}))
            .build();
        assert!(!e.contains_key("bad"));
        assert!(crate::log::take_captured().is_empty());
    }

    #[test]
    fn direct_relationship_shape() {
        let (from, to) = account_and_device();
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
