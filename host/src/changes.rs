//! Change detection: a run's graph against the instance's previous state, per `_type`:
//! created, updated (with the properties that changed) and deleted. Objects of a
//! partial type (its step failed) are never deleted: they stay in the state as they were.
//!
//! `_rawData` is left out of the comparison: it mirrors the provider's payload, and a
//! change there without a change in the properties is not a change to the asset.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An object as the state keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateObject {
    pub key: String,
    pub type_name: String,
    pub relationship: bool,
    pub hash: String,
    pub object: Map<String, Value>,
}

impl StateObject {
    pub fn new(object: Map<String, Value>, relationship: bool) -> Self {
        let text = |k: &str| {
            object
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        StateObject {
            key: text("_key"),
            type_name: text("_type"),
            relationship,
            hash: content_hash(&object),
            object,
        }
    }

    /// `_class` as text (JupiterOne allows a string or an array of strings).
    pub fn classes(&self) -> Vec<String> {
        match self.object.get("_class") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// sha256 over the properties in key order, `_rawData` left out.
pub fn content_hash(object: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = object.keys().filter(|k| *k != "_rawData").collect();
    keys.sort();
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(&object[k]).expect("JSON values serialise"));
        h.update([0]);
    }
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// One property that changed: its value before and after (null when absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyChange {
    pub before: Value,
    pub after: Value,
}

/// One change, with the object (for a deletion, the object as it was).
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    pub object: StateObject,
    pub properties: BTreeMap<String, PropertyChange>,
}

/// Everything that changed in a run, and the state that follows.
pub struct Diff {
    pub changes: Vec<Change>,
    /// Objects to write (created or updated).
    pub upserts: Vec<StateObject>,
    /// Keys to remove.
    pub deletions: Vec<String>,
    /// Whether there was no previous state (every object is new).
    pub baseline: bool,
}

/// Compares `current` (the run's objects) with `previous` (the state).
pub fn diff(
    previous: &HashMap<String, StateObject>,
    current: Vec<StateObject>,
    partial_types: &BTreeSet<String>,
) -> Diff {
    let mut changes = Vec::new();
    let mut upserts = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(current.len());
    for obj in current {
        seen.insert(obj.key.clone());
        match previous.get(&obj.key) {
            Some(old) if old.hash == obj.hash && old.type_name == obj.type_name => {}
            Some(old) => {
                changes.push(Change {
                    kind: ChangeKind::Updated,
                    properties: changed_properties(&old.object, &obj.object),
                    object: obj.clone(),
                });
                upserts.push(obj);
            }
            None => {
                changes.push(Change {
                    kind: ChangeKind::Created,
                    properties: BTreeMap::new(),
                    object: obj.clone(),
                });
                upserts.push(obj);
            }
        }
    }
    let mut deletions = Vec::new();
    for (key, old) in previous {
        if seen.contains(key) || partial_types.contains(&old.type_name) {
            continue;
        }
        deletions.push(key.clone());
        changes.push(Change {
            kind: ChangeKind::Deleted,
            properties: BTreeMap::new(),
            object: old.clone(),
        });
    }
    changes.sort_by(|a, b| {
        (&a.object.type_name, a.kind, &a.object.key).cmp(&(
            &b.object.type_name,
            b.kind,
            &b.object.key,
        ))
    });
    Diff {
        changes,
        upserts,
        deletions,
        baseline: previous.is_empty(),
    }
}

fn changed_properties(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> BTreeMap<String, PropertyChange> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| *k != "_rawData")
        .filter_map(|k| {
            let (b, a) = (before.get(k), after.get(k));
            (b != a).then(|| {
                (
                    k.clone(),
                    PropertyChange {
                        before: b.cloned().unwrap_or(Value::Null),
                        after: a.cloned().unwrap_or(Value::Null),
                    },
                )
            })
        })
        .collect()
}

