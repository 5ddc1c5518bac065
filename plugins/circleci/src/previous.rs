//! Incremental collection (`incremental = "true"`): what a run takes from the instance's
//! previous graph instead of asking CircleCI again. A pipeline whose list entry is as the
//! previous run left it, and whose workflows had all finished, keeps those workflows; a
//! finished workflow whose entry is unchanged keeps its jobs. A finished workflow and its
//! jobs do not change (a rerun makes a new workflow, which changes the pipeline's entry).

use crate::convert::edge;
use corral_sdk::entity::{Object, raw_data, relationship_type};
use corral_sdk::serde_json::Value;
use corral_sdk::{Result, graph, log};
use std::collections::HashMap;

/// Workflow statuses after which neither the workflow nor its jobs change.
const FINISHED: &[&str] = &[
    "success",
    "failed",
    "error",
    "canceled",
    "not_run",
    "unauthorized",
];

/// Job statuses after which a job does not change.
const JOB_FINISHED: &[&str] = &[
    "success",
    "failed",
    "canceled",
    "not_run",
    "infrastructure_fail",
    "timedout",
    "unauthorized",
    "terminated-unknown",
];

/// Whether a workflow entity has finished.
pub fn finished(workflow: &Object) -> bool {
    status_in(workflow, FINISHED)
}

/// Whether a job entity has finished (a canceled workflow's jobs may still be settling).
pub fn job_finished(job: &Object) -> bool {
    status_in(job, JOB_FINISHED)
}

fn status_in(e: &Object, statuses: &[&str]) -> bool {
    e.get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| statuses.contains(&s))
}

/// Previous children an incremental step holds at once (each keeps its `_rawData`);
/// past them, every parent's children are fetched, in batches, as in a full run.
const MAX_KEPT: usize = 20_000;

/// When a parent's previous children may stand for fetching them: given the parent (its
/// entry unchanged) and those children.
pub type Done = fn(&Object, &[Object]) -> bool;

/// The previous run's children of each parent, by its parent HAS child edges.
pub struct Kept {
    parent_type: String,
    child_type: String,
    children: HashMap<String, Vec<Object>>,
}

fn text<'a>(o: &'a Object, field: &str) -> Option<&'a str> {
    o.get(field).and_then(Value::as_str)
}

impl Kept {
    /// The previous children of `parent_type`'s entities, or `None` when the instance
    /// did not ask for incremental runs or the previous graph cannot be read (then every
    /// parent's children are fetched, as in a full run).
    pub fn open(parent_type: &str, child_type: &str) -> Option<Kept> {
        if !corral_sdk::connector::is_on("incremental") {
            return None;
        }
        match Kept::read(parent_type, child_type) {
            Ok(kept) => Some(kept),
            Err(e) => {
                unreadable(&e);
                None
            }
        }
    }

    fn read(parent_type: &str, child_type: &str) -> Result<Kept> {
        let mut by_key: HashMap<String, Object> = HashMap::new();
        for child in graph::previous_of_type(child_type) {
            let child = child?;
            if by_key.len() >= MAX_KEPT {
                return Err(corral_sdk::Error::Graph(format!(
                    "more than {MAX_KEPT} previous {child_type} objects to hold"
                )));
            }
            if let Some(key) = text(&child, "_key") {
                by_key.insert(key.to_string(), child);
            }
        }
        let mut children: HashMap<String, Vec<Object>> = HashMap::new();
        let edges = relationship_type("HAS", parent_type, child_type);
        for e in graph::previous_of_type(&edges) {
            let e = e?;
            let (Some(from), Some(to)) = (text(&e, "_fromEntityKey"), text(&e, "_toEntityKey"))
            else {
                continue;
            };
            if let Some(child) = by_key.remove(to) {
                children.entry(from.to_string()).or_default().push(child);
            }
        }
        Ok(Kept {
            parent_type: parent_type.to_string(),
            child_type: child_type.to_string(),
            children,
        })
    }

    /// `parent`'s previous children, taken out, when its list entry is as the previous
    /// run left it and `done` says they stand; else `None` (fetch them).
    pub fn take(&mut self, parent: &Object, done: Done) -> Option<Vec<Object>> {
        let key = text(parent, "_key")?;
        let children = self.children.get(key)?;
        let unchanged = match graph::previous_object(key) {
            Ok(Some(prev)) => raw_data(parent).is_some() && raw_data(&prev) == raw_data(parent),
            Ok(None) => false,
            Err(e) => {
                unreadable(&e);
                self.children.clear();
                return None;
            }
        };
        if unchanged && done(parent, children) {
            self.children.remove(key)
        } else {
            None
        }
    }

    /// The edges a full run emits from `parent` to each of `children`.
    pub fn edges(&self, parent: &Object, children: &[Object]) -> Vec<Object> {
        let from = text(parent, "_key").unwrap_or_default();
        children
            .iter()
            .map(|c| {
                edge(
                    "HAS",
                    (from, &self.parent_type),
                    (text(c, "_key").unwrap_or_default(), &self.child_type),
                )
            })
            .collect()
    }
}

fn unreadable(e: &corral_sdk::Error) {
    log::warn(
        "the previous graph is not read; every pipeline's workflows and every workflow's jobs are fetched",
        &[("reason", &e.to_string())],
    );
}
