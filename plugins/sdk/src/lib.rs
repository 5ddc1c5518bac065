//! The guest SDK: what a connector author touches.
//!
//! - [`bindings`]: the generated WIT bindings (`corral:integration@0.2.0`); a connector
//!   implements [`bindings::exports::corral::integration::connector::Guest`] and calls
//!   [`export_connector!`].
//! - [`entity`]: builders for JupiterOne's entity and direct-relationship shapes.
//! - [`http`]: requests with credentials by reference, retry with backoff, pagination.
//! - [`graph`]: buffered emission and reading back what this run emitted.
//! - [`time`]: timestamps to epoch milliseconds.
//! - [`log`]: structured logging through the host, with typed field values.
//! - [`kv`]: the run's key/value store, shared by its steps.
//! - [`manifest`]: builders for the manifest's fields, steps and declared types.
//! - [`props`]: provider JSON to data-model properties.
//! - [`standard`]: standard properties in the shapes the current class schemas require.

extern crate self as corral_sdk;

pub mod entity;
pub mod error;
pub mod graph;
pub mod http;
pub mod kv;
pub mod log;
pub mod manifest;
pub mod props;
pub mod standard;
pub mod time;

pub use error::{Error, Result};
pub use serde_json;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Generated bindings for the `plugin` world.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit/0.2.0",
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

/// Declares a connector: the type, the `Guest` implementation wired to plain functions,
/// and (in the component only) the export. For example:
///
/// ```ignore
/// corral_sdk::connector!(Kandji {
///     manifest: manifest::manifest,
///     validate: steps::validate,
///     disabled_steps: Vec::new,
///     run_step: steps::run,
/// });
/// ```
#[macro_export]
macro_rules! connector {
    ($ty:ident { manifest: $m:expr, validate: $v:expr, disabled_steps: $d:expr, run_step: $r:expr $(,)? }) => {
        struct $ty;

        impl $crate::Guest for $ty {
            fn manifest() -> $crate::PluginManifest {
                ($m)()
            }

            fn validate() -> ::core::result::Result<(), $crate::StepError> {
                ($v)().map_err(::core::convert::Into::into)
            }

            fn disabled_steps() -> ::std::vec::Vec<::std::string::String> {
                ($d)()
            }

            fn run_step(step_id: ::std::string::String) -> ::core::result::Result<(), $crate::StepError> {
                ($r)(&step_id).map_err(::core::convert::Into::into)
            }
        }

        // Exported only in the component: the export names (`corral:integration/…`) are
        // not valid symbols for a native shared library, where converters are unit-tested.
        #[cfg(target_arch = "wasm32")]
        $crate::export_connector!($ty with_types_in $crate::bindings);
    };
}
