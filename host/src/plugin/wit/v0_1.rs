//! `corral:integration@0.1.0` (frozen, `wit/0.1.0/corral.wit`): `http`, `graph`, `log`
//! with text fields, `config`.

use super::Version;
use crate::capabilities::{StepCtx, config, graph, http, log};
use wasmtime::component::Linker;

pub fn add_to_linker(linker: &mut Linker<StepCtx>) -> wasmtime::Result<()> {
    let v = Version::V0_1;
    http::add_to_linker(linker, &v.interface("http"))?;
    graph::add_to_linker(linker, &v.interface("graph"))?;
    log::add_to_linker(linker, &v.interface("log"), log::Fields::Text)?;
    config::add_to_linker(linker, &v.interface("config"))
}
