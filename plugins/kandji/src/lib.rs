//! The Kandji connector: devices, their apps and users from the Kandji MDM API.
//!
//! Steps (a DAG): `fetch-account` → `fetch-devices` → {`fetch-device-apps`,
//! `fetch-device-users`}. Device details and apps are fetched concurrently through the
//! host's batch fetch; a device deleted mid-run (404) is a warning, not a failed step.

// Natively only the converters are exercised (by unit tests); the guest glue is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod convert;
mod manifest;
mod steps;

corral_sdk::export!(manifest::Kandji);
