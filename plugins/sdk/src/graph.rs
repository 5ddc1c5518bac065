//! Emitting to and reading back from the run's graph through the host.

use crate::bindings::corral::integration::graph as wit;
// The host's calls: the WIT imports in a component, the fake host natively.
use crate::entity::Object;
use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::graph as host;
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use wit as host;

/// How many objects go to the host in one call.
const BATCH: usize = 500;

/// Buffers entities and relationships and sends them in batches; what is left is sent
/// when the emitter is dropped (call [`Emitter::flush`] to see an error where it
/// happens). A failure while dropped becomes the step's error if the step itself
/// succeeded (see `connector::run_step_of`). Objects the host rejects one by one are
/// counted and logged by the host.
#[derive(Default)]
pub struct Emitter {
    entities: Vec<String>,
    relationships: Vec<String>,
    /// A send failed: what is still buffered is not sent when dropped (relationships
    /// whose ends were in the lost batch would have none).
    failed: bool,
    pub accepted: u32,
    pub rejected: Vec<wit::Rejection>,
}

impl Emitter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn entity(&mut self, entity: Object) -> Result<()> {
        self.entities.push(to_json(&entity)?);
        if self.entities.len() >= BATCH {
            self.flush_entities()?;
        }
        Ok(())
    }

    pub fn relationship(&mut self, relationship: Object) -> Result<()> {
        self.relationships.push(to_json(&relationship)?);
        if self.relationships.len() >= BATCH {
            self.flush_relationships()?;
        }
        Ok(())
    }

    /// Sends everything buffered: entities first, so relationships find their ends.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_entities()?;
        self.flush_relationships()
    }

    fn flush_entities(&mut self) -> Result<()> {
        if self.entities.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.entities);
        self.failed = true;
        let report = host::emit_entities(&batch).map_err(graph_error)?;
        self.failed = false;
        self.record(report);
        Ok(())
    }

    fn flush_relationships(&mut self) -> Result<()> {
        self.flush_entities()?;
        if self.relationships.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.relationships);
        self.failed = true;
        let report = host::emit_relationships(&batch).map_err(graph_error)?;
        self.failed = false;
        self.record(report);
        Ok(())
    }

    fn record(&mut self, report: wit::EmitReport) {
        self.accepted += report.accepted;
        self.rejected.extend(report.rejected);
    }
}

impl Drop for Emitter {
    fn drop(&mut self) {
        if self.failed {
            return;
        }
        if let Err(e) = self.flush() {
            DEFERRED.with(|d| d.borrow_mut().get_or_insert(e).clone());
        }
    }
}

/// Keys a step has emitted, for skipping an item a later page repeats (paging over a
/// list that changes meanwhile). Only a 64-bit hash of each key is held (50,000 keys
/// cost about 1 MiB of guest memory, not 5), under a random key so a provider cannot aim
/// for collisions; a hit is confirmed against the run's graph on the host, so a
/// collision drops nothing. A key the host refused stays refused: its repeats are
/// skipped too, not sent again.
#[derive(Default)]
pub struct Repeats {
    hashes: std::collections::HashSet<u64>,
    hasher: std::hash::RandomState,
    refused: std::collections::HashSet<String>,
    /// How many of the emitter's rejections `refused` holds.
    read: usize,
}

impl Repeats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `key` was emitted through `out` already (accepted or refused); notes it
    /// otherwise. A hit flushes `out`, so the host holds what the step emitted.
    pub fn seen(&mut self, key: &str, out: &mut Emitter) -> Result<bool> {
        use std::hash::BuildHasher;
        if self.hashes.insert(self.hasher.hash_one(key)) {
            return Ok(false);
        }
        out.flush()?;
        let new = out.rejected.get(self.read..).unwrap_or_default();
        self.refused.extend(new.iter().map(|r| r.key.clone()));
        self.read = out.rejected.len();
        Ok(has_key(key) || self.refused.contains(key))
    }
}

thread_local! {
    /// The first error an emitter met while dropped, for the step to report.
    static DEFERRED: std::cell::RefCell<Option<Error>> = const { std::cell::RefCell::new(None) };
}

