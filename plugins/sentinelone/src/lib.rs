//! The SentinelOne connector: the account, groups and agents of a SentinelOne console.
//!
//! Steps (strictly sequential, as the reference): `fetch-account` → `fetch-groups` →
//! `fetch-agents`. Agents also get a mapped PROTECTS relationship to the device they run on.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod steps;

use corral_sdk::{Guest, PluginManifest, StepError};

struct SentinelOne;

impl Guest for SentinelOne {
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
corral_sdk::export_connector!(SentinelOne with_types_in corral_sdk::bindings);
