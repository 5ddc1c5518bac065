//! A few fields of one type's stored entities, carried from the step that emits them to
//! the later steps of the run that read them.
//!
//! Reading entities back through the host ([`graph::entities_of_type`]) hands over each
//! one whole, `_rawData` and all, and the guest parses past what it does not want: for a
//! device of a few KiB read for its id, that is most of what a later step costs. The
//! emitting step instead keeps the fields later steps read, of the entities the host
//! stored, in the run's `kv` store ([`Carry`]), and [`stored`] reads them from there.
//! When the store refuses them (its bounds: 4 MiB a value, 16 MiB a run) or the step did
//! not finish, [`stored`] reads the entities back as before: the same objects, at the
//! old cost.
//!
//! It holds only when one step emits every entity of the type, which carries them all.
//! The carried copy is read only where the policy lets the run read the type back
//! (`graph:Read`): a step that could not read the entities does not get them this way.

use crate::entity::Object;
use crate::error::{Error, Result};
use crate::{graph, kv, log};
use serde::{Deserialize, Serialize};

/// A chunk is written once it holds this many bytes: a later step holds one at a time.
const CHUNK_BYTES: usize = 64 << 10;

/// Says that a type's entities were carried whole, and in how many chunks.
#[derive(Serialize, Deserialize)]
struct Marker {
    fields: Vec<String>,
    chunks: u32,
}

fn marker_key(entity_type: &str) -> String {
    format!("corral-sdk/carry/{entity_type}")
}

fn chunk_key(entity_type: &str, chunk: u32) -> String {
    format!("corral-sdk/carry/{entity_type}/{chunk}")
}

/// Keeps `fields` of each stored entity of a type, in emission order, in chunks of the
/// run's `kv` store. Give it only entities the host stored ([`graph::Emitter::entities_now`]),
/// and call [`Carry::finish`] once the step has emitted them all.
pub struct Carry {
    entity_type: String,
    fields: &'static [&'static str],
    /// The chunk being filled: a JSON array without its closing bracket.
    chunk: Vec<u8>,
    written: u32,
    /// Why the store refused a chunk: nothing more is kept.
    refused: Option<String>,
    /// The marker was written: the chunks are for later steps.
    finished: bool,
}

impl Carry {
    pub fn new(entity_type: &str, fields: &'static [&'static str]) -> Carry {
        // A step run again starts over.
        kv::delete(&marker_key(entity_type));
        Carry {
            entity_type: entity_type.to_string(),
            fields,
            chunk: Vec::new(),
            written: 0,
            refused: None,
            finished: false,
        }
    }

    /// Keeps `entity`'s fields (those it has), if it is of the carried type.
    pub fn add(&mut self, entity: &Object) {
        let of_type = entity.get("_type").and_then(serde_json::Value::as_str);
        if self.refused.is_some() || of_type != Some(self.entity_type.as_str()) {
            return;
        }
        // Written from borrowed values, in the fields' order: nothing is copied but
        // into the chunk.
        let kept: Vec<(&str, &serde_json::Value)> = self
            .fields
            .iter()
            .filter_map(|f| Some((*f, entity.get(*f)?)))
            .collect();
        let kept = Kept(&kept);
        self.chunk
            .push(if self.chunk.is_empty() { b'[' } else { b',' });
        if let Err(e) = serde_json::to_writer(&mut self.chunk, &kept) {
            self.refuse(e.to_string());
            return;
        }
        if self.chunk.len() >= CHUNK_BYTES {
            self.write_chunk();
        }
    }

    /// Writes what is left and the marker that lets [`stored`] read them.
    pub fn finish(mut self) {
        if !self.chunk.is_empty() {
            self.write_chunk();
        }
        if self.refused.is_none() {
            let marker = Marker {
                fields: self.fields.iter().map(|f| f.to_string()).collect(),
                chunks: self.written,
            };
            match kv::set_json(&marker_key(&self.entity_type), &marker) {
                Ok(()) => self.finished = true,
                Err(e) => self.refuse(e.to_string()),
            }
        }
    }

    /// Gives up keeping (the step needs the store's room for something else): what was
    /// written is deleted, and later steps read the entities back.
    pub fn abandon(mut self, reason: &str) {
        if self.refused.is_none() {
            self.refuse(reason.to_string());
        }
    }

    fn write_chunk(&mut self) {
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.push(b']');
        match kv::set(&chunk_key(&self.entity_type, self.written), &chunk) {
            Ok(()) => self.written += 1,
            Err(e) => self.refuse(e.to_string()),
        }
    }

    fn delete_chunks(&mut self) {
        for chunk in 0..self.written {
            kv::delete(&chunk_key(&self.entity_type, chunk));
        }
        self.written = 0;
        self.chunk = Vec::new();
    }

    /// Gives up keeping: what was written is deleted (later steps read the entities
    /// back), and the step says why.
    fn refuse(&mut self, reason: String) {
        self.delete_chunks();
        log::warn(
            "the stored entities' fields are not carried; later steps read them back",
            &[("type", &self.entity_type), ("reason", &reason)],
        );
        self.refused = Some(reason);
    }
}

