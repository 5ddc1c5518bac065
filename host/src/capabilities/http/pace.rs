//! Pacing: the run's request rate as a token bucket, and the process-wide tick its
//! waits end on.
//!
//! A run held to its rate waits for each token. Woken once per token (every 20 ms at 50
//! a second), a process pays a thread wake-up, a timer and cold caches for every
//! request, which cost more CPU than the request itself (`docs/benchmarks.md`). Waits
//! therefore end on a common tick: the requests whose tokens came during a tick go out
//! together at its end, and every run of the process shares the ticks. The bucket alone
//! decides how many go, so the rate a provider sees is bounded as before; a request is
//! late by at most one tick. A bucket too small to keep the tokens that come during the
//! extra wait (a rate below 1.25 a second), and a wait the tick would carry past the
//! run's deadline, are not lengthened: the tick never costs throughput.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Requests per second outside this range are clamped: a zero, negative or NaN rate would
/// never refill, and its wait would not fit a `Duration`.
const RATE_RANGE: (f64, f64) = (0.001, 1e6);
/// How often waiting requests are woken.
pub(super) const TICK: Duration = Duration::from_millis(200);

/// Refills at `rate` tokens a second up to a burst of `max(rate, 1)`.
pub(super) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate: f64) -> Self {
        let (min, max) = RATE_RANGE;
        let rate = if rate.is_nan() {
            min
        } else {
            rate.clamp(min, max)
        };
        TokenBucket {
            rate,
            tokens: rate.max(1.0),
            last: Instant::now(),
        }
    }

    /// Whether its waits may end on the tick ([`tick_fits`]).
    pub(super) fn fits_tick(&self) -> bool {
        tick_fits(self.rate.max(1.0), self.rate)
    }

    /// Takes a token, or says how long until one is there.
    pub(super) fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let burst = self.rate.max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }
}

/// How long to sleep for a token due in `wait`: to the process's next tick, unless the
/// bucket would lose tokens meanwhile (`fits`: [`tick_fits`]) or the tick comes after
/// `deadline`.
pub(super) fn pause(wait: Duration, fits: bool, deadline: Instant) -> Duration {
    if !fits {
        return wait;
    }
    let ticked = on_tick(wait);
    match Instant::now().checked_add(ticked) {
        Some(end) if end <= deadline => ticked,
        _ => wait,
    }
}

/// Whether a bucket holding `capacity` tokens, refilled at `rate` a second, keeps the
/// tokens that come during a wait lengthened by up to a tick, beside the one waited for.
pub(super) fn tick_fits(capacity: f64, rate: f64) -> bool {
    capacity >= 1.0 + rate * TICK.as_secs_f64()
}

/// `wait` lengthened to end on the process's next tick (by less than [`TICK`]).
fn on_tick(wait: Duration) -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    ending_on_tick(Instant::now().saturating_duration_since(origin), wait)
}

/// `wait` from `elapsed` (since the ticks' origin) lengthened to end on a multiple of
/// [`TICK`]; `wait` itself when that does not fit.
fn ending_on_tick(elapsed: Duration, wait: Duration) -> Duration {
    let tick = TICK.as_nanos();
    let Some(due) = elapsed.checked_add(wait) else {
        return wait;
    };
    let on_tick = due.as_nanos().div_ceil(tick) * tick;
    match u64::try_from(on_tick) {
        Ok(nanos) => Duration::from_nanos(nanos).saturating_sub(elapsed),
        Err(_) => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spaces_requests() {
        let mut b = TokenBucket::new(2.0);
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
    }

    #[test]
    fn no_rate_panics() {
        for rate in [0.0, -1.0, 1e-300, f64::NAN, f64::INFINITY, f64::MAX] {
            let mut b = TokenBucket::new(rate);
            for _ in 0..3 {
                let _ = b.take();
            }
        }
    }

    #[test]
    fn a_wait_ends_on_the_next_tick_never_before_its_token() {
        let (t, fifth) = (TICK, TICK / 5);
        // A fifth into a tick, a wait of three tenths ends at the tick: four fifths.
        assert_eq!(ending_on_tick(t * 10 + fifth, t * 3 / 10), t - fifth);
        // Ending on a tick already, it is not lengthened.
        assert_eq!(ending_on_tick(t * 10 + fifth, t - fifth), t - fifth);
        assert_eq!(ending_on_tick(t * 10, Duration::ZERO), Duration::ZERO);
        // Past a tick by a nanosecond: the next one.
        assert_eq!(ending_on_tick(t * 10, Duration::from_nanos(1)), t);
        // Long waits keep their length to within a tick.
        let hour = Duration::from_secs(3_600);
        assert_eq!(ending_on_tick(fifth, hour), hour + t - fifth);
        // Waits that cannot be placed on the grid are kept as they are.
        assert_eq!(ending_on_tick(fifth, Duration::MAX), Duration::MAX);
        let near = Duration::from_nanos(u64::MAX) - fifth;
        assert_eq!(ending_on_tick(t, near), near);
    }

    #[test]
    fn slow_buckets_and_waits_near_the_deadline_keep_their_length() {
        // Above 1.25 a second the bucket keeps a tick's tokens; below, it would lose them.
        assert!(TokenBucket::new(50.0).fits_tick());
        assert!(TokenBucket::new(1.25).fits_tick());
        assert!(!TokenBucket::new(1.0).fits_tick());
        assert!(!TokenBucket::new(0.5).fits_tick());
        assert!(!TokenBucket::new(f64::NAN).fits_tick());
        // An hour's quota of 10,000 keeps them; one of a minute's single request not.
        assert!(tick_fits(10_000.0, 10_000.0 / 3_600.0));
        assert!(!tick_fits(1.0, 1.0 / 60.0));
        let wait = TICK / 1_000;
        assert_eq!(pause(wait, false, Instant::now() + TICK * 10), wait);
        assert_eq!(pause(wait, true, Instant::now() + wait * 2), wait);
        let ticked = pause(wait, true, Instant::now() + TICK * 10);
        assert!(ticked >= wait && ticked <= TICK + wait, "{ticked:?}");
    }

    #[test]
    fn every_wait_of_a_tick_ends_at_the_same_instant() {
        let now = TICK * 23 + Duration::from_millis(1);
        let ends: Vec<Duration> = [0, 7, 20, 39, 98]
            .iter()
            .map(|percent: &u32| now + ending_on_tick(now, TICK * *percent / 100))
            .collect();
        assert!(ends.iter().all(|e| *e == TICK * 24), "{ends:?}");
    }
}
