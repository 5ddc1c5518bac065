//! The guest SDK: what a connector author touches.
//!
//! - [`bindings`]: the generated WIT bindings (`corral:integration@0.1.0`); a connector
//!   implements [`bindings::exports::corral::integration::connector::Guest`] and calls
//!   [`export_connector!`].
//! - [`entity`]: builders for JupiterOne's entity and direct-relationship shapes.
//! - [`http`]: requests with credentials by reference, retry with backoff, pagination.
//! - [`graph`]: buffered emission and reading back what this run emitted.
//! - [`time`]: timestamps to epoch milliseconds.
//! - [`log`]: structured logging through the host.
//! - [`manifest`]: builders for the manifest's fields, steps and declared types.
//! - [`props`]: provider JSON to data-model properties.

extern crate self as corral_sdk;

pub mod entity;
pub mod error;
pub mod graph;
pub mod http;
pub mod log;
pub mod manifest;
pub mod props;
pub mod time;

pub use error::{Error, Result};
pub use serde_json;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Generated bindings for the `plugin` world.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "corral_sdk::bindings",
        runtime_path: "corral_sdk::__wit_bindgen::rt",
    });
}

pub use bindings::corral::integration::config;
pub use bindings::export_connector;
pub use bindings::exports::corral::integration::connector::{
    ConfigField, EntityType, Guest, PluginManifest, RelationshipType, Step, StepError,
};