impl Drop for Carry {
    /// A step that fails or returns before [`Carry::finish`] leaves no chunks behind to
    /// take the store's room from the steps that still run.
    fn drop(&mut self) {
        if !self.finished {
            self.delete_chunks();
        }
    }
}

/// Fields and values written as one JSON object.
struct Kept<'a>(&'a [(&'a str, &'a serde_json::Value)]);

impl Serialize for Kept<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Every stored entity of `entity_type`, in emission order, with only `fields` (those it
/// has): from what its step carried when that holds `fields` and the policy lets the run
/// read the type, else read back from the host ([`graph::Pages::only`], which fails as
/// before where reading is denied). The objects are partial: read them, never emit them.
pub fn stored<'a>(entity_type: &str, fields: &'a [&'a str]) -> Result<Stored<'a>> {
    let marker: Option<Marker> = kv::get_json(&marker_key(entity_type))?;
    Ok(match marker {
        Some(m)
            if fields.iter().all(|f| m.fields.iter().any(|k| k == f))
                && graph::may_read(entity_type) =>
        {
            Stored::Carried(Chunks {
                entity_type: entity_type.to_string(),
                fields,
                next: 0,
                chunks: m.chunks,
                chunk: Vec::new().into_iter(),
            })
        }
        _ => Stored::ReadBack(graph::entities_of_type(entity_type).only(fields)),
    })
}

/// The objects [`stored`] gives.
pub enum Stored<'a> {
    Carried(Chunks<'a>),
    ReadBack(graph::Pages<'a>),
}

impl Iterator for Stored<'_> {
    type Item = Result<Object>;

    fn next(&mut self) -> Option<Result<Object>> {
        match self {
            Stored::Carried(c) => c.next(),
            Stored::ReadBack(p) => p.next(),
        }
    }
}

/// The carried objects, read a chunk at a time.
pub struct Chunks<'a> {
    entity_type: String,
    fields: &'a [&'a str],
    next: u32,
    chunks: u32,
    chunk: std::vec::IntoIter<Object>,
}

