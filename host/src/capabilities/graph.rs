//! The `graph` import: the run's key space and stored objects, with every emit checked
//! against the grant (`graph:EmitEntity` / `graph:EmitRelationship` on `type:<_type>`)
//! and the data-model rules, and every read against `graph:Read`.

use super::{Event, RunStats, StepCtx};
use crate::bindings::graph::{EmitReport, EntityPage, GraphError, Host, Rejection};
use crate::datamodel::{self, Header};
use crate::lock::LockExt;
use crate::policy::Context;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// A step's entities and relationships, as copies.
pub type StepObjects = (Vec<Map<String, Value>>, Vec<Map<String, Value>>);

/// One stored entity or relationship.
#[derive(Debug, Clone)]
pub struct Stored {
    pub step: String,
    pub type_name: String,
    pub key: String,
    pub object: Map<String, Value>,
}

/// Everything a run has emitted. One key space across entities and relationships.
#[derive(Default)]
pub struct GraphStore {
    pub entities: Vec<Stored>,
    pub relationships: Vec<Stored>,
    entity_index: HashMap<String, usize>,
    by_type: HashMap<String, Vec<usize>>,
    keys: HashSet<String>,
    /// Bytes of emitted JSON held (`maxGraphBytes`).
    bytes: u64,
    /// Objects that hold a secret value, redacted when the run ends (see
    /// [`GraphStore::redact_secrets`]).
    tainted: HashSet<(Kind, usize)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Entity,
    Relationship,
}

impl GraphStore {
    pub fn entity(&self, key: &str) -> Option<&Stored> {
        self.entity_index.get(key).map(|&i| &self.entities[i])
    }

    /// Replaces every secret value in the objects that held one. Called when the run
    /// ends, before anything leaves the host: while it runs, the guest reads back
    /// exactly what it emitted, so redaction cannot tell it which guess was a secret.
    pub fn redact_secrets(&mut self, secrets: &crate::secrets::Secrets) {
        for (kind, i) in std::mem::take(&mut self.tainted) {
            let list = match kind {
                Kind::Entity => &mut self.entities,
                Kind::Relationship => &mut self.relationships,
            };
            if let Some(stored) = list.get_mut(i) {
                stored.key = secrets.redact(&stored.key);
                stored.type_name = secrets.redact(&stored.type_name);
                let object = std::mem::take(&mut stored.object);
                stored.object = redact_map(object, secrets);
            }
        }
    }

    /// Copies of the objects `step` emitted (entities, relationships), secrets redacted:
    /// for uploads that start before the run ends.
    pub fn step_objects(&self, step: &str, secrets: &crate::secrets::Secrets) -> StepObjects {
        let copy = |kind: Kind, list: &[Stored]| {
            list.iter()
                .enumerate()
                .filter(|(_, o)| o.step == step)
                .map(|(i, o)| match self.tainted.contains(&(kind, i)) {
                    true => redact_map(o.object.clone(), secrets),
                    false => o.object.clone(),
                })
                .collect()
        };
        (
            copy(Kind::Entity, &self.entities),
            copy(Kind::Relationship, &self.relationships),
        )
    }

    fn insert(&mut self, kind: Kind, stored: Stored, bytes: u64, tainted: bool) {
        self.bytes = self.bytes.saturating_add(bytes);
        if tainted {
            let i = match kind {
                Kind::Entity => self.entities.len(),
                Kind::Relationship => self.relationships.len(),
            };
            self.tainted.insert((kind, i));
        }
        self.keys.insert(stored.key.clone());
        match kind {
            Kind::Entity => {
                let i = self.entities.len();
                self.entity_index.insert(stored.key.clone(), i);
                self.by_type
                    .entry(stored.type_name.clone())
                    .or_default()
                    .push(i);
                self.entities.push(stored);
            }
            Kind::Relationship => self.relationships.push(stored),
        }
    }
}

fn redact_map(object: Map<String, Value>, secrets: &crate::secrets::Secrets) -> Map<String, Value> {
    object
        .into_iter()
        .map(|(k, v)| (secrets.redact(&k), redact_value(v, secrets)))
        .collect()
}

