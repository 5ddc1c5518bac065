//! Change detection: a run's graph against the instance's previous state, per `_type`:
//! created, updated (with the properties that changed) and deleted. Objects of a
//! partial type (its step failed) are never deleted: they stay in the state as they were.
//!
//! The comparison streams: the previous state is held as one small entry per object
//! (a key id and a hash prefix), the run's objects are read from its spool one at a
//! time, and only the objects that changed are ever parsed. Hashes are
//! [`crate::canonical`]'s content hash, which leaves `_rawData` out: it mirrors
//! the provider's payload, and a change there alone is not a change to the asset.

use crate::canonical::ContentHash;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

/// A key's 128-bit id: two independently keyed hashes, so no guest can aim for a
/// collision (keys are per process and secret).
pub struct KeyIds(RandomState, RandomState);

impl KeyIds {
    pub fn id(&self, key: &str) -> KeyId {
        KeyId([self.0.hash_one(key), self.1.hash_one(key)])
    }
}

/// A key's id (see [`KeyIds`]): two words, so a table entry holding it is aligned to 8
/// bytes, not to a `u128`'s 16.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct KeyId([u64; 2]);

impl KeyId {
    /// The two words, the first the more significant in the id's order.
    pub fn words(self) -> [u64; 2] {
        self.0
    }

    /// An id from its words (tests that need ids in a given order).
    pub fn from_words(words: [u64; 2]) -> KeyId {
        KeyId(words)
    }
}

impl Hash for KeyId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// Hashes a [`KeyId`] by passing its first word through: it already is a keyed hash,
/// and hashing it again would cost CPU per lookup for nothing.
#[derive(Default)]
pub struct KeyIdHasher(u64);

impl Hasher for KeyIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `KeyId`; any other input still spreads.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map by key id.
pub type KeyIdMap<V> = HashMap<KeyId, V, BuildHasherDefault<KeyIdHasher>>;

impl Default for KeyIds {
    fn default() -> Self {
        KeyIds(RandomState::new(), RandomState::new())
    }
}

/// An object as the state keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateObject {
    pub key: String,
    pub type_name: String,
    pub relationship: bool,
    pub object: Map<String, Value>,
}

impl StateObject {
    /// `_class` as text (JupiterOne allows a string or an array of strings).
    pub fn classes(&self) -> Vec<String> {
        let names = crate::datamodel::class_names(&self.object);
        names.into_iter().map(String::from).collect()
    }
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

/// One change, with the object (for a deletion, the object as it was): what alert
/// rules match on.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    pub object: StateObject,
    pub properties: BTreeMap<String, PropertyChange>,
}

/// Bytes of a hash compared in memory: 128 bits of sha256 (collision-resistant to
/// 2^64 work) at half the memory per object.
const HASH_PREFIX: usize = 16;

/// One stored object: 40 bytes.
struct Entry {
    id: KeyId,
    hash: [u8; HASH_PREFIX],
    row: i64,
}

/// The previous state of one instance, as its objects' key ids and hashes: a vector
/// sorted by key id, searched by halves. A hash table would cost twice the memory per
/// object (its empty buckets and control bytes), and this index is the largest thing
/// delivery holds (docs/benchmarks.md). Built by [`PreviousBuilder`].
pub struct Previous {
    ids: KeyIds,
    entries: Vec<Entry>,
    /// One bit per entry: whether the run emitted it.
    seen: Vec<u64>,
}

/// Collects the stored objects, then sorts them once into a [`Previous`].
pub struct PreviousBuilder {
    ids: KeyIds,
    entries: Vec<Entry>,
}

impl PreviousBuilder {
    /// Adds one stored object (its state row id, key and hash).
    pub fn add(&mut self, row: i64, key: &str, hash: &[u8]) {
        let mut prefix = [0; HASH_PREFIX];
        let n = hash.len().min(HASH_PREFIX);
        prefix[..n].copy_from_slice(&hash[..n]);
        self.entries.push(Entry {
            id: self.ids.id(key),
            hash: prefix,
            row,
        });
    }

    /// Sorted in place (no second copy at the peak). The state holds a key once (its
    /// primary key), so equal ids are not expected; if two keys ever shared a 128-bit
    /// id, one of the two entries is kept.
    pub fn finish(self) -> Previous {
        let PreviousBuilder { ids, mut entries } = self;
        entries.sort_unstable_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        entries.shrink_to_fit();
        let seen = vec![0; entries.len().div_ceil(64)];
        Previous { ids, entries, seen }
    }
}

