//! The CircleCI connector: account, orgs (user groups), projects, pipelines, workflows, jobs, contexts and environment-variable names from CircleCI API v2.
//!
//! Environment-variable values are never read into an entity; each project is fetched
//! once however many pipelines name it; every paged endpoint uses a proper `page-token`.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod previous;
mod steps;

corral_sdk::export!(manifest::CircleCi);
