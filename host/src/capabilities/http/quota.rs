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
    fn new(name: &'static str, per_window: f64, window: Duration) -> Self {
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
            });
        }
        for w in &mut self.windows {
            w.tokens -= 1.0;
        }
        Ok(())
    }
}

/// Keys the process keeps quotas for; past them, new keys share one quota.
const MAX_KEYS: usize = 10_000;
/// The key the keys past [`MAX_KEYS`] share.
const OVERFLOW_KEY: &str = "(keys past the process's limit)";

/// The process's quotas by key. A quota outlives the runs that used it (the next run
/// of an instance draws from what the last one left); one no run holds and that has
/// refilled completely carries nothing and is dropped.
static QUOTAS: Mutex<Vec<(String, Arc<Mutex<Buckets>>)>> = Mutex::new(Vec::new());

impl Buckets {
    fn is_full(&mut self) -> bool {
        let elapsed = self.last.elapsed().as_secs_f64();
        self.windows
            .iter()
            .all(|w| w.tokens + elapsed * w.per_second >= w.per_window)
    }
}

/// The shared buckets of `key`, tightened to these quotas.
pub fn join(key: &str, per_minute: Option<f64>, per_hour: Option<f64>) -> Arc<Mutex<Buckets>> {
    let mut all = QUOTAS.lock().unwrap_or_else(PoisonError::into_inner);
    all.retain(|(_, b)| {
        Arc::strong_count(b) > 1 || !b.lock().unwrap_or_else(PoisonError::into_inner).is_full()
    });
    let key = if all.len() >= MAX_KEYS && !all.iter().any(|(k, _)| k == key) {
        OVERFLOW_KEY
    } else {
        key
    };
    if let Some((_, shared)) = all.iter().find(|(k, _)| k == key) {
        shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tighten(per_minute, per_hour);
        return shared.clone();
    }
    let shared = Arc::new(Mutex::new(Buckets::new(per_minute, per_hour)));
    all.push((key.to_string(), shared.clone()));
    shared
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
        key: &str,
        per_minute: Option<f64>,
        per_hour: Option<f64>,
    ) -> Arc<Mutex<Buckets>> {
        let mut joined = self.joined.lock().unwrap_or_else(PoisonError::into_inner);
        joined
            .entry(key.to_string())
            .or_insert_with(|| join(key, per_minute, per_hour))
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
    fn runs_of_one_key_share_its_quota_and_the_tighter_quota_wins() {
        let key = format!("unit-quota-{}", std::process::id());
        let a = join(&key, None, Some(10.0));
        let b = join(&key, None, Some(2.0));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.lock().unwrap().take(), Ok(()));
        assert_eq!(b.lock().unwrap().take(), Ok(()));
        assert!(
            a.lock().unwrap().take().is_err(),
            "two of 2 per hour, shared"
        );
        let other = join(&format!("{key}-other"), None, Some(2.0));
        assert_eq!(other.lock().unwrap().take(), Ok(()));
        // The next run draws from what the last one left: the quota outlives its runs.
        drop((a, b));
        let again = join(&key, None, Some(2.0));
        assert!(again.lock().unwrap().take().is_err());
    }
}
