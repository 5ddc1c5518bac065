//! The CircleCI connector: account, orgs (user groups), projects, pipelines, workflows, jobs, contexts and environment-variable names from CircleCI API v2.
//!
//! Environment-variable values are never read into an entity; each project is fetched
//! once however many pipelines name it; every paged endpoint uses a proper `page-token`.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod steps;

use corral_sdk::{Guest, PluginManifest, StepError};

struct CircleCi;

impl Guest for CircleCi {
    fn manifest() -> PluginManifest {
        manifest::manifest()
    }

    fn validate() -> Result<(), StepError> {
        steps::validate().map_err(Into::into)
    }

    fn disabled_steps() -> Vec<String> {
        Vec::new()
    }

    fn run_step(step_id: String) -> Result<(), StepError> {
        steps::run(&step_id).map_err(Into::into)
    }
}

#[cfg(target_arch = "wasm32")]
corral_sdk::export_connector!(CircleCi with_types_in corral_sdk::bindings);
