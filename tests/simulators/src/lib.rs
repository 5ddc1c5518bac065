#![recursion_limit = "256"]

//! Provider API simulators on loopback: deterministic data from a seed and a size, the
//! providers' real paths and pagination, auth checks, and fault injection.
//!
//! [`server`] is the framework every provider shares (routing hook, auth, faults, the
//! request log, lifecycle); each provider module holds only its data and routes.

pub mod attack;
pub mod circleci;
pub mod jupiterone;
pub mod kandji;
pub mod rng;
pub mod runzero;
pub mod sentinelone;
pub mod server;

pub use server::{Drip, FaultRule, LoggedRequest, SimServer};
