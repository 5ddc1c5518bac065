//! `corral:integration@0.2.0` (`wit/0.2.0/corral.wit`): 0.1's `http` and `config`
//! unchanged; `graph` with reads of the previous run's graph; `log` with typed field
//! values; the run-scoped `kv` store.

use super::Version;
use crate::capabilities::{StepCtx, config, graph, http, kv, log};
use wasmtime::component::Linker;

pub fn add_to_linker(linker: &mut Linker<StepCtx>) -> wasmtime::Result<()> {
    let v = Version::V0_2;
    http::add_to_linker(linker, &v.interface("http"))?;
    graph::add_to_linker(linker, &v.interface("graph"))?;
    graph::add_previous_to_linker(linker, &v.interface("graph"))?;
    log::add_to_linker(linker, &v.interface("log"), log::Fields::Typed)?;
    config::add_to_linker(linker, &v.interface("config"))?;
    kv::add_to_linker(linker, &v.interface("kv"))
}
