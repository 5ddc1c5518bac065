//! A provider's quota over longer windows (`requestsPerMinute`, `requestsPerHour`),
//! shared by every run of the process that talks to the same provider tenant: the runs
//! whose limits name one `quotaKey`, or else the requests to one host. Each window is a
//! token bucket holding at most its quota; a request takes one token from every window
//! at once, or waits for the last of them to refill, so a run spreads its requests over
//! the quota instead of failing. `requestsPerSecond` stays the run's own bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One window's bucket: refills at `per_window / window` a second, up to `per_window`.
struct Window {
    name: &'static str,
    per_window: f64,
    per_second: f64,
    tokens: f64,
}

impl Window {
    /// A quota below one request per window still lets one through per window (a
    /// bucket that never holds a whole token would block every request).
    fn new(name: &'static str, per_window: f64, window: Duration) -> Self {
        let per_window = per_window.max(1.0);
        Window {
            name,
            per_window,
            per_second: per_window / window.as_secs_f64(),
            tokens: per_window,
        }
    }

    fn refill(&mut self, elapsed: f64) {
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_window);
    }

    fn wait(&self) -> f64 {
        ((1.0 - self.tokens) / self.per_second).max(0.0)
    }
}

/// The windows of one quota key.
pub struct Buckets {
    windows: Vec<Window>,
    last: Instant,
}

/// A quota's answer when no token is there: how long until one is, and which window is
/// spent (for the log and the error).
#[derive(Debug, PartialEq)]
pub struct Spent {
    pub wait: Duration,
    pub window: &'static str,
    pub per_window: f64,
    /// Whether the wait may end on the process's tick (`pace::tick_fits`).
    pub fits_tick: bool,
}

/// The window a [`QuotaKeeper`] names when it could not be asked (a cluster's
/// coordinator away): the run waits and asks again rather than guess at a quota that
/// other machines draw from too.
pub const UNANSWERED: &str = "unanswered";

/// The window a [`QuotaKeeper`] names when it refused the ask (its wait is endless, so
/// the request fails at once).
pub const REFUSED: &str = "refused";

impl Spent {
    /// What is spent, for the run's log and errors.
    pub fn what(&self, key: &str) -> String {
        if self.window == UNANSWERED {
            format!(
                "the keeper of quota {key:?} (the cluster's coordinator) does not answer, so no token of it"
            )
        } else if self.window == REFUSED {
            format!(
                "the keeper of quota {key:?} (the cluster's coordinator) refused it, so no token of it"
            )
        } else {
            format!("{} ({}) of quota {key:?}", self.window, self.per_window)
        }
    }
}

impl Buckets {
    fn new(per_minute: Option<f64>, per_hour: Option<f64>) -> Self {
        let mut windows = Vec::new();
        if let Some(n) = per_minute {
            windows.push(Window::new("requestsPerMinute", n, Duration::from_secs(60)));
        }
        if let Some(n) = per_hour {
            windows.push(Window::new("requestsPerHour", n, Duration::from_secs(3600)));
        }
        Buckets {
            windows,
            last: Instant::now(),
        }
    }

    /// A run with tighter quotas tightens the shared ones (never loosens them).
    fn tighten(&mut self, per_minute: Option<f64>, per_hour: Option<f64>) {
        let wanted = Buckets::new(per_minute, per_hour);
        for w in wanted.windows {
            match self.windows.iter_mut().find(|o| o.name == w.name) {
                Some(o) if w.per_window < o.per_window => {
                    o.tokens = o.tokens.min(w.per_window);
                    o.per_window = w.per_window;
                    o.per_second = w.per_second;
                }
                Some(_) => {}
                None => self.windows.push(w),
            }
        }
    }

    /// Takes a token from every window, or none and says which window to wait for.
    pub fn take(&mut self) -> Result<(), Spent> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        for w in &mut self.windows {
            w.refill(elapsed);
        }
        let longest = self
            .windows
            .iter()
            .filter(|w| w.tokens < 1.0)
            .max_by(|a, b| a.wait().total_cmp(&b.wait()));
        if let Some(w) = longest {
            return Err(Spent {
                wait: Duration::try_from_secs_f64(w.wait()).unwrap_or(Duration::MAX),
                window: w.name,
                per_window: w.per_window,
                fits_tick: super::pace::tick_fits(w.per_window, w.per_second),
            });
        }
        for w in &mut self.windows {
            w.tokens -= 1.0;
        }
        Ok(())
    }
}

impl Buckets {
    /// The provider says `remaining` requests are left in `window` (requests of the
    /// tenant's other tools count there too): the window holds no more than that.
    pub fn observe(&mut self, window: &str, remaining: f64) {
        for w in self.windows.iter_mut().filter(|w| w.name == window) {
            w.tokens = w.tokens.min(remaining);
        }
    }
}

