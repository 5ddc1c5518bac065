//! The runZero connector: account, organizations, sites, users and assets of a runZero console.
//!
//! Two modes: an account API key (everything), or one organization's export token (the
//! steps that need the account key are disabled). Assets come from a JSONL export read
//! line by line as it streams.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod steps;

use corral_sdk::{Guest, PluginManifest, StepError};

struct RunZero;

impl Guest for RunZero {
    fn manifest() -> PluginManifest {
        manifest::manifest()
    }

    fn validate() -> Result<(), StepError> {
        steps::validate().map_err(Into::into)
    }

    fn disabled_steps() -> Vec<String> {
        steps::disabled_steps()
    }

    fn run_step(step_id: String) -> Result<(), StepError> {
        steps::run(&step_id).map_err(Into::into)
    }
}

#[cfg(target_arch = "wasm32")]
corral_sdk::export_connector!(RunZero with_types_in corral_sdk::bindings);
