//! corral: runs graph-integration connectors as sandboxed WebAssembly components.
//!
//! Start at [`runtime::Runtime`] (engine, linker, plugins) and [`run::run_instance`]
//! (one instance, validate then the step DAG). What a guest can reach lives in
//! [`capabilities`], one module per WIT import; every policy decision is made by
//! [`policy::Grant::check`].

pub use corral_core::{changes, config, datamodel, explain, policy, query, secrets};

pub mod alerts;
pub mod builtin;
pub mod capabilities;
pub mod cli;
pub mod compiled_cache;
pub mod deliver;
pub mod demo;
pub mod engine;
pub mod graph_commands;
pub mod history;
pub mod jupiterone;
pub mod lock;
pub mod oneshot;
pub mod output;
pub mod plugin;
pub mod run;
pub mod runtime;
pub mod serve;
pub mod state;
pub mod stderr_log;
pub mod sync;
pub mod wit;
