//! A sealed graph written out and read back whole: how a cluster worker hands a run's
//! graph to the coordinator. What is small (groups, counts) travels as [`GraphMeta`];
//! the objects follow as framed spool records, streamed, so neither side holds them.
//!
//! Records: `group (u32 LE) | length (u32 LE) | spool record` per object, in emit order.

use super::{GraphStore, Group, Kind, Slot, spool};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};

/// The longest record read back (an object the guest can emit is far smaller: the
/// per-call emit limits bound it).
const MAX_RECORD_BYTES: u32 = 256 << 20;
/// The most groups a graph may declare (a group is a (step, `_type`) pair).
const MAX_GROUPS: usize = 1 << 20;

/// What a graph holds besides its objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphMeta {
    pub groups: Vec<GroupMeta>,
    pub objects: u64,
    pub bytes: u64,
    pub redacted: usize,
    pub missing_required: BTreeMap<String, BTreeMap<String, usize>>,
}

/// A group as it travels: the `_type` as stored only. The `_type` as emitted is what the
/// guest reads by during its run, and may hold a secret value: it never leaves the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupMeta {
    pub kind: Kind,
    pub step: String,
    pub type_name: String,
}

impl GraphStore {
    pub fn meta(&self) -> GraphMeta {
        GraphMeta {
            groups: self
                .groups
                .iter()
                .map(|g| GroupMeta {
                    kind: g.kind,
                    step: g.step.clone(),
                    type_name: g.type_name.clone(),
                })
                .collect(),
            objects: self.slots.len() as u64,
            bytes: self.bytes,
            redacted: self.redacted,
            missing_required: self.missing_required.clone(),
        }
    }

    /// Writes every object as a framed record (after [`GraphStore::seal`]).
    pub fn write_records(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let Some(spool) = &self.spool else {
            return Ok(());
        };
        let mut reader = spool.reader()?;
        let mut record = Vec::new();
        for slot in &self.slots {
            let r = reader.record(slot.span())?;
            record.clear();
            record.extend_from_slice(r.hash);
            record.extend_from_slice(&(r.key.len() as u32).to_le_bytes());
            record.extend_from_slice(r.key.as_bytes());
            record.extend_from_slice(r.json);
            out.write_all(&slot.group.to_le_bytes())?;
            out.write_all(&(record.len() as u32).to_le_bytes())?;
            out.write_all(&record)?;
        }
        Ok(())
    }

    /// A sealed graph from `meta` and the records [`GraphStore::write_records`] wrote.
    /// The input is checked, not trusted: every record must parse, name a declared
    /// group, and the count must match `meta` with nothing after the last record.
    pub fn read_records(meta: GraphMeta, input: &mut impl Read) -> anyhow::Result<GraphStore> {
        anyhow::ensure!(
            meta.groups.len() <= MAX_GROUPS,
            "the graph declares {} groups (at most {MAX_GROUPS})",
            meta.groups.len()
        );
        let mut store = GraphStore {
            groups: meta
                .groups
                .into_iter()
                .map(|g| Group {
                    kind: g.kind,
                    step: g.step,
                    emitted_type: g.type_name.clone(),
                    type_name: g.type_name,
                    members: Vec::new(),
                })
                .collect(),
            bytes: meta.bytes,
            redacted: meta.redacted,
            missing_required: meta.missing_required,
            ..GraphStore::default()
        };
        let mut record = Vec::new();
        while let Some(group) = read_u32(input, true)? {
            let at = store.slots.len();
            anyhow::ensure!(
                (at as u64) < meta.objects,
                "the graph holds more objects than the {} it declares",
                meta.objects
            );
            let len = read_u32(input, false)?.unwrap_or_default();
            anyhow::ensure!(
                len <= MAX_RECORD_BYTES,
                "object {at}: a record of {len} bytes (at most {MAX_RECORD_BYTES})"
            );
            record.resize(len as usize, 0);
            input.read_exact(&mut record)?;
            store
                .add_record(group, &record)
                .map_err(|e| anyhow::anyhow!("object {at}: {e}"))?;
        }
        anyhow::ensure!(
            store.slots.len() as u64 == meta.objects,
            "the graph holds {} objects but declares {}",
            store.slots.len(),
            meta.objects
        );
        if let Some(s) = &mut store.spool {
            s.flush()?;
        }
        Ok(store)
    }