/// What one of the run's objects is, against the previous state.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    Unchanged,
    Created,
    Updated,
}

impl Previous {
    /// A builder for the state's `n` objects.
    pub fn builder(n: usize) -> PreviousBuilder {
        PreviousBuilder {
            ids: KeyIds::default(),
            entries: Vec::with_capacity(n),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Classifies one of the run's objects and marks its key as present.
    pub fn observe(&mut self, key: &str, hash: &ContentHash) -> Seen {
        let id = self.ids.id(key);
        match self.entries.binary_search_by_key(&id, |e| e.id) {
            Err(_) => Seen::Created,
            Ok(i) => {
                self.seen[i / 64] |= 1 << (i % 64);
                if self.entries[i].hash[..] == hash[..HASH_PREFIX] {
                    Seen::Unchanged
                } else {
                    Seen::Updated
                }
            }
        }
    }

    /// Row ids of the stored objects the run did not emit.
    pub fn unseen(&self) -> Vec<i64> {
        let mut rows: Vec<i64> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| self.seen[i / 64] & (1 << (i % 64)) == 0)
            .map(|(_, e)| e.row)
            .collect();
        rows.sort_unstable();
        rows
    }
}

/// The properties whose values differ (`_rawData` left out).
pub fn changed_properties(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> BTreeMap<String, PropertyChange> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| *k != crate::canonical::RAW_DATA)
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

/// One `_type`'s changes (fields in the document's key order).
#[derive(Default, Serialize)]
struct TypeChanges {
    created: Vec<String>,
    deleted: Vec<String>,
    updated: Vec<Updated>,
}

/// `changes.json`, serialized straight from the change set (keys in sorted order, as
/// earlier versions wrote them).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    baseline: bool,
    instance: &'a str,
    partial_types: &'a BTreeSet<String>,
    run_id: &'a str,
    totals: BTreeMap<&'static str, usize>,
    types: &'a BTreeMap<String, TypeChanges>,
}

#[derive(Serialize)]
struct Updated {
    #[serde(rename = "_key")]
    key: String,
    properties: BTreeMap<String, PropertyChange>,
}

/// A run's change set as it is found: keys per `_type` (and, when alert rules want
/// them, the changes with their objects).
#[derive(Default)]
pub struct ChangeSet {
    types: BTreeMap<String, TypeChanges>,
    /// The changes with their objects, kept only when asked for.
    pub changes: Vec<Change>,
    keep: bool,
    /// A baseline's: created keys are not held, but listed from the state at the end.
    list_created_later: bool,
}

impl ChangeSet {
    /// `keep`: whether to hold each change's object (for alert rules).
    pub fn new(keep: bool) -> ChangeSet {
        ChangeSet {
            keep,
            ..ChangeSet::default()
        }
    }

    /// A baseline's change set: every object is created, and a graph of any size would
    /// hold every key here until the end. They are not kept;
    /// [`ChangeSet::finish_baseline`] lists them from the state, in order.
    pub fn baseline() -> ChangeSet {
        ChangeSet {
            list_created_later: true,
            ..ChangeSet::default()
        }
    }

    /// Whether the objects of changes are wanted (so worth reading).
    pub fn keeps_objects(&self) -> bool {
        self.keep
    }

    /// Records one change. `object` is needed only when [`ChangeSet::keeps_objects`].
    pub fn add(
        &mut self,
        kind: ChangeKind,
        key: &str,
        type_name: &str,
        properties: BTreeMap<String, PropertyChange>,
        object: Option<StateObject>,
    ) {
        if self.list_created_later && kind == ChangeKind::Created {
            return;
        }
        let entry = self.types.entry(type_name.to_string()).or_default();
        match kind {
            ChangeKind::Created => entry.created.push(key.to_string()),
            ChangeKind::Deleted => entry.deleted.push(key.to_string()),
            ChangeKind::Updated => entry.updated.push(Updated {
                key: key.to_string(),
                properties: properties.clone(),
            }),
        }
        if let (true, Some(object)) = (self.keep, object) {
            self.changes.push(Change {
                kind,
                object,
                properties,
            });
        }
    }

