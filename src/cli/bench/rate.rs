//! Pacing for `--target-rate`.
//!
//! The limiter is a schedule, not a token bucket with a burst: record `n`
//! may be created at `n / rate` seconds after the start. A producer that
//! fell behind (the broker was slow) catches up at once rather than losing
//! the records, so the offered load over a run is exactly the target — what
//! a latency-at-half-load run needs. Time is passed in, so the tests need
//! no clock.

use std::time::Duration;

/// Records created so far against the schedule of `rate` records/s.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Records per second; `None` is unlimited.
    rate: Option<f64>,
    /// Records handed out so far.
    issued: u64,
}

impl RateLimiter {
    /// A limiter for `rate` records/s; 0 (or less) is unlimited.
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter {
            rate: (rate > 0.0).then_some(rate),
            issued: 0,
        }
    }

    /// Takes up to `want` records that are due at `elapsed` since the
    /// start; returns how many were taken.
    pub fn take(&mut self, elapsed: Duration, want: u64) -> u64 {
        let n = match self.rate {
            None => want,
            Some(rate) => {
                // floor(elapsed * rate) + 1: record 0 is due at once.
                let due = (elapsed.as_secs_f64() * rate) as u64 + 1;
                due.saturating_sub(self.issued).min(want)
            }
        };
        self.issued += n;
        n
    }

    /// When the next record is due, as time since the start (`None` if
    /// unlimited: always due).
    pub fn next_due(&self) -> Option<Duration> {
        self.rate
            .map(|rate| Duration::from_secs_f64(self.issued as f64 / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bench_rate_unlimited_gives_all() {
        let mut r = RateLimiter::new(0.0);
        assert_eq!(r.take(Duration::ZERO, 1_000_000), 1_000_000);
        assert_eq!(r.next_due(), None);
    }

    #[test]
    fn bench_rate_follows_schedule() {
        let mut r = RateLimiter::new(1000.0);
        assert_eq!(r.take(Duration::ZERO, 100), 1, "record 0 is due at once");
        assert_eq!(r.take(Duration::ZERO, 100), 0);
        assert_eq!(r.next_due(), Some(MS));
        assert_eq!(r.take(10 * MS, 100), 10, "records 1..=10 due by 10 ms");
        assert_eq!(r.take(10 * MS, 100), 0);
        // Capped by `want`, the rest stays due.
        assert_eq!(r.take(100 * MS, 50), 50);
        assert_eq!(r.take(100 * MS, 1000), 40);
        assert_eq!(r.next_due(), Some(101 * MS));
    }

    #[test]
    fn bench_rate_over_a_second_is_the_rate() {
        let mut r = RateLimiter::new(12_345.0);
        let mut total = 0;
        for ms in 0..1000u64 {
            total += r.take(Duration::from_millis(ms), u64::MAX);
        }
        // Due by 999 ms: floor(0.999 * 12345) + 1.
        assert_eq!(total, 12_333);
        total += r.take(Duration::from_secs(1), u64::MAX);
        assert_eq!(total, 12_346);
    }
}