/// The first error an emitter met while dropped since the last call.
pub fn take_deferred_error() -> Option<Error> {
    DEFERRED.with(|d| d.borrow_mut().take())
}

fn graph_error(e: wit::GraphError) -> Error {
    Error::Graph(match e {
        wit::GraphError::Denied(m) => format!("denied: {m}"),
        wit::GraphError::Limit(m) => format!("limit: {m}"),
        wit::GraphError::Invalid(m) => format!("invalid: {m}"),
    })
}

/// Written straight into a string (`Value`'s `Display` goes through `fmt` a piece at a time).
fn to_json(object: &Object) -> Result<String> {
    serde_json::to_string(object).map_err(|e| Error::Graph(format!("unserializable object: {e}")))
}

fn parse(json: &str) -> Result<Object> {
    serde_json::from_str(json).map_err(|e| Error::Graph(format!("host returned bad JSON: {e}")))
}

/// Which parts of each object [`Pages`] builds; what is left out is read past, never
/// allocated (a record's `_rawData` is most of its bytes).
#[derive(Clone, Copy, Default)]
struct Projection<'a> {
    /// Top-level properties built (every one when `None`).
    fields: Option<&'a [&'a str]>,
    /// When set, `_rawData` is built as its first entry's `rawData` with only these fields
    /// ([`pruned_raw_data`]), whether or not `fields` names it.
    raw: Option<&'a [&'a str]>,
}

impl Projection<'_> {
    fn builds(&self, key: &str) -> bool {
        self.fields.is_none_or(|f| f.contains(&key))
    }
}

/// `json`'s object as `projection` has it.
fn parse_projected(json: &str, projection: Projection) -> Result<Object> {
    projected(json, projection).map_err(|e| Error::Graph(format!("host returned bad JSON: {e}")))
}

fn projected(json: &str, projection: Projection) -> serde_json::Result<Object> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(json);
    let object = projection.deserialize(&mut de)?;
    de.end()?;
    Ok(object)
}

impl<'de> serde::de::DeserializeSeed<'de> for Projection<'_> {
    type Value = Object;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Object, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Projection<'_> {
    type Value = Object;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Object, A::Error> {
        let mut out = Object::new();
        while let Some(Key(key)) = map.next_key()? {
            match self.raw {
                Some(raw) if key == "_rawData" => {
                    let text: &serde_json::value::RawValue = map.next_value()?;
                    let value =
                        pruned_raw_data(text.get(), raw).map_err(serde::de::Error::custom)?;
                    out.insert(key.into_owned(), value);
                }
                _ if self.builds(&key) => {
                    out.insert(key.into_owned(), map.next_value()?);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// `_rawData` in the SDK's shape (`[{"name": …, "rawData": {…}}, …]`) as
/// `[{"rawData": {only fields}}]`: the first entry's record, which
/// [`crate::entity::raw_data`] reads, with only `fields` (those it has). Text of any
/// other shape is built whole, as it is.
fn pruned_raw_data(text: &str, fields: &[&str]) -> serde_json::Result<Value> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Entry<'a> {
        #[serde(borrow, rename = "rawData")]
        raw_data: Option<&'a RawValue>,
    }
    let Ok(entries) = serde_json::from_str::<Vec<Entry>>(text) else {
        return serde_json::from_str(text);
    };
    let Some(first) = entries.first() else {
        return Ok(Value::Array(Vec::new()));
    };
    let mut entry = Object::new();
    if let Some(record) = first.raw_data {
        let only = Projection {
            fields: Some(fields),
            raw: None,
        };
        let record = match projected(record.get(), only) {
            Ok(o) => Value::Object(o),
            // Not an object: kept whole.
            Err(_) => serde_json::from_str(record.get())?,
        };
        entry.insert("rawData".into(), record);
    }
    Ok(Value::Array(vec![Value::Object(entry)]))
}

/// A key borrowed from the text where it has no escapes (serde's `Cow` always copies).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(v.to_string().into()))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// An entity this run emitted, by `_key`.
pub fn find_entity(key: &str) -> Result<Option<Object>> {
    host::find_entity(key)
        .map_err(graph_error)?
        .map(|json| parse(&json))
        .transpose()
}

/// Whether any object of this run has this `_key`.
pub fn has_key(key: &str) -> bool {
    host::has_key(key)
}

/// Every entity of `entity_type` this run emitted, fetched from the host a page at a time.
pub fn entities_of_type(entity_type: &str) -> Pages<'static> {
    Pages::new(entity_type, host::list_entities)
}

/// An object (entity or relationship) of this instance's graph as the previous run left
/// it, by `_key`: what a connector re-emits instead of fetching it again. On a first run
/// the previous graph is empty.
pub fn previous_object(key: &str) -> Result<Option<Object>> {
    host::previous_object(key)
        .map_err(graph_error)?
        .map(|json| parse(&json))
        .transpose()
}

/// Every object of `type_name` (entities or relationships) in the previous run's graph.
pub fn previous_of_type(type_name: &str) -> Pages<'static> {
    Pages::new(type_name, host::list_previous)
}