/// The window a provider's rate-limit header counts down, and what it says is left:
/// `x-ratelimit-remaining-minute` and `-hour` (Kandji's family), a plain count only.
pub fn remaining(header: &str, value: &[u8]) -> Option<(&'static str, f64)> {
    let window = match header {
        "x-ratelimit-remaining-minute" => "requestsPerMinute",
        "x-ratelimit-remaining-hour" => "requestsPerHour",
        _ => return None,
    };
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((window, text.parse::<u64>().ok()? as f64))
}

/// Keys one plugin keeps quotas for; past them, its new keys share one quota of its own
/// (so a plugin making keys of many hosts fills only its own share).
const MAX_KEYS_PER_SCOPE: usize = 1_000;

/// Quotas the process keeps at most (a cluster's coordinator keeps every worker's):
/// past them, the keys of a new scope share one quota.
const MAX_QUOTAS: usize = 100_000;

/// The process's quotas by (scope, key). A quota outlives the runs that used it (the
/// next run of an instance draws from what the last one left); one no run holds and
/// that has refilled completely carries nothing, and is dropped at the next sweep.
struct Quotas {
    /// At most this many quotas ([`MAX_QUOTAS`]).
    limit: usize,
    by_key: HashMap<(String, String), Arc<Mutex<Buckets>>>,
    keys_of_scope: HashMap<String, usize>,
    /// Joins left before the next sweep: sweeping as often as there are quotas keeps a
    /// join's cost constant on average, however many quotas there are.
    until_sweep: usize,
}

static QUOTAS: std::sync::LazyLock<Mutex<Quotas>> =
    std::sync::LazyLock::new(|| Mutex::new(Quotas::new(MAX_QUOTAS)));

impl Buckets {
    fn is_full(&mut self) -> bool {
        let elapsed = self.last.elapsed().as_secs_f64();
        self.windows
            .iter()
            .all(|w| w.tokens + elapsed * w.per_second >= w.per_window)
    }
}

/// Whether a quota carries nothing: no run holds it and it has refilled.
fn carries_nothing(b: &Arc<Mutex<Buckets>>) -> bool {
    Arc::strong_count(b) == 1 && b.lock().unwrap_or_else(PoisonError::into_inner).is_full()
}

impl Quotas {
    fn new(limit: usize) -> Quotas {
        Quotas {
            limit,
            by_key: HashMap::new(),
            keys_of_scope: HashMap::new(),
            until_sweep: 0,
        }
    }

    fn sweep(&mut self) {
        self.by_key.retain(|_, b| !carries_nothing(b));
        self.keys_of_scope.clear();
        for (scope, _) in self.by_key.keys() {
            *self.keys_of_scope.entry(scope.clone()).or_default() += 1;
        }
        self.until_sweep = self.by_key.len().max(64);
    }

    /// The (scope, key) `key` draws from: its own, or past the limits a shared one.
    fn place(&self, scope: &str, key: &str) -> (String, String) {
        let wanted = (scope.to_string(), key.to_string());
        if self.by_key.contains_key(&wanted) {
            wanted
        } else if self.by_key.len() >= self.limit && !self.keys_of_scope.contains_key(scope) {
            ("(scopes past the process's limit)".into(), String::new())
        } else if self.keys_of_scope.get(scope).copied().unwrap_or(0) >= MAX_KEYS_PER_SCOPE
            || self.by_key.len() >= self.limit
        {
            (scope.to_string(), "(keys past the plugin's limit)".into())
        } else {
            wanted
        }
    }

    fn join(
        &mut self,
        scope: &str,
        key: &str,
        per_minute: Option<f64>,
        per_hour: Option<f64>,
    ) -> Arc<Mutex<Buckets>> {
        match self.until_sweep.checked_sub(1) {
            Some(n) => self.until_sweep = n,
            None => self.sweep(),
        }
        let id = self.place(scope, key);
        if let Some(shared) = self.by_key.get(&id)
            && !carries_nothing(shared)
        {
            shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .tighten(per_minute, per_hour);
            return shared.clone();
        }
        // New, or one that carries nothing (so a looser quota starts afresh, not tightened
        // by a run long gone).
        let shared = Arc::new(Mutex::new(Buckets::new(per_minute, per_hour)));
        if self.by_key.insert(id.clone(), shared.clone()).is_none() {
            *self.keys_of_scope.entry(id.0).or_default() += 1;
        }
        shared
    }
}

/// The shared buckets of `key`, tightened to these quotas.
pub fn join(
    scope: &str,
    key: &str,
    per_minute: Option<f64>,
    per_hour: Option<f64>,
) -> Arc<Mutex<Buckets>> {
    QUOTAS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .join(scope, key, per_minute, per_hour)
}

