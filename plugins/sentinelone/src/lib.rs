//! The SentinelOne connector: the account, groups and agents of a SentinelOne console.
//!
//! Steps (strictly sequential, as the reference): `fetch-account` → `fetch-groups` →
//! `fetch-agents`. Agents also get a mapped PROTECTS relationship to the device they run on.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod steps;

corral_sdk::export!(manifest::SentinelOne);