    fn add_record(&mut self, group: u32, record: &[u8]) -> anyhow::Result<()> {
        let parsed = spool::parse(record)?;
        let kind = self
            .groups
            .get(group as usize)
            .map(|g| g.kind)
            .ok_or_else(|| anyhow::anyhow!("names group {group}, which is not declared"))?;
        let spool = match &mut self.spool {
            Some(s) => s,
            None => self.spool.insert(spool::Spool::create()?),
        };
        let span = spool.append(parsed.hash, parsed.key, parsed.json)?;
        let index = u32::try_from(self.slots.len())?;
        self.groups[group as usize].members.push(index);
        self.slots.push(Slot {
            offset: span.offset,
            len: span.len,
            group,
        });
        match kind {
            Kind::Entity => self.entities += 1,
            Kind::Relationship => self.relationships += 1,
        }
        Ok(())
    }
}

/// A little-endian u32; `None` at a clean end of input where one is allowed.
fn read_u32(input: &mut impl Read, end_allowed: bool) -> io::Result<Option<u32>> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 && end_allowed => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(u32::from_le_bytes(buf)))
}

#[cfg(test)]
mod tests {
    use super::super::{Budget, NewObject};
    use super::*;
    use serde_json::{Map, Value, json};

    fn graph() -> GraphStore {
        let mut g = GraphStore::new(Budget::default());
        for i in 0..300 {
            let key = format!("device-{i}");
            let o: Map<String, Value> = serde_json::from_value(
                json!({"_key": key, "_type": "acme_device", "_class": ["Device"], "n": i}),
            )
            .unwrap();
            let step = if i % 2 == 0 { "devices" } else { "more" };
            g.insert(NewObject {
                kind: Kind::Entity,
                step,
                type_name: "acme_device",
                key: &key,
                stored: &o,
                raw_data: None,
                original: None,
            })
            .unwrap();
        }
        let r: Map<String, Value> = serde_json::from_value(
            json!({"_key": "a|has|b", "_type": "acme_has", "_class": "HAS",
                   "_fromEntityKey": "device-0", "_toEntityKey": "device-1"}),
        )
        .unwrap();
        g.insert(NewObject {
            kind: Kind::Relationship,
            step: "devices",
            type_name: "acme_has",
            key: "a|has|b",
            stored: &r,
            raw_data: None,
            original: None,
        })
        .unwrap();
        g.seal().unwrap();
        g
    }

    fn objects(g: &GraphStore) -> Vec<(String, String, String, Vec<u8>)> {
        let mut out = Vec::new();
        g.scan(|i| {
            out.push((
                i.group.step.clone(),
                i.group.type_name.clone(),
                i.key.to_string(),
                i.json.to_vec(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_graph_read_back_scans_as_the_one_written() {
        let g = graph();
        let mut bytes = Vec::new();
        g.write_records(&mut bytes).unwrap();
        let back = GraphStore::read_records(g.meta(), &mut bytes.as_slice()).unwrap();
        assert_eq!(objects(&back), objects(&g));
        assert_eq!((back.entity_count(), back.relationship_count()), (300, 1));
        assert_eq!(back.bytes(), g.bytes());
        let sizes: Vec<usize> = back.groups().iter().map(Group::len).collect();
        assert_eq!(sizes, vec![150, 150, 1]);
    }

    #[test]
    fn truncated_padded_or_misdirected_records_are_refused() {
        let g = graph();
        let mut bytes = Vec::new();
        g.write_records(&mut bytes).unwrap();
        let read = |b: &[u8]| GraphStore::read_records(g.meta(), &mut &b[..]).map(|_| ());
        let cut = read(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert!(cut.contains("failed to fill whole buffer"), "{cut}");
        let mut one_less = g.meta();
        one_less.objects -= 1;
        let extra = GraphStore::read_records(one_less, &mut bytes.as_slice())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            extra.to_string(),
            "the graph holds more objects than the 300 it declares"
        );
        let mut one_more = g.meta();
        one_more.objects += 1;
        let short = GraphStore::read_records(one_more, &mut bytes.as_slice())
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            short.to_string(),
            "the graph holds 301 objects but declares 302"
        );
        let mut wrong_group = bytes.clone();
        wrong_group[..4].copy_from_slice(&9u32.to_le_bytes());
        let e = read(&wrong_group).unwrap_err().to_string();
        assert_eq!(e, "object 0: names group 9, which is not declared");
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = read(&huge).unwrap_err().to_string();
        assert!(
            e.starts_with("object 0: a record of 4294967295 bytes"),
            "{e}"
        );
    }
}
