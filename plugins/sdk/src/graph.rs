//! Emitting to and reading back from the run's graph through the host.

use crate::bindings::corral::integration::graph as wit;
use crate::entity::Object;
use crate::error::{Error, Result};
use crate::projection::{Projection, parse_projected};
// The host's calls: the WIT imports in a component, the fake host natively.
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::graph as host;
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

    /// Sends `entities` now, after everything buffered, and says of each whether the
    /// host stored it: a step that keeps something of what it stored ([`crate::carry`])
    /// keeps it of these alone. The host's rejections are told apart by their index in
    /// the batch, never by key.
    pub fn entities_now(&mut self, entities: &[Object]) -> Result<Vec<bool>> {
        self.flush()?;
        let mut stored = vec![true; entities.len()];
        for (n, chunk) in entities.chunks(BATCH).enumerate() {
            let batch = chunk.iter().map(to_json).collect::<Result<Vec<_>>>()?;
            self.failed = true;
            let report = host::emit_entities(&batch).map_err(graph_error)?;
            self.failed = false;
            for r in &report.rejected {
                let at = (r.index as usize).checked_add(n * BATCH);
                if let Some(slot) = at.and_then(|i| stored.get_mut(i)) {
                    *slot = false;
                }
            }
            self.record(report);
        }
        Ok(stored)
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

/// Whether the policy lets this run read its entities of `entity_type` back (`graph:Read`):
/// asks the host for one of them.
pub fn may_read(entity_type: &str) -> bool {
    host::list_entities(entity_type, 0, 1).is_ok()
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
    /// reads a few fields of every entity does not build their `_rawData`. The objects
    /// are partial: read them, never emit them again.
    pub fn only(mut self, fields: &'a [&'a str]) -> Self {
        self.projection.fields = Some(fields);
        self
    }

    /// Each object's `_rawData` with only these fields of the provider's record (the
    /// first entry's `rawData`, which [`crate::entity::raw_data`] reads; a `_rawData` of
    /// another shape is built whole), kept whatever [`Pages::only`] names: a step that
    /// reads a field or two of every record does not build the rest of it. The objects
    /// are partial: read them, never emit them again.
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

    /// Past a batch, a rejection's index counts from its own batch: each refusal is
    /// put on its own entity, and what was buffered goes first.
    #[test]
    fn entities_sent_now_say_which_were_stored() {
        testing::reset();
        for key in ["e0", "e501", "e1199"] {
            testing::refuse(key, "breaks the data model");
        }
        let mut out = Emitter::new();
        out.entity(object("buffered")).unwrap();
        let batch: Vec<Object> = (0..1_200).map(|i| object(&format!("e{i}"))).collect();
        let stored = out.entities_now(&batch).unwrap();
        let refused: Vec<usize> = (0..stored.len()).filter(|i| !stored[*i]).collect();
        assert_eq!(refused, [0, 501, 1_199]);
        assert_eq!((out.accepted, out.rejected.len()), (1_198, 3));
        let keys: Vec<String> = testing::entities()
            .iter()
            .map(|e| e["_key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!((keys.len(), keys[0].as_str()), (1_198, "buffered"));
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