    fn totals(&self) -> BTreeMap<&'static str, usize> {
        let mut totals = BTreeMap::from([("created", 0), ("updated", 0), ("deleted", 0)]);
        for t in self.types.values() {
            *totals.entry("created").or_default() += t.created.len();
            *totals.entry("updated").or_default() += t.updated.len();
            *totals.entry("deleted").or_default() += t.deleted.len();
        }
        totals
    }

    /// Sorts each list by key and the changes by (`_type`, kind, key).
    fn sort(&mut self) {
        for t in self.types.values_mut() {
            t.created.sort_unstable();
            t.deleted.sort_unstable();
            t.updated.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        self.changes.sort_by(|a, b| {
            (&a.object.type_name, a.kind, &a.object.key).cmp(&(
                &b.object.type_name,
                b.kind,
                &b.object.key,
            ))
        });
    }

    /// `changes.json`: totals, then per `_type` the created and deleted keys and the
    /// updated keys with their changed properties; and its console summary (the same
    /// without the keys).
    pub fn finish(
        mut self,
        instance: &str,
        run_id: &str,
        baseline: bool,
        partial_types: &BTreeSet<String>,
    ) -> serde_json::Result<(String, Value, Vec<Change>)> {
        if self.list_created_later {
            return Err(serde::ser::Error::custom(
                "a baseline's change set is finished by finish_baseline",
            ));
        }
        self.sort();
        let document = serde_json::to_string(&Document {
            baseline,
            instance,
            partial_types,
            run_id,
            totals: self.totals(),
            types: &self.types,
        })?;
        let summary = self.summary(baseline);
        Ok((document, summary, self.changes))
    }

    /// The console summary: totals and counts per `_type`.
    fn summary(&self, baseline: bool) -> Value {
        let counts = self.types.iter().map(|(t, c)| {
            (
                t.as_str(),
                [c.created.len(), c.updated.len(), c.deleted.len()],
            )
        });
        summary(baseline, &self.totals(), counts)
    }

    /// [`ChangeSet::finish`] for a [`ChangeSet::baseline`]: writes to `out` the document
    /// `finish` would give had it held the keys, from `keys`, the state's (`_type`, key)
    /// pairs sorted by type then key, `total` of them, read one at a time; returns its
    /// summary. The state is what is listed (two emitted keys one redacted key stands
    /// for are one object there). Nothing grows with the graph but `out`. Fails if
    /// `keys` does not yield `total` pairs.
    pub fn finish_baseline<E, W>(
        self,
        (instance, run_id): (&str, &str),
        partial_types: &BTreeSet<String>,
        keys: impl Iterator<Item = Result<(String, String), E>>,
        total: usize,
        mut out: W,
    ) -> Result<Value, E>
    where
        E: From<serde_json::Error> + From<std::io::Error>,
        W: std::io::Write,
    {
        debug_assert!(self.list_created_later && self.types.is_empty());
        let totals = BTreeMap::from([("created", total), ("deleted", 0), ("updated", 0)]);
        out.write_all(b"{\"baseline\":true,\"instance\":")?;
        serde_json::to_writer(&mut out, instance)?;
        out.write_all(b",\"partialTypes\":")?;
        serde_json::to_writer(&mut out, partial_types)?;
        out.write_all(b",\"runId\":")?;
        serde_json::to_writer(&mut out, run_id)?;
        out.write_all(b",\"totals\":")?;
        serde_json::to_writer(&mut out, &totals)?;
        out.write_all(b",\"types\":{")?;
        const TYPE_END: &[u8] = b"],\"deleted\":[],\"updated\":[]}";
        let mut listed: BTreeMap<String, usize> = BTreeMap::new();
        let mut current: Option<String> = None;
        for row in keys {
            let (type_name, key) = row?;
            if current.as_deref() == Some(type_name.as_str()) {
                out.write_all(b",")?;
            } else {
                if current.is_some() {
                    out.write_all(TYPE_END)?;
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, &type_name)?;
                out.write_all(b":{\"created\":[")?;
                current = Some(type_name.clone());
            }
            serde_json::to_writer(&mut out, &key)?;
            *listed.entry(type_name).or_default() += 1;
        }
        if current.is_some() {
            out.write_all(TYPE_END)?;
        }
        out.write_all(b"}}")?;
        out.flush()?;
        let count = listed.values().sum::<usize>();
        if count != total {
            let e: serde_json::Error = serde::ser::Error::custom(format!(
                "the state listed {count} objects, {total} were expected"
            ));
            return Err(E::from(e));
        }
        let counts = listed.iter().map(|(t, &n)| (t.as_str(), [n, 0, 0]));
        Ok(summary(true, &totals, counts))
    }
}

