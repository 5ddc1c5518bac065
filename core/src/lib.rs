//! corral's pure logic: what can be checked without running anything, with no wasmtime
//! and no network: the policy grammar and its evaluation, manifests, `corral.toml`,
//! alert rules, queries, the data model, secrets and their redaction, content hashes
//! and change detection. The host (`corral-host`) re-exports these modules; the fuzz
//! targets depend on this crate.

pub mod alerts;
pub mod canonical;
pub mod changes;
pub mod classes;
pub mod config;
pub mod datamodel;
pub mod explain;
pub mod glob;
pub mod limits;
pub mod manifest;
pub mod policy;
pub mod query;
pub mod secrets;
pub mod text;
pub mod url_glob;
