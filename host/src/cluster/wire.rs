//! The messages on the cluster's streams. Both sides check what they read: a message
//! that does not parse is answered with an error naming the subject, never a panic.

use serde::{Deserialize, Serialize};

/// A queued run, as the coordinator publishes it. No secret and no config value travels:
/// the worker resolves the instance from its own `corral.toml` and environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: String,
    pub instance: String,
    pub plugin_id: String,
    /// sha256 of the component (hex): the generation the run was queued with.
    pub digest: String,
    pub generation: u64,
    /// Requests the instance's last successful run made (the quota estimate).
    pub expected_requests: Option<u64>,
    /// Objects it emitted (the size the run's key index starts at).
    #[serde(default)]
    pub expected_objects: Option<u64>,
}

/// How a run ended on a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The run's result file is in the results store under the run id.
    Ran { bytes: u64 },
    /// The run could not start (plugin not fetched or not loadable, instance unknown to
    /// the worker, attempts exhausted).
    Failed { reason: String },
}

/// A worker's word that a run ended, published once its result is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultNotice {
    pub run_id: String,
    pub worker: String,
    pub attempts: u64,
    pub outcome: Outcome,
}

/// A worker's word that it started a run (plain NATS, not stored: the result notice
/// carries the same facts, so a lost one only delays the history's `running`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    pub run_id: String,
    pub worker: String,
    pub attempts: u64,
}

/// The coordinator's answer to a quota take (`cluster::asks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuotaAnswer {
    Granted,
    /// No token yet: wait this long for `window` (`requestsPerMinute`, …).
    Wait {
        wait_ms: u64,
        window: String,
        per_window: f64,
        fits_tick: bool,
    },
    /// The ask was not one the coordinator keeps a quota for.
    Refused {
        reason: String,
    },
}

/// A worker's report of a provider's own count of what a quota window has left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaSeen {
    pub ask: crate::capabilities::http::quota::QuotaAsk,
    pub window: String,
    pub remaining: f64,
}

/// A read of a run's previous graph (`PreviousGraph`'s methods, over NATS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PreviousAsk {
    Flags,
    Object {
        key: String,
    },
    Page {
        type_name: String,
        cursor: u32,
        limit: u32,
    },
}

/// The coordinator's answer to a [`PreviousAsk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreviousAnswer {
    Flags {
        redacted: bool,
        partial: bool,
    },
    /// The object's `_type` and JSON text, if there is one under the key.
    Object {
        found: Option<(String, String)>,
    },
    Page {
        entities: Vec<String>,
        next: Option<u32>,
    },
    Failed {
        reason: String,
    },
}

impl PreviousAnswer {
    pub fn kind(&self) -> &'static str {
        match self {
            PreviousAnswer::Flags { .. } => "flags",
            PreviousAnswer::Object { .. } => "object",
            PreviousAnswer::Page { .. } => "page",
            PreviousAnswer::Failed { .. } => "failed",
        }
    }
}

/// The longest message either side parses.
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

pub fn parse<T: for<'de> Deserialize<'de>>(subject: &str, payload: &[u8]) -> anyhow::Result<T> {
    anyhow::ensure!(
        payload.len() <= MAX_MESSAGE_BYTES,
        "{subject}: a message of {} bytes (at most {MAX_MESSAGE_BYTES})",
        payload.len()
    );
    serde_json::from_slice(payload)
        .map_err(|e| anyhow::anyhow!("{subject}: malformed message: {e}"))
}

/// Run ids are `run-<n>` (the history's); anything else is not one of ours.
pub fn valid_run_id(id: &str) -> bool {
    id.strip_prefix("run-")
        .is_some_and(|n| !n.is_empty() && n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit()))
}
