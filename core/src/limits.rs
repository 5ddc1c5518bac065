//! Resource limits: their valid ranges, defaults, and the limits in force for a run
//! (the tighter of the manifest's request and the operator's setting).

use std::fmt;

/// The valid range of a numeric limit, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitRange {
    Integer {
        min: u64,
        max: u64,
    },
    /// A finite number.
    Number {
        min: f64,
        max: f64,
    },
}

impl fmt::Display for LimitRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitRange::Integer { min, max } => write!(f, "an integer from {min} to {max}"),
            LimitRange::Number { min, max } => write!(f, "a number from {min} to {max}"),
        }
    }
}

const fn int(min: u64, max: u64) -> LimitRange {
    LimitRange::Integer { min, max }
}

/// Every numeric limit key with its valid range. Parse errors quote these and a test
/// holds `docs/security.md` to them; values outside would make the host misbehave
/// (a timeout that overflows, a semaphore too large, a rate that never refills).
pub const LIMIT_RANGES: &[(&str, LimitRange)] = &[
    ("memoryMiB", int(1, 1024)),
    ("timeoutSeconds", int(1, 86_400)),
    ("maxRequests", int(1, 10_000_000)),
    (
        "requestsPerSecond",
        LimitRange::Number {
            min: 0.01,
            max: 10_000.0,
        },
    ),
    (
        "requestsPerMinute",
        LimitRange::Number {
            min: 0.01,
            max: 600_000.0,
        },
    ),
    (
        "requestsPerHour",
        LimitRange::Number {
            min: 0.01,
            max: 36_000_000.0,
        },
    ),
    ("maxConcurrentRequests", int(1, 256)),
    ("maxResponseBytes", int(1, 1 << 30)),
    ("maxEntities", int(1, 10_000_000)),
    ("maxRelationships", int(1, 10_000_000)),
    ("maxGraphBytes", int(1 << 20, 8 << 30)),
    ("maxRawDataBytes", int(0, 64 << 20)),
    ("maxConcurrentSteps", int(1, 32)),
    ("maxInFlightBytes", int(1 << 20, 1 << 30)),
];

/// The valid range of the numeric limit `key` (a JSON key such as `timeoutSeconds`).
pub fn limit_range(key: &str) -> Option<LimitRange> {
    LIMIT_RANGES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, r)| *r)
}

/// Every key a policy's `limits` may hold.
pub const LIMIT_KEYS: &[&str] = &[
    "memoryMiB",
    "timeoutSeconds",
    "maxRequests",
    "requestsPerSecond",
    "requestsPerMinute",
    "requestsPerHour",
    "quotaKey",
    "maxConcurrentRequests",
    "maxResponseBytes",
    "maxEntities",
    "maxRelationships",
    "maxGraphBytes",
    "maxRawDataBytes",
    "maxConcurrentSteps",
    "maxInFlightBytes",
    "allowPrivateNetworks",
];

/// The longest `quotaKey`, in bytes.
pub const MAX_QUOTA_KEY_BYTES: usize = 256;

/// Resource limits as one policy writes them. `None` means "not set here"; see
/// [`Limits::effective`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory_mib: Option<u64>,
    pub timeout_seconds: Option<u64>,
    pub max_requests: Option<u64>,
    pub requests_per_second: Option<f64>,
    /// Longer windows of a provider's documented quota, each a token bucket enforced
    /// with the per-second one.
    pub requests_per_minute: Option<f64>,
    pub requests_per_hour: Option<f64>,
    /// Runs whose quotas share this key share their buckets (instances of one provider
    /// tenant); without it, the key is the host of each request.
    pub quota_key: Option<String>,
    pub max_concurrent_requests: Option<u64>,
    pub max_response_bytes: Option<u64>,
    pub max_entities: Option<u64>,
    pub max_relationships: Option<u64>,
    /// Bytes of emitted JSON a run's graph may hold (entities and relationships, `_rawData`
    /// included).
    pub max_graph_bytes: Option<u64>,
    /// The largest `_rawData` of one object, in bytes of JSON; 0 refuses `_rawData`.
    pub max_raw_data_bytes: Option<u64>,
    /// Steps of one run executing at once.
    pub max_concurrent_steps: Option<u64>,
    /// Bytes of response bodies the host holds for one run at once (all concurrent
    /// fetches and a batch's results together).
    pub max_in_flight_bytes: Option<u64>,
    pub allow_private_networks: Option<bool>,
}

/// Limits in force for a run: every one has a value, within its range.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveLimits {
    pub memory_mib: u64,
    pub timeout_seconds: u64,
    pub max_requests: u64,
    pub requests_per_second: f64,
    /// `None`: no quota over that window.
    pub requests_per_minute: Option<f64>,
    pub requests_per_hour: Option<f64>,
    /// The operator's key, else the manifest's, else none (each request's host).
    pub quota_key: Option<String>,
    pub max_concurrent_requests: u64,
    pub max_response_bytes: u64,
    pub max_entities: u64,
    pub max_relationships: u64,
    pub max_graph_bytes: u64,
    pub max_raw_data_bytes: u64,
    pub max_concurrent_steps: u64,
    pub max_in_flight_bytes: u64,
    pub allow_private_networks: bool,
}

