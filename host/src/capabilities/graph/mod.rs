//! The `graph` import: the run's key space and stored objects, with every emit checked
//! against the grant (`graph:EmitEntity` / `graph:EmitRelationship` on `type:<_type>`)
//! and the data-model rules, and every read against `graph:Read`. What is accepted is
//! kept by [`store`] (the index in memory) on a [`spool`] (the objects on disk).

use super::{Event, RunStats, StepCtx};
use crate::datamodel::{self, Header};
use crate::lock::LockExt;
use crate::policy::{Context, Decision};
use serde_json::{Map, Value};

mod previous;
mod spool;
mod store;
mod types;

pub use previous::{MAX_PAGE as MAX_PREVIOUS_PAGE, PreviousGraph};
pub use spool::dir as spool_dir;
pub use spool::set_dir as set_spool_dir;
pub use store::{
    Budget, GraphMeta, GraphStore, Group, Item, KeyIds, Kind, NewObject, Refused, StepObjects,
    Stored,
};
pub use types::{EmitReport, EntityPage, GraphError, Rejection};
use wasmtime::component::Linker;

/// A run's graph as the `graph` capability holds it: the store, and what the manifest
/// declares about types.
#[derive(Default)]
pub struct GraphCapability {
    pub store: std::sync::Mutex<GraphStore>,
    /// Relationship `_type`s the manifest declares as mapped (the only ones that may
    /// carry a `_mapping` instead of two ends in the run).
    pub mapped_types: std::collections::BTreeSet<String>,
    /// Every `_type` the manifest declares (rejections mark these partial by name).
    pub declared_types: std::collections::BTreeSet<String>,
    /// The instance's graph as its previous run left it, when the run has one.
    pub previous: Option<std::sync::Arc<dyn PreviousGraph>>,
    /// Whether the run has said that its previous graph reads as empty.
    pub previous_empty_logged: std::sync::atomic::AtomicBool,
}

impl GraphCapability {
    pub fn new(store: GraphStore) -> Self {
        GraphCapability {
            store: std::sync::Mutex::new(store),
            mapped_types: Default::default(),
            declared_types: Default::default(),
            previous: None,
            previous_empty_logged: Default::default(),
        }
    }
}

/// Emit decisions a step keeps, by (kind, `_type`, first class).
pub type EmitDecisions = std::collections::HashMap<(Kind, String, String), Decision>;

