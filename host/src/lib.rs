//! corral: runs graph-integration connectors as sandboxed WebAssembly components.
//!
//! Start at [`runtime::Runtime`] (engine, linker, plugins) and [`run::run_instance`]
//! (one instance, validate then the step DAG). What a guest can reach lives in
//! [`capabilities`], one module per WIT import; every policy decision is made by
//! [`policy::Grant::check`].

pub use corral_core::{changes, config, datamodel, explain, policy, query, secrets};

// The layers, each depending only on those below it:
// cli, serve → delivery → run → plugin → capabilities → engine, net, ownership, corral-core.
pub mod capabilities;
pub mod cli;
pub mod cluster;
pub mod delivery;
pub mod engine;
pub mod lock;
pub mod malloc;
pub mod net;
pub mod ownership;
pub mod plugin;
pub mod run;
pub mod serve;
pub mod stderr_log;
