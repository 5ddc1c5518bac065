//! A run's graph: every accepted object written once, as it is emitted, to the run's
//! spool; in memory only what the checks and the readers need per object (a 128-bit key
//! id, where its record lies, its group) and per group (step, `_type`, count).
//!
//! Objects that held a secret value are stored redacted; their text as emitted is kept
//! in memory for the guest to read back, so reading cannot tell it which guess matched.

use super::spool::{self, Span, Spool};
use crate::secrets::Secrets;
use corral_core::canonical::{self, ContentHash};
pub use corral_core::changes::KeyIds;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io;

mod key_index;
mod transfer;
use key_index::KeyIndex;
pub use transfer::GraphMeta;

#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Entity,
    Relationship,
}

impl Kind {
    /// The collect layout's folder and JSON field.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Entity => "entities",
            Kind::Relationship => "relationships",
        }
    }
}

/// Objects of one kind and `_type` one step emitted, in emit order.
pub struct Group {
    pub kind: Kind,
    pub step: String,
    /// `_type` as stored (what output and state see).
    pub type_name: String,
    /// `_type` as emitted (what the guest reads by); differs only if it held a secret.
    emitted_type: String,
    members: Vec<u32>,
}

impl Group {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// A step's entities and relationships, as JSON text.
pub type StepObjects = (
    Vec<Box<serde_json::value::RawValue>>,
    Vec<Box<serde_json::value::RawValue>>,
);

/// One object, parsed: for tests and small readers.
#[derive(Debug, Clone)]
pub struct Stored {
    pub step: String,
    pub type_name: String,
    pub key: String,
    pub object: Map<String, Value>,
}

/// One object read from the spool, unparsed.
pub struct Item<'a> {
    pub group: &'a Group,
    pub key: &'a str,
    pub hash: &'a ContentHash,
    pub json: &'a [u8],
}

/// Where an object lies, and which group holds it (16 bytes).
struct Slot {
    offset: u64,
    len: u32,
    group: u32,
}

impl Slot {
    fn span(&self) -> Span {
        Span {
            offset: self.offset,
            len: self.len,
        }
    }
}

/// What [`GraphStore::insert`] stores.
pub struct NewObject<'a> {
    pub kind: Kind,
    pub step: &'a str,
    /// `_type` and `_key` as emitted (what the guest looks them up by).
    pub type_name: &'a str,
    pub key: &'a str,
    /// The object as stored (redacted when it held a secret).
    pub stored: &'a Map<String, Value>,
    /// Its `_rawData` as canonical text, when kept apart from `stored`.
    pub raw_data: Option<&'a str>,
    /// Its canonical text as emitted, when that differs from what is stored.
    pub original: Option<Vec<u8>>,
}

/// The most objects a run's graph is sized for up front (about 80 MB of address space).
const MAX_RESERVED: u64 = 2 << 20;

/// What a run's graph may hold: `maxEntities`, `maxRelationships`, `maxGraphBytes`
/// (the spooled records and the originals kept in memory).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub entities: u64,
    pub relationships: u64,
    pub bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            entities: u64::MAX,
            relationships: u64::MAX,
            bytes: u64::MAX,
        }
    }
}

impl From<&crate::policy::EffectiveLimits> for Budget {
    fn from(l: &crate::policy::EffectiveLimits) -> Self {
        Budget {
            entities: l.max_entities,
            relationships: l.max_relationships,
            bytes: l.max_graph_bytes,
        }
    }
}

/// Why [`GraphStore::insert`] did not store an object: a limit of the [`Budget`], or
/// the host's own storage failing. Either way nothing more of the run fits.
#[derive(Debug)]
pub enum Refused {
    Budget(String),
    Io(io::Error),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Budget(reason) => f.write_str(reason),
            Refused::Io(e) => write!(f, "the host could not store the object: {e}"),
        }
    }
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Self {
        Refused::Io(e)
    }
}

#[derive(Default)]
pub struct GraphStore {
    budget: Budget,
    bytes: u64,
    spool: Option<Spool>,
    slots: Vec<Slot>,
    groups: Vec<Group>,
    group_ids: HashMap<(Kind, String, String), u32>,
    keys: KeyIndex,
    key_ids: KeyIds,
    /// Entities per `_type` as emitted, for `list-entities`.
    by_type: HashMap<String, Vec<u32>>,
    /// Redacted objects' text as emitted.
    originals: HashMap<u32, Box<[u8]>>,
    /// Objects stored redacted (kept after [`GraphStore::seal`] drops the originals).
    redacted: usize,
    entities: usize,
    relationships: usize,
    /// Per "`_type` class", entities lacking each property the class requires.
    missing_required: BTreeMap<String, BTreeMap<String, usize>>,
}