/// The up-front warning for a run expected to make `requests` (its instance's previous
/// run made that many): when they exceed what a full window of a quota allows, the
/// run's requests will be spread, and the line says over how long at least. `None` when
/// they fit.
pub fn estimate(
    requests: u64,
    per_second: f64,
    per_minute: Option<f64>,
    per_hour: Option<f64>,
) -> Option<String> {
    let n = requests as f64;
    let windows = [
        ("requestsPerMinute", per_minute, 60.0),
        ("requestsPerHour", per_hour, 3600.0),
    ];
    // A full bucket lets `quota` through at once; the rest come at its refill rate.
    let (name, quota, wait) = windows
        .into_iter()
        .filter_map(|(name, q, secs)| {
            let q = q?.max(1.0);
            (n > q).then(|| (name, q, (n - q) * secs / q))
        })
        .max_by(|a, b| a.2.total_cmp(&b.2))?;
    let floor = wait.max(n / per_second.max(f64::MIN_POSITIVE));
    Some(format!(
        "this run is estimated at {requests} requests (its previous run's), more than \
         {name} ({quota}) allows at once: its requests will be spread over the quota, \
         taking at least {} min",
        (floor / 60.0).ceil().min(u32::MAX as f64) as u32
    ))
}

/// What a run draws from a shared quota: the plugin scope and key, and the quotas the
/// run declares (which tighten the shared ones).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuotaAsk {
    pub scope: String,
    pub key: String,
    pub per_minute: Option<f64>,
    pub per_hour: Option<f64>,
}

/// A boxed future that may cross threads (the keeper is a trait object).
pub type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Keeps the shared quotas somewhere other than this process. A cluster worker's runs
/// draw from the coordinator's, so that workers on many machines together spend a
/// provider's quota once, not once per worker.
pub trait QuotaKeeper: Send + Sync {
    /// Takes a token from every window of `ask`'s quota, or says what to wait for.
    fn take<'a>(&'a self, ask: &'a QuotaAsk) -> Pending<'a, Result<(), Spent>>;

    /// The provider's own count of what a window has left (see [`Buckets::observe`]).
    fn observe(&self, ask: &QuotaAsk, window: &'static str, remaining: f64);
}

impl QuotaAsk {
    /// This process's buckets of the quota (joined for this one use).
    pub fn buckets(&self) -> Arc<Mutex<Buckets>> {
        join(&self.scope, &self.key, self.per_minute, self.per_hour)
    }
}

/// The window named `name`, as the names [`Spent::window`] takes (`None` for any other).
pub fn window_name(name: &str) -> Option<&'static str> {
    ["requestsPerMinute", "requestsPerHour"]
        .into_iter()
        .find(|w| *w == name)
}

/// A run's view of the quotas: the keys it has joined, held for the run.
#[derive(Default)]
pub struct RunQuotas {
    joined: Mutex<HashMap<String, Arc<Mutex<Buckets>>>>,
}

impl RunQuotas {
    /// The buckets of `key` for this run (joined on first use).
    pub fn buckets(
        &self,
        scope: &str,
        key: &str,
        per_minute: Option<f64>,
        per_hour: Option<f64>,
    ) -> Arc<Mutex<Buckets>> {
        let mut joined = self.joined.lock().unwrap_or_else(PoisonError::into_inner);
        joined
            .entry(key.to_string())
            .or_insert_with(|| join(scope, key, per_minute, per_hour))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_must_have_a_token_and_none_is_taken_otherwise() {
        let mut b = Buckets::new(Some(3.0), Some(2.0));
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take(), Ok(()));
        // The hour is spent (2), the minute is not (1 left): nothing is taken.
        let spent = b.take().unwrap_err();
        assert_eq!((spent.window, spent.per_window), ("requestsPerHour", 2.0));
        // An hour's token comes back after 3600 / 2 s.
        assert!(spent.wait > Duration::from_secs(1790) && spent.wait <= Duration::from_secs(1800));
        assert!(
            (b.windows[0].tokens - 1.0).abs() < 0.01,
            "the minute kept its token"
        );
    }

