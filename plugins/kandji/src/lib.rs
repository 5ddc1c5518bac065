//! The Kandji connector: devices, their apps and users from the Kandji MDM API.
//!
//! Steps (a DAG): `fetch-account` → `fetch-devices` → {`fetch-device-apps`,
//! `fetch-device-users`}. Device details and apps are fetched concurrently through the
//! host's batch fetch; a device deleted mid-run (404) is a warning, not a failed step.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod steps;

use corral_sdk::{Guest, PluginManifest, StepError};

struct Kandji;

impl Guest for Kandji {
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

// Exported only in the component: the export names (`corral:integration/…`) are not
// valid symbol names for a native shared library, where the converters are unit-tested.
#[cfg(target_arch = "wasm32")]
corral_sdk::export_connector!(Kandji with_types_in corral_sdk::bindings);