impl GraphStore {
    pub fn new(budget: Budget) -> GraphStore {
        GraphStore {
            budget,
            ..GraphStore::default()
        }
    }

    /// Sizes the key index and the slots for `objects` (the previous run's count, within
    /// the budget and [`MAX_RESERVED`]): a vector grown by doubling holds up to twice
    /// what it needs. Reserved address space is touched only as objects come.
    pub fn reserve(&mut self, objects: u64) {
        let budget = self
            .budget
            .entities
            .saturating_add(self.budget.relationships);
        let n = objects.min(budget).min(MAX_RESERVED);
        // A little over: a run that grows slightly past its previous one does not resize.
        let n = usize::try_from(n.saturating_add(n / 16)).unwrap_or(0);
        // An estimate: where the system will not lend the address space, vectors grow.
        if self.slots.try_reserve_exact(n).is_ok() {
            self.keys.reserve(n);
        }
    }

    pub fn entity_count(&self) -> usize {
        self.entities
    }

    pub fn relationship_count(&self) -> usize {
        self.relationships
    }

    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Entity => self.entities,
            Kind::Relationship => self.relationships,
        }
    }

    /// Bytes charged to `maxGraphBytes`: per object 36 + its key and canonical text as
    /// emitted (what the spool holds; a redacted object's original is kept in memory too).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.keys.contains(self.key_ids.id(key))
    }

    fn entity_index(&self, key: &str) -> Option<u32> {
        let i = self.keys.get(self.key_ids.id(key))?;
        let group = &self.groups[self.slots[i as usize].group as usize];
        (group.kind == Kind::Entity).then_some(i)
    }

    pub fn has_entity(&self, key: &str) -> bool {
        self.entity_index(key).is_some()
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn missing_required(&self) -> &BTreeMap<String, BTreeMap<String, usize>> {
        &self.missing_required
    }

    /// Stores one checked object within the budget. The caller has checked its key is
    /// new.
    pub fn insert(&mut self, new: NewObject<'_>) -> Result<(), Refused> {
        let (max, name) = match new.kind {
            Kind::Entity => (self.budget.entities, "maxEntities"),
            Kind::Relationship => (self.budget.relationships, "maxRelationships"),
        };
        if self.count(new.kind) as u64 >= max {
            return Err(Refused::Budget(format!("{name} limit of {max} reached")));
        }
        let (json, hash) = canonical::encode_with_raw_data(new.stored, new.raw_data);
        let stored_key = new
            .stored
            .get("_key")
            .and_then(Value::as_str)
            .unwrap_or(new.key);
        // Charged by the text as emitted, whether or not it held a secret: a charge that
        // differed would tell the guest which guess was one. (A redacted object's spooled
        // copy and the original kept in memory are each about that size.)
        let emitted = new.original.as_ref().map_or(json.len(), Vec::len);
        let size = [36, new.key.len(), emitted]
            .iter()
            .fold(0u64, |sum, &n| sum.saturating_add(n as u64));
        let max_bytes = self.budget.bytes;
        if self.bytes.saturating_add(size) > max_bytes {
            return Err(Refused::Budget(format!(
                "maxGraphBytes limit of {max_bytes} reached (the run's graph holds {} bytes)",
                self.bytes
            )));
        }
        let spool = match &mut self.spool {
            Some(s) => s,
            None => self.spool.insert(Spool::create()?),
        };
        let span = spool.append(&hash, stored_key, &json)?;
        self.bytes += size;
        // Below u32::MAX: the key index's directory counts entries in a u32.
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let group = self.group_id(new.kind, new.step, new.type_name, new.stored);
        self.groups[group as usize].members.push(index);
        self.slots.push(Slot {
            offset: span.offset,
            len: span.len,
            group,
        });
        self.keys.insert(self.key_ids.id(new.key), index);
        if let Some(original) = new.original {
            self.originals.insert(index, original.into_boxed_slice());
            self.redacted += 1;
        }
        match new.kind {
            Kind::Entity => {
                self.entities += 1;
                self.by_type
                    .entry(new.type_name.to_string())
                    .or_default()
                    .push(index);
                self.count_missing_required(new.stored);
            }
            Kind::Relationship => self.relationships += 1,
        }
        Ok(())
    }

    /// The group of (kind, step, emitted `_type`). A `_type` holding a secret is redacted
    /// in every object that carries it, so one group has one stored `_type`.
    fn group_id(
        &mut self,
        kind: Kind,
        step: &str,
        type_name: &str,
        stored: &Map<String, Value>,
    ) -> u32 {
        let id = (kind, step.to_string(), type_name.to_string());
        if let Some(&g) = self.group_ids.get(&id) {
            return g;
        }
        let g = self.groups.len() as u32;
        let stored_type = stored
            .get("_type")
            .and_then(Value::as_str)
            .unwrap_or(type_name);
        self.groups.push(Group {
            kind,
            step: id.1.clone(),
            type_name: stored_type.to_string(),
            emitted_type: type_name.to_string(),
            members: Vec::new(),
        });
        self.group_ids.insert(id, g);
        g
    }

    fn count_missing_required(&mut self, object: &Map<String, Value>) {
        let type_name = object.get("_type").and_then(Value::as_str).unwrap_or("");
        for class in crate::datamodel::class_names(object) {
            for property in crate::datamodel::missing_required(object, class) {
                let counts = self
                    .missing_required
                    .entry(format!("{type_name} {class}"))
                    .or_default();
                *counts.entry(property.to_string()).or_insert(0) += 1;
            }
        }
    }

    /// The text the guest emitted for entity `key`, with its `_type`.
    pub fn read_entity(&mut self, key: &str) -> io::Result<Option<(String, Vec<u8>)>> {
        let Some(i) = self.entity_index(key) else {
            return Ok(None);
        };
        let slot = &self.slots[i as usize];
        let type_name = self.groups[slot.group as usize].emitted_type.clone();
        Ok(Some((type_name, self.read_as_emitted(i)?)))
    }

    /// A page of the entities of `type_name` as emitted: the texts and the next cursor.
    pub fn read_type_page(
        &mut self,
        type_name: &str,
        start: usize,
        limit: usize,
    ) -> io::Result<(Vec<Vec<u8>>, Option<usize>)> {
        let all = self.by_type.get(type_name).map_or(&[][..], Vec::as_slice);
        let start = start.min(all.len());
        let end = start.saturating_add(limit).min(all.len());
        let (indices, total) = (all[start..end].to_vec(), all.len());
        let page = indices
            .into_iter()
            .map(|i| self.read_as_emitted(i))
            .collect::<io::Result<_>>()?;
        Ok((page, (end < total).then_some(end)))
    }

    fn read_as_emitted(&mut self, index: u32) -> io::Result<Vec<u8>> {
        if let Some(original) = self.originals.get(&index) {
            return Ok(original.to_vec());
        }
        let span = self.slots[index as usize].span();
        let spool = self.spool.as_mut().ok_or(io::ErrorKind::NotFound)?;
        let bytes = spool.read(span)?;
        Ok(spool::parse(&bytes)?.json.to_vec())
    }

    /// How many objects were stored redacted (they held a secret value).
    pub fn redacted(&self) -> usize {
        self.redacted
    }

    /// Makes every stored object readable by [`GraphStore::scan_group`] and
    /// [`GraphStore::scan`]; the originals kept for the guest are dropped (the run is over).
    pub fn seal(&mut self) -> io::Result<()> {
        self.originals = HashMap::new();
        self.by_type = HashMap::new();
        self.keys = KeyIndex::default();
        // Grown by doubling while the run emitted; delivery holds them as they are.
        self.slots.shrink_to_fit();
        for g in &mut self.groups {
            g.members.shrink_to_fit();
        }
        match &mut self.spool {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }

    /// Every object in emit order.
    pub fn scan(&self, mut f: impl FnMut(Item<'_>) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let Some(spool) = &self.spool else {
            return Ok(());
        };
        let mut reader = spool.reader()?;
        for slot in &self.slots {
            let r = reader.record(slot.span())?;
            f(Item {
                group: &self.groups[slot.group as usize],
                key: r.key,
                hash: r.hash,
                json: r.json,
            })?;
        }
        Ok(())
    }

    /// The objects of one group in emit order.
    pub fn scan_group(
        &self,
        group: &Group,
        mut f: impl FnMut(Item<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let Some(spool) = &self.spool else {
            return Ok(());
        };
        let mut reader = spool.reader()?;
        for &i in &group.members {
            let r = reader.record(self.slots[i as usize].span())?;
            f(Item {
                group,
                key: r.key,
                hash: r.hash,
                json: r.json,
            })?;
        }
        Ok(())
    }

    /// The objects `step` emitted as text (entities, relationships): for uploads that
    /// start before the run ends.
    pub fn step_objects(&mut self, step: &str) -> anyhow::Result<StepObjects> {
        if let Some(spool) = &mut self.spool {
            spool.flush()?;
        }
        let mut out: StepObjects = (Vec::new(), Vec::new());
        for group in self.groups.iter().filter(|g| g.step == step) {
            self.scan_group(group, |item| {
                let list = match item.group.kind {
                    Kind::Entity => &mut out.0,
                    Kind::Relationship => &mut out.1,
                };
                let text = String::from_utf8(item.json.to_vec())?;
                list.push(serde_json::value::RawValue::from_string(text)?);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Every object of `kind`, parsed (tests and small graphs: this holds them all).
    pub fn load(&self, kind: Kind) -> Vec<Stored> {
        let mut out = Vec::new();
        let _ = self.scan(|item| {
            if item.group.kind == kind {
                out.push(Stored {
                    step: item.group.step.clone(),
                    type_name: item.group.type_name.clone(),
                    key: item.key.to_string(),
                    object: serde_json::from_slice(item.json)?,
                });
            }
            Ok(())
        });
        out
    }

    /// [`GraphStore::load`] of the entities.
    pub fn entities(&self) -> Vec<Stored> {
        self.load(Kind::Entity)
    }

    /// [`GraphStore::load`] of the relationships.
    pub fn relationships(&self) -> Vec<Stored> {
        self.load(Kind::Relationship)
    }

    /// The stored entity `key`, parsed (after [`GraphStore::seal`]).
    pub fn entity(&self, key: &str) -> Option<Stored> {
        self.entities().into_iter().find(|s| s.key == key)
    }
}

/// `object` with every secret value replaced, in keys and values.
pub fn redact_map(object: Map<String, Value>, secrets: &Secrets) -> Map<String, Value> {
    object
        .into_iter()
        .map(|(k, v)| (secrets.redact(&k), redact_value(v, secrets)))
        .collect()
}

fn redact_value(v: Value, secrets: &Secrets) -> Value {
    match v {
        Value::String(s) => Value::String(secrets.redact(&s)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| redact_value(i, secrets))
                .collect(),
        ),
        Value::Object(m) => Value::Object(redact_map(m, secrets)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(key: &str, ty: &str, extra: Value) -> Map<String, Value> {
        let mut o = json!({"_key": key, "_type": ty, "_class": ["Device"], "name": key});
        o.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        o.as_object().cloned().unwrap()
    }

    fn put(g: &mut GraphStore, step: &str, o: &Map<String, Value>) -> Result<(), Refused> {
        g.insert(NewObject {
            kind: Kind::Entity,
            step,
            type_name: o["_type"].as_str().unwrap(),
            key: o["_key"].as_str().unwrap(),
            stored: o,
            raw_data: None,
            original: None,
        })
    }

    #[test]
    fn objects_read_back_by_key_and_type_page_and_scan_in_emit_order() {
        let mut g = GraphStore::default();
        for i in 0..2500 {
            let ty = if i % 2 == 0 { "t_even" } else { "t_odd" };
            put(
                &mut g,
                "s",
                &object(&format!("device-{i:05}"), ty, json!({"n": i})),
            )
            .unwrap();
        }
        assert!(g.contains_key("device-00042") && g.has_entity("device-00042"));
        assert!(!g.contains_key("device-99999"));
        let (ty, text) = g.read_entity("device-00007").unwrap().unwrap();
        assert_eq!(ty, "t_odd");
        let back: Map<String, Value> = serde_json::from_slice(&text).unwrap();
        assert_eq!(back, object("device-00007", "t_odd", json!({"n": 7})));
        let (page, next) = g.read_type_page("t_even", 1000, 1000).unwrap();
        assert_eq!((page.len(), next), (250, None));
        let first: Map<String, Value> = serde_json::from_slice(&page[0]).unwrap();
        assert_eq!(first["n"], 2000);
        g.seal().unwrap();
        let mut keys = Vec::new();
        g.scan(|item| {
            keys.push(item.key.to_string());
            assert_eq!(
                item.hash,
                &corral_core::canonical::content_hash(&serde_json::from_slice(item.json)?)
            );
            Ok(())
        })
        .unwrap();
        let expected: Vec<String> = (0..2500).map(|i| format!("device-{i:05}")).collect();
        assert_eq!(keys, expected);
        let sizes: Vec<(String, usize)> = g
            .groups()
            .iter()
            .map(|gr| (gr.type_name.clone(), gr.len()))
            .collect();
        assert_eq!(
            sizes,
            [("t_even".to_string(), 1250), ("t_odd".to_string(), 1250)]
        );
    }

    #[test]
    fn reads_with_the_worst_arguments_answer_empty() {
        let mut g = GraphStore::default();
        put(&mut g, "s", &object("device-00001", "t", json!({}))).unwrap();
        // A cursor past the end, the largest limit, a key of a megabyte, an unknown type.
        let (page, next) = g
            .read_type_page("t", u32::MAX as usize, usize::MAX)
            .unwrap();
        assert!(page.is_empty() && next.is_none());
        let (page, next) = g.read_type_page("t", 0, usize::MAX).unwrap();
        assert_eq!((page.len(), next), (1, None));
        assert!(g.read_entity(&"k".repeat(1 << 20)).unwrap().is_none());
        assert!(!g.contains_key(&"k".repeat(1 << 20)));
        assert!(
            g.read_type_page(&"t".repeat(1 << 20), 0, 10)
                .unwrap()
                .0
                .is_empty()
        );
    }

    #[test]
    fn a_reservation_is_bounded_by_the_budget_and_the_cap() {
        let mut g = GraphStore::new(Budget {
            entities: 10,
            relationships: 5,
            bytes: u64::MAX,
        });
        g.reserve(u64::MAX);
        assert!((15..=16).contains(&g.slots.capacity()));
        let mut g = GraphStore::new(Budget::default());
        g.reserve(u64::MAX);
        let most = (MAX_RESERVED + MAX_RESERVED / 16) as usize;
        assert!((most..most + 64).contains(&g.slots.capacity()));
        put(&mut g, "s", &object("device-00000", "t", json!({}))).unwrap();
        assert!(g.has_entity("device-00000"));
    }

    #[test]
    fn the_budget_counts_objects_and_spooled_bytes() {
        let budget = Budget {
            entities: 3,
            relationships: 0,
            bytes: u64::MAX,
        };
        let mut g = GraphStore::new(budget);
        for i in 0..3 {
            put(
                &mut g,
                "s",
                &object(&format!("device-{i:05}"), "t", json!({})),
            )
            .unwrap();
        }
        let over = put(&mut g, "s", &object("device-00003", "t", json!({})));
        assert!(matches!(over, Err(Refused::Budget(r)) if r == "maxEntities limit of 3 reached"));

        let one = object("device-00000", "t", json!({"blob": "x".repeat(1000)}));
        let size = 36 + 12 + corral_core::canonical::encode(&one).0.len() as u64;
        let mut g = GraphStore::new(Budget {
            bytes: size * 2,
            ..Budget::default()
        });
        put(&mut g, "s", &one).unwrap();
        let two = object("device-00001", "t", json!({"blob": "x".repeat(1000)}));
        put(&mut g, "s", &two).unwrap();
        assert_eq!(g.bytes(), size * 2);
        let three = object("device-00002", "t", json!({"blob": "x".repeat(1000)}));
        match put(&mut g, "s", &three) {
            Err(Refused::Budget(r)) => assert!(r.starts_with("maxGraphBytes limit of"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(g.entity_count(), 2);
    }

    #[test]
    fn a_redacted_object_is_stored_redacted_and_read_back_as_emitted() {
        let mut g = GraphStore::default();
        let emitted = object("device-00001", "t", json!({"note": "hunter2-secret"}));
        let stored = object("device-00001", "t", json!({"note": "[REDACTED]"}));
        g.insert(NewObject {
            kind: Kind::Entity,
            step: "s",
            type_name: "t",
            key: "device-00001",
            stored: &stored,
            raw_data: None,
            original: Some(corral_core::canonical::encode(&emitted).0),
        })
        .unwrap();
        let (_, text) = g.read_entity("device-00001").unwrap().unwrap();
        assert!(String::from_utf8(text).unwrap().contains("hunter2-secret"));
        // Charged as the same object with no secret would be: the budget is no oracle.
        let mut plain = GraphStore::default();
        put(&mut plain, "s", &emitted).unwrap();
        assert_eq!(g.bytes(), plain.bytes());
        g.seal().unwrap();
        let all = g.entities();
        assert_eq!(all[0].object, stored);
    }
}