impl Default for EffectiveLimits {
    fn default() -> Self {
        EffectiveLimits {
            memory_mib: 64,
            timeout_seconds: 900,
            max_requests: 100_000,
            requests_per_second: 20.0,
            requests_per_minute: None,
            requests_per_hour: None,
            quota_key: None,
            max_concurrent_requests: 8,
            max_response_bytes: 32 << 20,
            max_entities: 2_000_000,
            max_relationships: 2_000_000,
            max_graph_bytes: 512 << 20,
            max_raw_data_bytes: 1 << 20,
            max_concurrent_steps: 4,
            max_in_flight_bytes: 64 << 20,
            allow_private_networks: false,
        }
    }
}

/// Limits that bound what a run costs the host. Without the operator's word a plugin
/// may ask for less than the default, never more; the pacing limits (`maxRequests`,
/// `requestsPerSecond`, `maxConcurrentRequests`) it may raise within their ranges, to
/// what its provider documents.
pub const HOST_COST_LIMITS: &[&str] = &[
    "memoryMiB",
    "timeoutSeconds",
    "maxResponseBytes",
    "maxEntities",
    "maxRelationships",
    "maxGraphBytes",
    "maxRawDataBytes",
    "maxConcurrentSteps",
    "maxInFlightBytes",
];

/// The tighter of the manifest's and the operator's settings, else the default (a
/// ceiling for the manifest alone on [`HOST_COST_LIMITS`]); kept within `key`'s range so
/// that a `Limits` built in code cannot carry a value the parser would refuse.
fn pick(key: &str, manifest: Option<u64>, operator: Option<u64>, default: u64) -> u64 {
    let v = match (manifest, operator) {
        (Some(m), Some(o)) => m.min(o),
        (Some(m), None) if HOST_COST_LIMITS.contains(&key) => m.min(default),
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => default,
    };
    match limit_range(key) {
        Some(LimitRange::Integer { min, max }) => v.clamp(min, max),
        _ => v,
    }
}

fn pick_rate(a: Option<f64>, b: Option<f64>, default: f64) -> f64 {
    pick_quota("requestsPerSecond", a, b).unwrap_or(default)
}

/// The tighter of two rates of `key` (either may be unset), within its range.
fn pick_quota(key: &str, a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let Some(LimitRange::Number { min, max }) = limit_range(key) else {
        return None;
    };
    let valid = |v: &f64| v.is_finite();
    let v = match (a.filter(valid), b.filter(valid)) {
        (Some(a), Some(b)) => a.min(b),
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => return None,
    };
    Some(v.clamp(min, max))
}