fn redact_value(v: Value, secrets: &crate::secrets::Secrets) -> Value {
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

impl StepCtx {
    fn emit(&mut self, kind: Kind, items: Vec<String>) -> Result<EmitReport, GraphError> {
        let run = self.run.clone();
        let action = match kind {
            Kind::Entity => "graph:EmitEntity",
            Kind::Relationship => "graph:EmitRelationship",
        };
        let mut report = EmitReport {
            accepted: 0,
            rejected: Vec::new(),
        };
        for (index, json) in items.iter().enumerate() {
            match self.admit(kind, action, json) {
                Ok(()) => report.accepted += 1,
                Err(Refusal {
                    key,
                    type_name,
                    reason,
                    limit,
                }) => {
                    // Whatever it would have carried is partial this run: nothing of that
                    // type is deleted downstream for its absence.
                    run.stats
                        .mark_partial(&self.step, type_name, &run.declared_types);
                    // What the host keeps is scrubbed; what goes back to the guest is its
                    // own text, unchanged, so a rejection never says which guess matched.
                    let event = Event {
                        step: self.step.clone(),
                        action: action.into(),
                        resource: run.secrets.redact(&key),
                        rule: run.secrets.redact(&reason),
                    };
                    run.log.host(
                        &run,
                        &self.step,
                        "warn",
                        &format!("{action} {} rejected: {}", event.resource, event.rule),
                    );
                    if limit {
                        // The rest of the batch (and whatever the step would emit next)
                        // is not stored either: every type of the step is partial.
                        run.stats
                            .mark_partial(&self.step, None, &run.declared_types);
                        RunStats::record(&run.stats.limit_hits, event);
                        return Err(GraphError::Limit(reason));
                    }
                    RunStats::record(&run.stats.rejections, event);
                    report.rejected.push(Rejection {
                        index: index as u32,
                        key,
                        reason,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Checks one object and stores it, or says why not.
    fn admit(&mut self, kind: Kind, action: &str, json: &str) -> Result<(), Refusal> {
        // A credential the guest got hold of anyway is redacted when the run ends.
        let tainted = !self.run.redactor.find(json.as_bytes()).is_empty();
        if tainted {
            self.run.log.host(
                &self.run,
                &self.step,
                "warn",
                "an emitted object holds a secret value; it is redacted from everything written",
            );
        }
        let (object, header) = datamodel::parse_object(json).map_err(|reason| Refusal {
            key: String::new(),
            type_name: None,
            reason,
            limit: false,
        })?;
        let refusal = |reason: String, limit: bool| Refusal {
            key: header.key.clone(),
            type_name: Some(header.type_name.clone()),
            reason,
            limit,
        };
        let fail = |reason: String| refusal(reason, false);
        let decision = self.run.grant.check(
            action,
            &format!("type:{}", header.type_name),
            &graph_context(&header),
        );
        if !decision.allowed {
            RunStats::record(
                &self.run.stats.denials,
                Event {
                    step: self.step.clone(),
                    action: action.into(),
                    resource: format!("type:{}", header.type_name),
                    rule: decision.rule.clone(),
                },
            );
            return Err(fail(format!(
                "{action} type:{} denied: {}",
                header.type_name, decision.rule
            )));
        }
        match kind {
            Kind::Entity => datamodel::check_entity(&object, &header).map_err(fail)?,
            Kind::Relationship => datamodel::check_relationship(&object, &header).map_err(fail)?,
        }
        check_raw_data(
            &object,
            json.len(),
            self.run.grant.limits.max_raw_data_bytes,
        )
        .map_err(fail)?;
        let mut graph = self.run.graph.locked();
        if graph.keys.contains(&header.key) {
            return Err(fail(format!("duplicate _key {:?}", header.key)));
        }
        let held = held_size(json);
        if let Some(reason) = over_budget(&graph, kind, held, &self.run.grant.limits) {
            return Err(refusal(reason, true));
        }
        if let Some(mapping) = object.get("_mapping") {
            check_mapping(mapping, &header, &self.run.mapped_types, &graph).map_err(fail)?;
        } else if kind == Kind::Relationship {
            for end in ["_fromEntityKey", "_toEntityKey"] {
                let k = object[end].as_str().unwrap_or_default();
                if graph.entity(k).is_none() {
                    return Err(fail(format!("{end} {k:?} names no entity of this run")));
                }
            }
        }
        graph.insert(
            kind,
            Stored {
                step: self.step.clone(),
                type_name: header.type_name,
                key: header.key,
                object,
            },
            held as u64,
            tainted,
        );
        Ok(())
    }

    fn check_read(&self, type_name: &str) -> Result<(), GraphError> {
        let decision = self.run.grant.check(
            "graph:Read",
            &format!("type:{type_name}"),
            &Context::default().with("graph:type", type_name),
        );
        if decision.allowed {
            return Ok(());
        }
        RunStats::record(
            &self.run.stats.denials,
            Event {
                step: self.step.clone(),
                action: "graph:Read".into(),
                resource: format!("type:{type_name}"),
                rule: decision.rule.clone(),
            },
        );
        Err(GraphError::Denied(format!(
            "graph:Read type:{type_name} denied: {}",
            decision.rule
        )))
    }
}

/// What an object costs once parsed: its JSON text plus a parsed value's size for each
/// value and key (counted by the separators that precede them). `[1,1,1,…]` is two
/// bytes of text per item but a 32-byte value in memory: `maxGraphBytes` counts the
/// latter.
fn held_size(json: &str) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    let values = json
        .bytes()
        .filter(|b| matches!(b, b',' | b':' | b'[' | b'{'))
        .count();
    json.len().saturating_add(values.saturating_mul(VALUE))
}

/// Why an object was not stored; `type_name` is its `_type` when it had a valid one.
struct Refusal {
    key: String,
    type_name: Option<String>,
    reason: String,
    limit: bool,
}

/// The run's counted limits on what its graph holds: entities, relationships, bytes.
fn over_budget(
    graph: &GraphStore,
    kind: Kind,
    bytes: usize,
    limits: &crate::policy::EffectiveLimits,
) -> Option<String> {
    let (count, max, name) = match kind {
        Kind::Entity => (graph.entities.len(), limits.max_entities, "maxEntities"),
        Kind::Relationship => (
            graph.relationships.len(),
            limits.max_relationships,
            "maxRelationships",
        ),
    };
    if count as u64 >= max {
        return Some(format!("{name} limit of {max} reached"));
    }
    let max_bytes = limits.max_graph_bytes;
    if graph.bytes.saturating_add(bytes as u64) > max_bytes {
        return Some(format!(
            "maxGraphBytes limit of {max_bytes} reached (the run's graph holds {} bytes)",
            graph.bytes
        ));
    }
    None
}

/// `_rawData` within `maxRawDataBytes` (measured only when the whole object is larger).
fn check_raw_data(object: &Map<String, Value>, json_len: usize, max: u64) -> Result<(), String> {
    let Some(raw) = object.get("_rawData") else {
        return Ok(());
    };
    if json_len as u64 <= max {
        return Ok(());
    }
    let size = serde_json::to_vec(raw)
        .map(|v| v.len())
        .unwrap_or(usize::MAX) as u64;
    if size > max {
        return Err(format!(
            "_rawData is {size} bytes; maxRawDataBytes is {max}"
        ));
    }
    Ok(())
}

/// A mapped relationship: a type the manifest declares mapped, a source in this run,
/// and a target described by a class.
fn check_mapping(
    mapping: &Value,
    header: &Header,
    declared: &std::collections::BTreeSet<String>,
    graph: &GraphStore,
) -> Result<(), String> {
    if !declared.contains(&header.type_name) {
        return Err(format!(
            "{} is not declared as a mapped relationship in the manifest",
            header.type_name
        ));
    }
    let source = mapping
        .get("sourceEntityKey")
        .and_then(Value::as_str)
        .unwrap_or_default();
    datamodel::check_mapping_shape(mapping)?;
    if graph.entity(source).is_none() {
        return Err(format!(
            "_mapping.sourceEntityKey {source:?} names no entity of this run"
        ));
    }
    Ok(())
}

fn graph_context(h: &Header) -> Context {
    Context::default()
        .with("graph:type", h.type_name.clone())
        .with(
            "graph:class",
            h.classes.first().cloned().unwrap_or_default(),
        )
}

impl Host for StepCtx {
    fn emit_entities(
        &mut self,
        entities: Vec<String>,
    ) -> wasmtime::Result<Result<EmitReport, GraphError>> {
        Ok(self.emit(Kind::Entity, entities))
    }

    fn emit_relationships(
        &mut self,
        relationships: Vec<String>,
    ) -> wasmtime::Result<Result<EmitReport, GraphError>> {
        Ok(self.emit(Kind::Relationship, relationships))
    }

    fn find_entity(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, GraphError>> {
        let found = {
            let graph = self.run.graph.locked();
            graph.entity(&key).map(|s| {
                (
                    s.type_name.clone(),
                    Value::Object(s.object.clone()).to_string(),
                )
            })
        };
        Ok(match found {
            None => Ok(None),
            Some((type_name, json)) => self.check_read(&type_name).map(|()| Some(json)),
        })
    }

    fn has_key(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.run.graph.locked().keys.contains(&key))
    }

    fn list_entities(
        &mut self,
        entity_type: String,
        cursor: u32,
        limit: u32,
    ) -> wasmtime::Result<Result<EntityPage, GraphError>> {
        // No `_type` is longer: a longer one has no entities and needs no policy match.
        if corral_core::manifest::check_type_name(&entity_type).is_err() {
            return Ok(Ok(EntityPage {
                entities: Vec::new(),
                next: None,
            }));
        }
        if let Err(e) = self.check_read(&entity_type) {
            return Ok(Err(e));
        }
        let graph = self.run.graph.locked();
        let indices = graph
            .by_type
            .get(&entity_type)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let start = (cursor as usize).min(indices.len());
        let end = start
            .saturating_add(limit.clamp(1, 1000) as usize)
            .min(indices.len());
        let entities = indices[start..end]
            .iter()
            .map(|&i| Value::Object(graph.entities[i].object.clone()).to_string())
            .collect();
        let next = (end < indices.len()).then_some(end as u32);
        Ok(Ok(EntityPage { entities, next }))
    }
}