type PageFn = fn(&str, u32, u32) -> std::result::Result<wit::EntityPage, wit::GraphError>;

/// Objects of one `_type`, fetched from the host a page at a time.
pub struct Pages<'a> {
    type_name: String,
    fetch: PageFn,
    page: std::vec::IntoIter<String>,
    next: Option<u32>,
    projection: Projection<'a>,
}

impl<'a> Pages<'a> {
    fn new(type_name: &str, fetch: PageFn) -> Self {
        Pages {
            type_name: type_name.to_string(),
            fetch,
            page: Vec::new().into_iter(),
            next: Some(0),
            projection: Projection::default(),
        }
    }

    /// Each object with only these top-level properties (those it has): a step that
    /// reads a few fields of every entity does not build their `_rawData`.
    pub fn only(mut self, fields: &'a [&'a str]) -> Self {
        self.projection.fields = Some(fields);
        self
    }

    /// Each object's `_rawData` with only these fields of the provider's record (the one
    /// [`crate::entity::raw_data`] reads; other entries left out), kept whatever
    /// [`Pages::only`] names: a step that reads a field or two of every record does not
    /// build the rest of it.
    pub fn raw_fields(mut self, fields: &'a [&'a str]) -> Self {
        self.projection.raw = Some(fields);
        self
    }
}