impl Iterator for Chunks<'_> {
    type Item = Result<Object>;

    fn next(&mut self) -> Option<Result<Object>> {
        loop {
            if let Some(mut object) = self.chunk.next() {
                object.retain(|k, _| self.fields.contains(&k.as_str()));
                return Some(Ok(object));
            }
            if self.next >= self.chunks {
                return None;
            }
            let key = chunk_key(&self.entity_type, self.next);
            self.next += 1;
            match kv::get_json::<Vec<Object>>(&key) {
                Ok(Some(objects)) => self.chunk = objects.into_iter(),
                Ok(None) => {
                    self.next = self.chunks;
                    return Some(Err(Error::Kv(format!("kv {key}: the chunk is gone"))));
                }
                Err(e) => {
                    self.next = self.chunks;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing;
    use serde_json::{Value, json};

    const FIELDS: &[&str] = &["_key", "id", "user.id"];

    fn device(i: usize, filler: usize) -> Object {
        let mut o = json!({
            "_key": format!("d{i}"), "_type": "acme_device", "_class": "Device",
            "id": format!("d{i}"), "name": "x".repeat(filler),
        });
        if i.is_multiple_of(2) {
            o["user.id"] = json!(i);
        }
        o.as_object().unwrap().clone()
    }

    /// Emits `n` devices through a carry; the host refuses `refused`.
    fn emit(n: usize, filler: usize, refused: &[usize]) {
        for i in refused {
            testing::refuse(&format!("d{i}"), "breaks the data model");
        }
        let mut out = graph::Emitter::new();
        let mut carry = Carry::new("acme_device", FIELDS);
        let devices: Vec<Object> = (0..n).map(|i| device(i, filler)).collect();
        for page in devices.chunks(100) {
            let stored = out.entities_now(page).unwrap();
            for (d, ok) in page.iter().zip(stored) {
                if ok {
                    carry.add(d);
                }
            }
        }
        carry.finish();
    }

    /// A carry of `n` devices, not finished.
    fn carrying(n: usize) -> Carry {
        let mut carry = Carry::new("acme_device", FIELDS);
        for i in 0..n {
            carry.add(&device(i, 0));
        }
        carry
    }

    fn read(fields: &[&str]) -> Vec<Value> {
        stored("acme_device", fields)
            .unwrap()
            .map(|o| Value::Object(o.unwrap()))
            .collect()
    }

    fn read_back(fields: &[&str]) -> Vec<Value> {
        graph::entities_of_type("acme_device")
            .only(fields)
            .map(|o| Value::Object(o.unwrap()))
            .collect()
    }

    #[test]
    fn what_is_carried_is_what_reading_back_gives_refused_entities_left_out() {
        testing::reset();
        // Enough for several chunks; the host refuses three, one of them the first.
        emit(6_000, 40, &[0, 7, 5_999]);
        assert!(kv::get("corral-sdk/carry/acme_device/2").is_some());
        for fields in [&["id"][..], FIELDS, &["user.id"]] {
            let carried = read(fields);
            assert_eq!(carried.len(), 5_997);
            assert_eq!(carried, read_back(fields), "{fields:?}");
        }
        assert_eq!(read(&["id"])[0], json!({"id": "d1"}));
        assert_eq!(
            read(FIELDS)[1],
            json!({"_key": "d2", "id": "d2", "user.id": 2})
        );
    }

    #[test]
    fn fields_not_carried_are_read_back() {
        testing::reset();
        emit(3, 0, &[]);
        // `name` was not kept: the entities are read back whole for it.
        assert!(matches!(
            stored("acme_device", &["id", "name"]).unwrap(),
            Stored::ReadBack(_)
        ));
        assert_eq!(read(&["id", "name"]), read_back(&["id", "name"]));
    }

    #[test]
    fn a_store_that_refuses_a_chunk_leaves_nothing_and_the_entities_are_read_back() {
        testing::reset();
        // Room for the first chunks, not for all of them.
        testing::kv_capacity(2 * CHUNK_BYTES);
        emit(5_000, 60, &[]);
        assert!(kv::get("corral-sdk/carry/acme_device/0").is_none());
        assert!(kv::get("corral-sdk/carry/acme_device").is_none());
        assert!(matches!(
            stored("acme_device", &["id"]).unwrap(),
            Stored::ReadBack(_)
        ));
        assert_eq!(read(&["id"]).len(), 5_000);
        let logged = crate::log::take_captured();
        let warned: Vec<_> = logged
            .iter()
            .filter(|l| l.level == "warn" && l.message.contains("are not carried"))
            .collect();
        assert_eq!(warned.len(), 1, "{logged:?}");
        assert_eq!(warned[0].field("type"), Some("acme_device"));
        assert!(
            warned[0].field("reason").unwrap().contains("capacity"),
            "{:?}",
            warned[0]
        );
    }

    #[test]
    fn an_unfinished_carry_is_not_read_and_leaves_no_chunk() {
        testing::reset();
        let carry = carrying(3_000);
        assert!(kv::get("corral-sdk/carry/acme_device/0").is_some());
        drop(carry);
        assert!(kv::get("corral-sdk/carry/acme_device/0").is_none());
        let mut out = graph::Emitter::new();
        out.entity(device(1, 0)).unwrap();
        out.flush().unwrap();
        assert!(matches!(
            stored("acme_device", &["id"]).unwrap(),
            Stored::ReadBack(_)
        ));
    }

    /// The step run again within the run: until it finishes, the last carry is not read.
    #[test]
    fn a_carry_started_again_hides_the_one_before() {
        testing::reset();
        emit(3, 0, &[]);
        assert!(matches!(
            stored("acme_device", &["id"]).unwrap(),
            Stored::Carried(_)
        ));
        let again = Carry::new("acme_device", FIELDS);
        assert!(matches!(
            stored("acme_device", &["id"]).unwrap(),
            Stored::ReadBack(_)
        ));
        again.finish();
        assert!(read(&["id"]).is_empty());
    }

    #[test]
    fn an_entity_of_another_type_is_not_carried() {
        testing::reset();
        let mut carry = Carry::new("acme_device", FIELDS);
        let mut other = device(1, 0);
        other.insert("_type".into(), json!("acme_app"));
        carry.add(&other);
        carry.add(&device(2, 0));
        carry.finish();
        assert_eq!(read(&["id"]), [json!({"id": "d2"})]);
    }

    /// Where the policy denies reading the type back, the carried copy is not read:
    /// the step fails on the denial, as it did before there was one.
    #[test]
    fn a_type_the_policy_does_not_let_the_run_read_is_not_read_from_the_carry() {
        testing::reset();
        emit(3, 0, &[]);
        testing::deny_read("acme_device");
        let got: Vec<Result<Object>> = stored("acme_device", &["id"]).unwrap().collect();
        assert!(
            matches!(&got[..], [Err(Error::Graph(m))] if m.contains("denied")),
            "{got:?}"
        );
    }

    #[test]
    fn an_abandoned_carry_leaves_nothing() {
        testing::reset();
        let carry = carrying(3_000);
        carry.abandon("the store's room is needed");
        assert!(kv::get("corral-sdk/carry/acme_device/0").is_none());
        assert!(kv::get("corral-sdk/carry/acme_device").is_none());
        let logged = crate::log::take_captured();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(
            logged[0].field("reason"),
            Some("the store's room is needed")
        );
    }

    #[test]
    fn a_missing_chunk_is_an_error_not_a_shorter_list() {
        testing::reset();
        emit(2_500, 40, &[]);
        kv::delete("corral-sdk/carry/acme_device/1");
        let results: Vec<Result<Object>> = stored("acme_device", &["id"]).unwrap().collect();
        let last = results.last().unwrap();
        assert!(
            matches!(last, Err(Error::Kv(m)) if m.contains("chunk is gone")),
            "{last:?}"
        );
    }
}
