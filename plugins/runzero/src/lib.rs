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

corral_sdk::export!(manifest::RunZero);