impl Iterator for Pages<'_> {
    type Item = Result<Object>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(json) = self.page.next() {
                return Some(match self.projection {
                    Projection {
                        fields: None,
                        raw: None,
                    } => parse(&json),
                    projection => parse_projected(&json, projection),
                });
            }
            let cursor = self.next?;
            match (self.fetch)(&self.type_name, cursor, BATCH as u32) {
                Ok(page) => {
                    self.page = page.entities.into_iter();
                    self.next = page.next;
                }
                Err(e) => {
                    self.next = None;
                    return Some(Err(graph_error(e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use serde_json::json;

    fn object(key: &str) -> Object {
        json!({"_key": key, "_type": "t", "_class": "Device"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_hash_collision_drops_nothing() {
        testing::reset();
        let mut out = Emitter::new();
        let mut seen = Repeats::new();
        // Another key's hash already noted: the host, which never saw "b", decides.
        let hash = std::hash::BuildHasher::hash_one(&seen.hasher, "b");
        seen.hashes.insert(hash);
        assert!(!seen.seen("b", &mut out).unwrap());
        // Once emitted, a repeat is found.
        assert!(!seen.seen("k7", &mut out).unwrap());
        out.entity(object("k7")).unwrap();
        assert!(seen.seen("k7", &mut out).unwrap());
    }

    #[test]
    fn one_key_repeated_ten_thousand_times_is_emitted_once() {
        testing::reset();
        let mut out = Emitter::new();
        let mut seen = Repeats::new();
        for i in 0..10_000 {
            let key = if i % 2 == 0 { "same" } else { "other" };
            if !seen.seen(key, &mut out).unwrap() {
                out.entity(object(key)).unwrap();
            }
        }
        out.flush().unwrap();
        assert_eq!((out.accepted, out.rejected.len()), (2, 0));
        assert_eq!(testing::entities().len(), 2);
    }

    #[test]
    fn only_builds_the_named_fields_and_still_rejects_bad_json() {
        let json = r#"{"_key":"k","user.id":7,"_rawData":[{"rawData":{"deep":[1,{"x":"y"}]}}],"we\u0069rd":1}"#;
        let o = parse_projected(json, only(&["_key", "user.id", "weird", "absent"])).unwrap();
        assert_eq!(
            serde_json::Value::Object(o),
            json!({"_key": "k", "user.id": 7, "weird": 1})
        );
        for bad in [r#"{"_key":"k""#, r#"{"_key":"k"} x"#, "[1]", r#"{"a":tru}"#] {
            assert!(
                matches!(parse_projected(bad, only(&["_key"])), Err(Error::Graph(_))),
                "{bad}"
            );
        }
    }

    fn only(fields: &'static [&'static str]) -> Projection<'static> {
        Projection {
            fields: Some(fields),
            raw: None,
        }
    }

    fn raw_only(
        fields: Option<&'static [&'static str]>,
        raw: &'static [&'static str],
    ) -> Projection<'static> {
        Projection {
            fields,
            raw: Some(raw),
        }
    }

    #[test]
    fn raw_fields_build_the_named_fields_of_the_first_record_only() {
        let json = r#"{"_key":"k","n":1,"_rawData":[{"name":"default","rawData":{"site_id":"s1","big":{"x":[1,2]},"o\u0072g":"o"}},{"name":"other","rawData":{"site_id":"s2"}}]}"#;
        let o = parse_projected(
            json,
            raw_only(Some(&["_key"]), &["site_id", "org", "absent"]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(o.clone()),
            json!({"_key": "k", "_rawData": [{"rawData": {"site_id": "s1", "org": "o"}}]})
        );
        let site = crate::entity::raw_data(&o).and_then(|r| r.get("site_id"));
        assert_eq!(site, Some(&json!("s1")));
        // Without `only`, every top-level property is built.
        let all = parse_projected(json, raw_only(None, &["site_id"])).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["_key", "_rawData", "n"]);
        assert_eq!(all["_rawData"], json!([{"rawData": {"site_id": "s1"}}]));
    }

    #[test]
    fn raw_data_of_another_shape_is_built_whole_and_bad_json_still_fails() {
        let cases = [
            (r#"[1,2]"#, json!([1, 2])),
            (r#"{"a":1}"#, json!({"a": 1})),
            (r#""text""#, json!("text")),
            (
                r#"[{"rawData":[1,{"a":2}]}]"#,
                json!([{"rawData": [1, {"a": 2}]}]),
            ),
            (r#"[{"rawData":1,"rawData":2}]"#, json!([{"rawData": 2}])),
            ("[]", json!([])),
            (r#"[{"name":"x"}]"#, json!([{}])),
        ];
        for (raw, want) in cases {
            let json = format!(r#"{{"_key":"k","_rawData":{raw}}}"#);
            let o = parse_projected(&json, raw_only(None, &["a"])).unwrap();
            assert_eq!(o["_rawData"], want, "{raw}");
        }
        for bad in [
            r#"{"_key":"k","_rawData":[{"rawData":{"a":tru}}]}"#,
            r#"{"_key":"k","_rawData":[{"rawData":{"a":"\ud800"}}]}"#,
            r#"{"_key":"k","_rawData":[1"#,
        ] {
            let got = parse_projected(bad, raw_only(Some(&["_key"]), &["a"]));
            assert!(matches!(got, Err(Error::Graph(_))), "{bad}");
        }
    }

    #[test]
    fn a_refused_key_repeated_is_skipped_not_sent_again() {
        testing::reset();
        testing::refuse("bad", "breaks the data model");
        let mut out = Emitter::new();
        let mut seen = Repeats::new();
        for _ in 0..3 {
            if !seen.seen("bad", &mut out).unwrap() {
                out.entity(object("bad")).unwrap();
            }
        }
        out.flush().unwrap();
        assert_eq!(testing::rejected().len(), 1, "{:?}", testing::rejected());
    }
}