/// Distinct (kind, `_type`, class) decisions a step keeps; past them, each is evaluated.
const MAX_CACHED_DECISIONS: usize = 256;

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
                        .mark_partial(&self.step, type_name, &run.graph.declared_types);
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
                            .mark_partial(&self.step, None, &run.graph.declared_types);
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
        // Redaction walks the whole object; otherwise a canonical `_rawData` stays text.
        let parsed = if tainted {
            datamodel::parse_object(json).map(|(object, header)| (object, None, header))
        } else {
            datamodel::parse_object_lazy(json)
        };
        let (object, raw_data, header) = parsed.map_err(|reason| Refusal {
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
        let decision = self.emit_decision(kind, action, &header);
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
            raw_data,
            json.len(),
            self.run.grant.limits.max_raw_data_bytes,
        )
        .map_err(fail)?;
        let mut graph = self.run.graph.store.locked();
        if graph.contains_key(&header.key) {
            return Err(fail(format!("duplicate _key {:?}", header.key)));
        }
        if let Some(mapping) = object.get("_mapping") {
            check_mapping(mapping, &header, &self.run.graph.mapped_types, &graph).map_err(fail)?;
        } else if kind == Kind::Relationship {
            for end in ["_fromEntityKey", "_toEntityKey"] {
                let k = object[end].as_str().unwrap_or_default();
                if !graph.has_entity(k) {
                    return Err(fail(format!("{end} {k:?} names no entity of this run")));
                }
            }
        }
        // What leaves the host is redacted now; the guest reads back what it emitted.
        let (stored, original) = if tainted {
            let original = corral_core::canonical::encode(&object).0;
            (store::redact_map(object, &self.run.secrets), Some(original))
        } else {
            (object, None)
        };
        graph
            .insert(NewObject {
                kind,
                step: &self.step,
                type_name: &header.type_name,
                key: &header.key,
                stored: &stored,
                raw_data,
                original,
            })
            .map_err(|e| refusal(e.to_string(), true))
    }

    /// The host's own storage failed (disk full, I/O error): a limit, not the guest's fault.
    fn store_failed(&self, e: std::io::Error) -> GraphError {
        let reason = format!("the host could not read the run's graph: {e}");
        self.run.log.host(&self.run, &self.step, "error", &reason);
        GraphError::Limit(reason)
    }

    /// The grant's answer for emitting `header`'s object, which depends only on the
    /// action, `_type` and first class: computed once per step for each (a step emits
    /// thousands of objects of a few types), up to [`MAX_CACHED_DECISIONS`].
    fn emit_decision(&mut self, kind: Kind, action: &str, header: &Header) -> Decision {
        let class = header.classes.first().cloned().unwrap_or_default();
        let id = (kind, header.type_name.clone(), class);
        if let Some(d) = self.emit_decisions.get(&id) {
            return d.clone();
        }
        let decision = self.run.grant.check(
            action,
            &format!("type:{}", header.type_name),
            &graph_context(header),
        );
        if self.emit_decisions.len() < MAX_CACHED_DECISIONS {
            self.emit_decisions.insert(id, decision.clone());
        }
        decision
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

/// Why an object was not stored; `type_name` is its `_type` when it had a valid one.
struct Refusal {
    key: String,
    type_name: Option<String>,
    reason: String,
    limit: bool,
}

/// A stored record as the guest's string: the host wrote it from a `String`, so it is
/// UTF-8 and taken as it is (checked, not copied); a damaged spool reads lossily.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `_rawData` (in `object`, or apart as canonical text) within `maxRawDataBytes`
/// (measured only when the whole object is larger).
fn check_raw_data(
    object: &Map<String, Value>,
    raw_data: Option<&str>,
    json_len: usize,
    max: u64,
) -> Result<(), String> {
    if json_len as u64 <= max {
        return Ok(());
    }
    let size = match (object.get("_rawData"), raw_data) {
        (Some(raw), _) => serde_json::to_vec(raw).map_or(usize::MAX, |v| v.len()),
        (None, Some(text)) => text.len(),
        (None, None) => return Ok(()),
    } as u64;
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
    if !graph.has_entity(source) {
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

/// Registers `graph` under `interface`: the reads here, the two emits through `lift`
/// (their lists are lifted within the call's caps).
pub fn add_to_linker(linker: &mut Linker<StepCtx>, interface: &str) -> wasmtime::Result<()> {
    let mut inst = linker.instance(interface)?;
    inst.func_wrap("find-entity", |mut store, (key,): (String,)| {
        Ok((store.data_mut().find_entity(key),))
    })?;
    inst.func_wrap("has-key", |mut store, (key,): (String,)| {
        Ok((store.data_mut().has_key(key),))
    })?;
    inst.func_wrap(
        "list-entities",
        |mut store, (entity_type, cursor, limit): (String, u32, u32)| {
            Ok((store.data_mut().list_entities(entity_type, cursor, limit),))
        },
    )?;
    super::lift::add_emits(&mut inst)
}

/// The 0.2 reads of the previous graph, registered under `interface` beside the rest.
pub fn add_previous_to_linker(
    linker: &mut Linker<StepCtx>,
    interface: &str,
) -> wasmtime::Result<()> {
    let mut inst = linker.instance(interface)?;
    inst.func_wrap_async(
        "previous-object",
        |mut store: wasmtime::StoreContextMut<'_, StepCtx>, (key,): (String,)| {
            Box::new(async move { Ok((store.data_mut().previous_object(&key).await,)) })
        },
    )?;
    inst.func_wrap_async(
        "list-previous",
        |mut store: wasmtime::StoreContextMut<'_, StepCtx>,
         (type_name, cursor, limit): (String, u32, u32)| {
            Box::new(async move {
                let page = store
                    .data_mut()
                    .list_previous(&type_name, cursor, limit)
                    .await;
                Ok((page,))
            })
        },
    )?;
    Ok(())
}

impl StepCtx {
    pub fn emit_entities(&mut self, entities: Vec<String>) -> Result<EmitReport, GraphError> {
        self.emit(Kind::Entity, entities)
    }

    pub fn emit_relationships(
        &mut self,
        relationships: Vec<String>,
    ) -> Result<EmitReport, GraphError> {
        self.emit(Kind::Relationship, relationships)
    }

    pub fn find_entity(&mut self, key: String) -> Result<Option<String>, GraphError> {
        let found = self.run.graph.store.locked().read_entity(&key);
        match found {
            Err(e) => Err(self.store_failed(e)),
            Ok(None) => Ok(None),
            Ok(Some((type_name, json))) => {
                self.check_read(&type_name).map(|()| Some(into_text(json)))
            }
        }
    }

    /// `previous-object`: an object of the previous graph by `_key`, if its `_type` may
    /// be read.
    pub async fn previous_object(&mut self, key: &str) -> Result<Option<String>, GraphError> {
        let key = key.to_string();
        match self.read_previous(move |r| r.object(&key)).await? {
            Some(Some((type_name, json))) => self.check_read(&type_name).map(|()| Some(json)),
            Some(None) | None => Ok(None),
        }
    }

    /// `list-previous`: a page of the previous graph's objects of one `_type`.
    pub async fn list_previous(
        &mut self,
        type_name: &str,
        cursor: u32,
        limit: u32,
    ) -> Result<EntityPage, GraphError> {
        let empty = EntityPage {
            entities: Vec::new(),
            next: None,
        };
        // No `_type` is longer: a longer one has no objects and needs no policy match.
        if corral_core::manifest::check_type_name(type_name).is_err() {
            return Ok(empty);
        }
        self.check_read(type_name)?;
        let type_name = type_name.to_string();
        let limit = limit.clamp(1, previous::MAX_PAGE);
        match self
            .read_previous(move |r| r.page(&type_name, cursor, limit))
            .await?
        {
            Some((entities, next)) => Ok(EntityPage { entities, next }),
            None => Ok(empty),
        }
    }

    /// Runs `read` on the previous graph after the checks every read makes, on a
    /// blocking thread: a read is SQLite I/O, or on a cluster worker a question to the
    /// coordinator, neither of which may hold up the runtime's threads. `None` when the
    /// run has no previous graph (a host that keeps no state: empty, as on a first run).
    async fn read_previous<T: Send + 'static>(
        &mut self,
        read: impl FnOnce(&dyn PreviousGraph) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<Option<T>, GraphError> {
        let Some(reader) = self.run.graph.previous.clone() else {
            return Ok(None);
        };
        let outcome = tokio::task::spawn_blocking(move || {
            if reader.held_redactions()? {
                return Ok(None);
            }
            let partial = reader.was_partial().unwrap_or(false);
            Ok(Some((partial, read(reader.as_ref())?)))
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        match outcome {
            Ok(Some((partial, value))) => {
                if partial {
                    self.say_partial();
                }
                Ok(Some(value))
            }
            Ok(None) => Err(GraphError::Denied(
                "the previous graph is not readable: a run of this instance emitted a secret value"
                    .into(),
            )),
            Err(e) => Err(self.previous_failed(e)),
        }
    }

    /// Says once per run, in its log, that the previous graph reads as empty because the
    /// last run was partial (an operator otherwise sees only a run costing a full one).
    fn say_partial(&self) {
        use std::sync::atomic::Ordering;
        if !self
            .run
            .graph
            .previous_empty_logged
            .swap(true, Ordering::Relaxed)
        {
            let line = "the instance's last run was partial: its previous graph reads as empty this run, so a connector reading it collects everything";
            self.run.log.host(&self.run, &self.step, "info", line);
        }
    }

    /// The detail (a file path, a database error) goes to the run log; the guest is
    /// told only that the read failed.
    fn previous_failed(&self, e: anyhow::Error) -> GraphError {
        let detail = format!("the host could not read the previous graph: {e:#}");
        self.run.log.host(&self.run, &self.step, "error", &detail);
        GraphError::Limit("the host could not read the previous graph".into())
    }

    pub fn has_key(&mut self, key: String) -> bool {
        self.run.graph.store.locked().contains_key(&key)
    }

    pub fn list_entities(
        &mut self,
        entity_type: String,
        cursor: u32,
        limit: u32,
    ) -> Result<EntityPage, GraphError> {
        // No `_type` is longer: a longer one has no entities and needs no policy match.
        if corral_core::manifest::check_type_name(&entity_type).is_err() {
            return Ok(EntityPage {
                entities: Vec::new(),
                next: None,
            });
        }
        self.check_read(&entity_type)?;
        let page = self.run.graph.store.locked().read_type_page(
            &entity_type,
            cursor as usize,
            limit.clamp(1, 1000) as usize,
        );
        match page {
            Err(e) => Err(self.store_failed(e)),
            Ok((texts, next)) => Ok(EntityPage {
                entities: texts.into_iter().map(into_text).collect(),
                next: next.map(|n| n as u32),
            }),
        }
    }
}
