//! Emitting to and reading back from the run's graph through the host.

use crate::bindings::corral::integration::graph as wit;
use crate::entity::Object;
use crate::error::{Error, Result};

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
    pub accepted: u32,
    pub rejected: Vec<wit::Rejection>,
}

impl Emitter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn entity(&mut self, entity: Object) -> Result<()> {
        self.entities
            .push(serde_json::Value::Object(entity).to_string());
        if self.entities.len() >= BATCH {
            self.flush_entities()?;
        }
        Ok(())
    }

    pub fn relationship(&mut self, relationship: Object) -> Result<()> {
        self.relationships
            .push(serde_json::Value::Object(relationship).to_string());
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
        let report = wit::emit_entities(&batch).map_err(graph_error)?;
        self.record(report);
        Ok(())
    }

    fn flush_relationships(&mut self) -> Result<()> {
        self.flush_entities()?;
        if self.relationships.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.relationships);
        let report = wit::emit_relationships(&batch).map_err(graph_error)?;
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
        if let Err(e) = self.flush() {
            DEFERRED.with(|d| d.borrow_mut().get_or_insert(e).clone());
        }
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

fn parse(json: &str) -> Result<Object> {
    serde_json::from_str(json).map_err(|e| Error::Graph(format!("host returned bad JSON: {e}")))
}

/// An entity this run emitted, by `_key`.
pub fn find_entity(key: &str) -> Result<Option<Object>> {
    wit::find_entity(key)
        .map_err(graph_error)?
        .map(|json| parse(&json))
        .transpose()
}

/// Whether any object of this run has this `_key`.
pub fn has_key(key: &str) -> bool {
    wit::has_key(key)
}

/// Every entity of `entity_type` this run emitted, fetched from the host a page at a time.
pub fn entities_of_type(entity_type: &str) -> EntitiesOfType {
    EntitiesOfType {
        entity_type: entity_type.to_string(),
        page: Vec::new().into_iter(),
        next: Some(0),
    }
}

pub struct EntitiesOfType {
    entity_type: String,
    page: std::vec::IntoIter<String>,
    next: Option<u32>,
}

impl Iterator for EntitiesOfType {
    type Item = Result<Object>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(json) = self.page.next() {
                return Some(parse(&json));
            }
            let cursor = self.next?;
            match wit::list_entities(&self.entity_type, cursor, BATCH as u32) {
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
