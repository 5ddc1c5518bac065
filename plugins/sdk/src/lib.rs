//! The guest SDK: what a connector author touches.
//!
//! - [`connector`]: a connector declared once ([`connector::Connector`]: identity,
//!   config [`connector::Field`]s, [`capabilities::Capabilities`], steps with their
//!   handlers) and made the component's export by [`export!`].
//! - [`capabilities`]: the capability request, typed.
//! - [`bindings`]: the generated WIT bindings (`corral:integration@0.2.0`), for what the
//!   modules here do not cover.
//! - [`entity`]: builders for JupiterOne's entity and direct-relationship shapes.
//! - [`http`]: requests with credentials by reference, retry with backoff, pagination.
//! - [`graph`]: buffered emission and reading back what this run emitted.
//! - [`carry`]: a few fields of a type's stored entities, kept for the run's later
//!   steps so they do not read every entity back whole.
//! - [`time`]: timestamps to epoch milliseconds.
//! - [`log`]: structured logging through the host, with typed field values; `info!`,
//!   `warn!`, `error!`, `debug!` take format arguments.
//! - [`kv`]: the run's key/value store, shared by its steps.
//! - [`manifest`]: builders for the manifest's fields, steps and declared types.
//! - [`props`]: provider JSON to data-model properties.
//! - [`standard`]: standard properties in the shapes the current class schemas require.
//! - `testing` (native builds): a fake host, so step code runs in `cargo test`.

extern crate self as corral_sdk;

pub mod capabilities;
pub mod carry;
pub mod connector;
pub mod entity;
pub mod error;
pub mod graph;
pub mod http;
pub mod kv;
pub mod log;
pub mod manifest;
mod projection;
pub mod props;
pub mod standard;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

pub use error::{Error, Result};
pub use serde_json;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// A connector's memory comes from talc instead of the standard library's dlmalloc: a
/// step builds and drops a JSON tree for every record, and dlmalloc's allocation and
/// free cost the guest more than its JSON parsing did (docs/benchmarks.md). The guest
/// is single-threaded (no `atomics`), which talc's wasm allocator requires.
#[cfg(all(
    feature = "allocator",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Generated bindings for the `plugin` world.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "corral_sdk::bindings",
        runtime_path: "corral_sdk::__wit_bindgen::rt",
    });
}

/// The instance's config (`corral:integration/config`); in a native build, the fake
/// host's ([`testing`]).
#[cfg(target_arch = "wasm32")]
pub use bindings::corral::integration::config;
pub use bindings::export_connector;
pub use bindings::exports::corral::integration::connector::{
    ConfigField, EntityType, Guest, PluginManifest, RelationshipType, Step, StepError,
};
#[cfg(not(target_arch = "wasm32"))]
pub use testing::config;