/// A change set's console summary from its totals and, per `_type`, its
/// [created, updated, deleted] counts.
fn summary<'a>(
    baseline: bool,
    totals: &BTreeMap<&'static str, usize>,
    counts: impl Iterator<Item = (&'a str, [usize; 3])>,
) -> Value {
    let types: BTreeMap<&str, Value> = counts
        .map(|(t, [created, updated, deleted])| {
            let n = serde_json::json!({
                "created": created,
                "updated": updated,
                "deleted": deleted,
            });
            (t, n)
        })
        .collect();
    serde_json::json!({
        "baseline": baseline,
        "totals": totals,
        "types": types,
    })
}

/// The totals, then one line per `_type` that changed (not for the baseline, where
/// everything is new), for the console. Takes `changes.json` or its summary.
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
        let n = |k: &str| {
            c[k].as_u64()
                .unwrap_or_else(|| c[k].as_array().map_or(0, |a| a.len() as u64))
        };
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
    use crate::canonical::content_hash;
    use serde_json::json;

    fn obj(key: &str, extra: Value) -> Map<String, Value> {
        let mut o = json!({"_key": key, "_type": "d", "_class": "Device", "name": key});
        o.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        o.as_object().unwrap().clone()
    }

    /// A baseline listed from sorted (type, key) rows is the document `finish` writes
    /// from held keys, byte for byte, and its summary; rows short of the total are an
    /// error.
    #[test]
    fn a_baseline_listed_from_the_state_is_the_held_documents_twin() {
        let objects = [
            ("zeta_app", "k\"quoted\u{e9}"),
            ("a_device", "d-2"),
            ("a_device", "d-10"),
            ("zeta_app", "a/1"),
        ];
        let partial = BTreeSet::from(["zeta_app".to_string()]);
        let mut held = ChangeSet::new(false);
        let mut listed = ChangeSet::baseline();
        for (t, k) in objects {
            held.add(ChangeKind::Created, k, t, BTreeMap::new(), None);
            listed.add(ChangeKind::Created, k, t, BTreeMap::new(), None);
        }
        let (want, want_summary, _) = held.finish("inst", "run-7", true, &partial).unwrap();
        let mut rows: Vec<(String, String)> = objects
            .iter()
            .map(|(t, k)| (t.to_string(), k.to_string()))
            .collect();
        rows.sort();
        fn ok(
            rows: &[(String, String)],
        ) -> impl Iterator<Item = Result<(String, String), serde_json::Error>> + '_ {
            rows.iter().cloned().map(Ok)
        }
        let (got, summary) = baseline_document(listed, &partial, ok(&rows), 4).unwrap();
        assert_eq!(got, want);
        assert_eq!(summary, want_summary);

        let err =
            baseline_document(ChangeSet::baseline(), &partial, ok(&rows[1..]), 4).unwrap_err();
        assert!(
            err.to_string()
                .contains("listed 3 objects, 4 were expected"),
            "{err}"
        );
        let mut unlisted = ChangeSet::baseline();
        unlisted.add(ChangeKind::Created, "k", "t", BTreeMap::new(), None);
        assert!(unlisted.finish("inst", "run-7", true, &partial).is_err());
        let (doc, summary) =
            baseline_document(ChangeSet::baseline(), &BTreeSet::new(), ok(&[]), 0).unwrap();
        let (held_empty, held_summary, _) = ChangeSet::new(false)
            .finish("i", "r", true, &BTreeSet::new())
            .unwrap();
        assert_eq!((doc, summary), (held_empty, held_summary));
    }

    /// [`ChangeSet::finish_baseline`]'s document as text, for instance `inst`'s `run-7`
    /// (`i`'s `r` when nothing is listed).
    fn baseline_document(
        set: ChangeSet,
        partial: &BTreeSet<String>,
        rows: impl Iterator<Item = Result<(String, String), serde_json::Error>>,
        total: usize,
    ) -> anyhow::Result<(String, Value)> {
        let rows = rows.map(|r| r.map_err(anyhow::Error::from));
        let names = if total == 0 {
            ("i", "r")
        } else {
            ("inst", "run-7")
        };
        let mut out = Vec::new();
        let summary = set.finish_baseline(names, partial, rows, total, &mut out)?;
        Ok((String::from_utf8(out).unwrap(), summary))
    }

    #[test]
    fn created_updated_unchanged_and_unseen() {
        let mut previous = Previous::builder(3);
        for (row, (key, extra)) in [
            ("device-0001", json!({"encrypted": true})),
            ("device-0002", json!({"encrypted": true})),
            ("device-0003", json!({})),
        ]
        .into_iter()
        .enumerate()
        {
            previous.add(row as i64, key, &content_hash(&obj(key, extra)));
        }
        let mut previous = previous.finish();
        // _rawData alone is no change.
        let same = obj(
            "device-0001",
            json!({"encrypted": true, "_rawData": [{"x": 1}]}),
        );
        assert_eq!(
            previous.observe("device-0001", &content_hash(&same)),
            Seen::Unchanged
        );
        let changed = obj("device-0002", json!({"encrypted": false}));
        assert_eq!(
            previous.observe("device-0002", &content_hash(&changed)),
            Seen::Updated
        );
        let new = obj("device-0004", json!({}));
        assert_eq!(
            previous.observe("device-0004", &content_hash(&new)),
            Seen::Created
        );
        assert_eq!(previous.unseen(), [2]);
        assert_eq!(
            changed_properties(&obj("device-0002", json!({"encrypted": true})), &changed),
            BTreeMap::from([(
                "encrypted".to_string(),
                PropertyChange {
                    before: json!(true),
                    after: json!(false)
                }
            )])
        );
    }

    #[test]
    fn a_large_index_finds_every_key_and_lists_exactly_the_unseen_rows() {
        let mut previous = Previous::builder(1000);
        let hash = |i: usize| content_hash(&obj(&format!("k{i}"), json!({"n": i})));
        for i in 0..1000 {
            previous.add(i as i64 + 10, &format!("k{i}"), &hash(i));
        }
        let mut previous = previous.finish();
        // Every third key is emitted, every fifth of those changed, and new ones added.
        for i in (0..1000).step_by(3) {
            let h = if i % 5 == 0 { hash(i + 1) } else { hash(i) };
            let want = if i % 5 == 0 {
                Seen::Updated
            } else {
                Seen::Unchanged
            };
            assert_eq!(previous.observe(&format!("k{i}"), &h), want, "k{i}");
        }
        assert_eq!(previous.observe("k1000", &hash(1000)), Seen::Created);
        let unseen: Vec<i64> = (0..1000)
            .filter(|i| i % 3 != 0)
            .map(|i| i as i64 + 10)
            .collect();
        assert_eq!(previous.unseen(), unseen);
        // Nothing stored: everything is created, nothing is unseen.
        let mut empty = Previous::builder(0).finish();
        assert_eq!(empty.observe("k1", &hash(1)), Seen::Created);
        assert!(empty.unseen().is_empty());
    }

    #[test]
    fn the_document_lists_keys_sorted_per_type_with_totals() {
        let mut set = ChangeSet::new(false);
        set.add(
            ChangeKind::Deleted,
            "device-0003",
            "d",
            BTreeMap::new(),
            None,
        );
        set.add(
            ChangeKind::Created,
            "device-0009",
            "d",
            BTreeMap::new(),
            None,
        );
        set.add(
            ChangeKind::Created,
            "device-0004",
            "d",
            BTreeMap::new(),
            None,
        );
        let props = BTreeMap::from([(
            "encrypted".to_string(),
            PropertyChange {
                before: json!(true),
                after: json!(false),
            },
        )]);
        set.add(ChangeKind::Updated, "device-0002", "d", props, None);
        let partial = BTreeSet::from(["a".to_string()]);
        let (text, summary, changes) = set.finish("i", "run-1", false, &partial).unwrap();
        assert!(text.starts_with(
            r#"{"baseline":false,"instance":"i","partialTypes":["a"],"runId":"run-1","totals":"#
        ));
        assert!(changes.is_empty());
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["totals"],
            json!({"created": 2, "updated": 1, "deleted": 1})
        );
        assert_eq!(doc["partialTypes"], json!(["a"]));
        assert_eq!(
            doc["types"]["d"]["created"],
            json!(["device-0004", "device-0009"])
        );
        assert_eq!(doc["types"]["d"]["deleted"], json!(["device-0003"]));
        assert_eq!(
            doc["types"]["d"]["updated"],
            json!([{"_key": "device-0002", "properties": {"encrypted": {"before": true, "after": false}}}])
        );
        assert_eq!(
            summary["types"]["d"],
            json!({"created": 2, "updated": 1, "deleted": 1})
        );
        assert_eq!(console_summary(&doc), console_summary(&summary));
    }
}