    #[test]
    fn a_run_past_a_quota_is_estimated_up_front() {
        // Kandji, 5,000 devices: 10,052 requests, 50 a second, 10,000 an hour.
        let line = estimate(10_052, 50.0, None, Some(10_000.0)).unwrap();
        assert!(line.contains("10052 requests"), "{line}");
        assert!(line.contains("requestsPerHour (10000)"), "{line}");
        // 52 past a full hour's quota at 10,000 an hour take 19 s; 10,052 at 50 a
        // second take 201 s: at least 4 min.
        assert!(line.ends_with("at least 4 min"), "{line}");
        // 30,000 take two hours past the first 10,000.
        let line = estimate(30_000, 50.0, Some(1e6), Some(10_000.0)).unwrap();
        assert!(line.ends_with("at least 120 min"), "{line}");
        // Within every window, or with no quota: nothing to say.
        assert_eq!(estimate(9_999, 50.0, None, Some(10_000.0)), None);
        assert_eq!(estimate(u64::MAX, 50.0, None, None), None);
        // The worst values stay finite and bounded.
        let line = estimate(u64::MAX, 1e-30, Some(0.0), Some(0.01)).unwrap();
        assert!(line.contains("requestsPerHour (1)"), "{line}");
    }

    #[test]
    fn the_providers_remaining_count_lowers_the_window_never_raises_it() {
        let mut b = Buckets::new(Some(100.0), Some(10_000.0));
        let (window, left) = remaining("x-ratelimit-remaining-hour", b" 2 ").unwrap();
        b.observe(window, left);
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take().unwrap_err().window, "requestsPerHour");
        // A count above what the bucket holds gives nothing back.
        b.observe("requestsPerHour", 1e9);
        assert!(b.take().is_err());
        // Anything but a plain count is not read.
        let bad: [&[u8]; 7] = [
            b"",
            b"-1",
            b"1e9",
            b"0x10",
            b"12345678901234",
            b"\xff",
            b"3.5",
        ];
        for bad in bad {
            assert_eq!(
                remaining("x-ratelimit-remaining-hour", bad),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(remaining("x-ratelimit-remaining", b"5"), None);
        assert_eq!(
            remaining("x-ratelimit-remaining-minute", b"0"),
            Some(("requestsPerMinute", 0.0))
        );
    }

    #[test]
    fn a_quota_below_one_a_window_still_lets_one_request_through() {
        let mut b = Buckets::new(Some(0.5), None);
        assert_eq!(b.take(), Ok(()));
        assert!(b.take().is_err());
    }

    #[test]
    fn a_plugin_making_many_keys_fills_only_its_own_share() {
        let scope = format!("many-{}", std::process::id());
        let held: Vec<_> = (0..MAX_KEYS_PER_SCOPE + 5)
            .map(|i| join(&scope, &format!("host-{i}"), None, Some(1.0)))
            .collect();
        // Past its cap, this plugin's new keys share one bucket of its own...
        let overflow = join(&scope, "host-new", None, Some(1.0));
        assert!(Arc::ptr_eq(&overflow, &held[MAX_KEYS_PER_SCOPE]));
        // ...and another plugin still gets a quota of its own.
        let other = join(&format!("{scope}-other"), "host-new", None, Some(5.0));
        assert!(!Arc::ptr_eq(&other, &overflow));
        assert_eq!(other.lock().unwrap().take(), Ok(()));
    }

    #[test]
    fn past_the_process_limit_new_scopes_share_one_quota_and_sweeps_free_them() {
        let mut quotas = Quotas::new(100);
        let held: Vec<_> = (0..103)
            .map(|i| quotas.join(&format!("s{i}"), "k", Some(1.0), None))
            .collect();
        let past = quotas.join("s-new", "k", Some(1.0), None);
        assert!(quotas.by_key.len() <= 102, "{}", quotas.by_key.len());
        assert!(Arc::ptr_eq(&past, held.last().unwrap()));
        // A scope that has quotas keeps its own, past the limit too.
        assert!(Arc::ptr_eq(
            &quotas.join("s0", "k", Some(1.0), None),
            &held[0]
        ));
        drop((held, past));
        // Unheld and refilled, they go at a sweep (one within as many joins as quotas).
        for _ in 0..200 {
            drop(quotas.join("s", "k", None, Some(1e6)));
        }
        assert_eq!(quotas.by_key.len(), 1);
        assert_eq!(quotas.keys_of_scope.values().sum::<usize>(), 1);
    }

    #[test]
    fn runs_of_one_key_share_its_quota_and_the_tighter_quota_wins() {
        let key = format!("unit-quota-{}", std::process::id());
        let a = join("p", &key, None, Some(10.0));
        let b = join("p", &key, None, Some(2.0));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.lock().unwrap().take(), Ok(()));
        assert_eq!(b.lock().unwrap().take(), Ok(()));
        assert!(
            a.lock().unwrap().take().is_err(),
            "two of 2 per hour, shared"
        );
        let other = join("p", &format!("{key}-other"), None, Some(2.0));
        assert_eq!(other.lock().unwrap().take(), Ok(()));
        // The next run draws from what the last one left: the quota outlives its runs.
        drop((a, b));
        let again = join("p", &key, None, Some(2.0));
        assert!(again.lock().unwrap().take().is_err());
    }
}