/// `changes.json`: totals, then per `_type` the created and deleted keys and the updated
/// keys with their changed properties.
pub fn document(
    instance: &str,
    run_id: &str,
    baseline: bool,
    partial_types: &BTreeSet<String>,
    changes: &[Change],
) -> Value {
    let mut types: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut totals = BTreeMap::from([("created", 0u64), ("updated", 0), ("deleted", 0)]);
    for c in changes {
        let entry = types.entry(&c.object.type_name).or_insert_with(|| {
            ["created", "updated", "deleted"]
                .into_iter()
                .map(|k| (k.to_string(), Value::Array(Vec::new())))
                .collect()
        });
        let (name, item) = match c.kind {
            ChangeKind::Created => ("created", Value::from(c.object.key.clone())),
            ChangeKind::Deleted => ("deleted", Value::from(c.object.key.clone())),
            ChangeKind::Updated => (
                "updated",
                serde_json::json!({ "_key": c.object.key, "properties": c.properties }),
            ),
        };
        *totals.get_mut(name).expect("three kinds") += 1;
        entry[name].as_array_mut().expect("arrays").push(item);
    }
    serde_json::json!({
        "instance": instance,
        "runId": run_id,
        "baseline": baseline,
        "partialTypes": partial_types,
        "totals": totals,
        "types": types,
    })
}

/// The totals, then one line per `_type` that changed (not for the baseline, where
/// everything is new), for the console.
pub fn console_summary(doc: &Value) -> String {
    let t = &doc["totals"];
    let baseline = doc["baseline"] == true;
    let note = if baseline {
        " (first run: baseline)"
    } else {
        ""
    };
    let mut out = format!(
        "  changes{note}: {} created, {} updated, {} deleted\n",
        t["created"], t["updated"], t["deleted"]
    );
    let Some(types) = doc["types"].as_object().filter(|_| !baseline) else {
        return out;
    };
    let width = types.keys().map(String::len).max().unwrap_or(0);
    for (ty, c) in types {
        let n = |k: &str| c[k].as_array().map_or(0, Vec::len);
        out.push_str(&format!(
            "    {ty:<width$}  +{} ~{} -{}\n",
            n("created"),
            n("updated"),
            n("deleted")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(key: &str, ty: &str, extra: Value) -> StateObject {
        let mut o = json!({"_key": key, "_type": ty, "_class": "Device", "name": key});
        o.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        StateObject::new(o.as_object().unwrap().clone(), false)
    }

    #[test]
    fn created_updated_deleted_and_partial_types_kept() {
        let previous: HashMap<String, StateObject> = [
            obj("device-0001", "d", json!({"encrypted": true})),
            obj("device-0002", "d", json!({"encrypted": true})),
            obj("device-0003", "d", json!({})),
            obj("app-000001", "a", json!({})),
        ]
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();
        let current = vec![
            obj(
                "device-0001",
                "d",
                json!({"encrypted": true, "_rawData": [{"x": 1}]}),
            ),
            obj("device-0002", "d", json!({"encrypted": false})),
            obj("device-0004", "d", json!({})),
        ];
        let partial = BTreeSet::from(["a".to_string()]);
        let d = diff(&previous, current, &partial);
        let summary: Vec<(ChangeKind, &str)> = d
            .changes
            .iter()
            .map(|c| (c.kind, c.object.key.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (ChangeKind::Created, "device-0004"),
                (ChangeKind::Updated, "device-0002"),
                (ChangeKind::Deleted, "device-0003"),
            ]
        );
        assert_eq!(
            d.changes[1].properties,
            BTreeMap::from([(
                "encrypted".to_string(),
                PropertyChange {
                    before: json!(true),
                    after: json!(false)
                }
            )])
        );
        assert_eq!(d.deletions, ["device-0003"]);
        assert!(!d.baseline);
        let doc = document("i", "run-1", false, &partial, &d.changes);
        assert_eq!(
            doc["totals"],
            json!({"created": 1, "updated": 1, "deleted": 1})
        );
        assert_eq!(doc["types"]["d"]["deleted"], json!(["device-0003"]));
        assert_eq!(
            doc["types"]["d"]["updated"],
            json!([{"_key": "device-0002", "properties": {"encrypted": {"before": true, "after": false}}}])
        );
    }
}