impl Limits {
    /// The tighter of the manifest's request and the operator's setting for each limit,
    /// falling back to the defaults. `allowPrivateNetworks` needs both to say true (or
    /// the operator alone, when the manifest does not mention it).
    pub fn effective(manifest: &Limits, operator: Option<&Limits>) -> EffectiveLimits {
        let d = EffectiveLimits::default();
        let none = Limits::default();
        let (m, op) = (manifest, operator.unwrap_or(&none));
        EffectiveLimits {
            memory_mib: pick("memoryMiB", m.memory_mib, op.memory_mib, d.memory_mib),
            timeout_seconds: pick(
                "timeoutSeconds",
                m.timeout_seconds,
                op.timeout_seconds,
                d.timeout_seconds,
            ),
            max_requests: pick(
                "maxRequests",
                m.max_requests,
                op.max_requests,
                d.max_requests,
            ),
            requests_per_second: pick_rate(
                m.requests_per_second,
                op.requests_per_second,
                d.requests_per_second,
            ),
            requests_per_minute: pick_quota(
                "requestsPerMinute",
                m.requests_per_minute,
                op.requests_per_minute,
            ),
            requests_per_hour: pick_quota(
                "requestsPerHour",
                m.requests_per_hour,
                op.requests_per_hour,
            ),
            quota_key: op.quota_key.clone().or_else(|| m.quota_key.clone()),
            max_concurrent_requests: pick(
                "maxConcurrentRequests",
                m.max_concurrent_requests,
                op.max_concurrent_requests,
                d.max_concurrent_requests,
            ),
            max_response_bytes: pick(
                "maxResponseBytes",
                m.max_response_bytes,
                op.max_response_bytes,
                d.max_response_bytes,
            ),
            max_entities: pick(
                "maxEntities",
                m.max_entities,
                op.max_entities,
                d.max_entities,
            ),
            max_relationships: pick(
                "maxRelationships",
                m.max_relationships,
                op.max_relationships,
                d.max_relationships,
            ),
            max_graph_bytes: pick(
                "maxGraphBytes",
                m.max_graph_bytes,
                op.max_graph_bytes,
                d.max_graph_bytes,
            ),
            max_raw_data_bytes: pick(
                "maxRawDataBytes",
                m.max_raw_data_bytes,
                op.max_raw_data_bytes,
                d.max_raw_data_bytes,
            ),
            max_concurrent_steps: pick(
                "maxConcurrentSteps",
                m.max_concurrent_steps,
                op.max_concurrent_steps,
                d.max_concurrent_steps,
            ),
            max_in_flight_bytes: pick(
                "maxInFlightBytes",
                m.max_in_flight_bytes,
                op.max_in_flight_bytes,
                d.max_in_flight_bytes,
            ),
            allow_private_networks: match (m.allow_private_networks, op.allow_private_networks) {
                (Some(a), Some(b)) => a && b,
                (None, Some(b)) => b,
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_lie_within_their_ranges() {
        let d = EffectiveLimits::default();
        assert_eq!(Limits::effective(&Limits::default(), None), d);
        let ints = [
            ("memoryMiB", d.memory_mib),
            ("timeoutSeconds", d.timeout_seconds),
            ("maxRequests", d.max_requests),
            ("maxConcurrentRequests", d.max_concurrent_requests),
            ("maxResponseBytes", d.max_response_bytes),
            ("maxEntities", d.max_entities),
            ("maxRelationships", d.max_relationships),
            ("maxGraphBytes", d.max_graph_bytes),
            ("maxRawDataBytes", d.max_raw_data_bytes),
            ("maxConcurrentSteps", d.max_concurrent_steps),
            ("maxInFlightBytes", d.max_in_flight_bytes),
        ];
        for (key, v) in ints {
            let Some(LimitRange::Integer { min, max }) = limit_range(key) else {
                panic!("{key} has no integer range");
            };
            assert!((min..=max).contains(&v), "{key}");
            assert!(LIMIT_KEYS.contains(&key));
        }
        // `allowPrivateNetworks` and `quotaKey` are not numbers.
        assert_eq!(LIMIT_RANGES.len() + 2, LIMIT_KEYS.len());
    }

    #[test]
    fn the_tighter_setting_wins_for_the_new_limits() {
        let m = Limits {
            max_relationships: Some(10),
            max_raw_data_bytes: Some(0),
            max_concurrent_steps: Some(8),
            ..Limits::default()
        };
        let op = Limits {
            max_relationships: Some(20),
            max_graph_bytes: Some(2 << 20),
            max_concurrent_steps: Some(2),
            max_in_flight_bytes: Some(1 << 20),
            ..Limits::default()
        };
        let e = Limits::effective(&m, Some(&op));
        assert_eq!(e.max_relationships, 10);
        assert_eq!(e.max_raw_data_bytes, 0);
        assert_eq!(e.max_concurrent_steps, 2);
        assert_eq!(e.max_graph_bytes, 2 << 20);
        assert_eq!(e.max_in_flight_bytes, 1 << 20);
    }

    #[test]
    fn a_plugin_alone_cannot_raise_what_a_run_costs_the_host() {
        let greedy = Limits {
            memory_mib: Some(1024),
            max_concurrent_steps: Some(32),
            max_graph_bytes: Some(8 << 30),
            max_in_flight_bytes: Some(1 << 30),
            max_response_bytes: Some(1 << 30),
            requests_per_second: Some(50.0),
            max_requests: Some(10_000_000),
            ..Limits::default()
        };
        let d = EffectiveLimits::default();
        let e = Limits::effective(&greedy, None);
        assert_eq!(
            (e.memory_mib, e.max_concurrent_steps, e.max_graph_bytes),
            (d.memory_mib, d.max_concurrent_steps, d.max_graph_bytes)
        );
        assert_eq!(
            (e.max_in_flight_bytes, e.max_response_bytes),
            (d.max_in_flight_bytes, d.max_response_bytes)
        );
        // Pacing is the provider's business: the plugin's documented rate stands.
        assert_eq!((e.requests_per_second, e.max_requests), (50.0, 10_000_000));
        let operator = Limits {
            memory_mib: Some(512),
            ..Limits::default()
        };
        assert_eq!(Limits::effective(&greedy, Some(&operator)).memory_mib, 512);
    }

    #[test]
    fn limits_built_in_code_are_kept_in_range() {
        let wild = Limits {
            timeout_seconds: Some(u64::MAX),
            max_concurrent_requests: Some(u64::MAX),
            requests_per_second: Some(1e-30),
            max_concurrent_steps: Some(0),
            ..Limits::default()
        };
        let e = Limits::effective(&wild, None);
        // Alone, the plugin cannot raise a host-cost limit past its default.
        assert_eq!(e.timeout_seconds, 900);
        let operator = Limits {
            timeout_seconds: Some(u64::MAX),
            ..Limits::default()
        };
        assert_eq!(
            Limits::effective(&wild, Some(&operator)).timeout_seconds,
            86_400
        );
        assert_eq!(e.max_concurrent_requests, 256);
        assert_eq!(e.requests_per_second, 0.01);
        assert_eq!(e.max_concurrent_steps, 1);
        let nan = Limits {
            requests_per_second: Some(f64::NAN),
            ..Limits::default()
        };
        assert_eq!(Limits::effective(&nan, None).requests_per_second, 20.0);
    }
}
