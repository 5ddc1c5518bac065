//! The `graph` interface's values, as the host holds them (shared by every WIT version
//! whose `graph` has this shape).

use wasmtime::component::{ComponentType, Lift, Lower};

/// Why one object of a batch was not stored.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct Rejection {
    pub index: u32,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct EmitReport {
    pub accepted: u32,
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(variant)]
pub enum GraphError {
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "limit")]
    Limit(String),
    #[component(name = "invalid")]
    Invalid(String),
}

/// A page of one `_type`'s entities, as JSON text, with the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(record)]
pub struct EntityPage {
    pub entities: Vec<String>,
    pub next: Option<u32>,
}
