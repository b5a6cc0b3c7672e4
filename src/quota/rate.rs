//! Kafka's windowed rate (`SampledStat`/`Rate` with
//! `quota.window.num` = [`QUOTA_WINDOWS`] samples of
//! `quota.window.size.seconds` = [`QUOTA_WINDOW_MS`]) and the throttle
//! time it implies: `(observed - bound) / bound * window`, the time for the
//! observed rate to fall back to the bound if nothing more came.
//!
//! One difference from Kafka, on purpose: Kafka measures a young rate (its
//! samples span less than `QUOTA_WINDOWS - 1` windows) over that many
//! windows anyway, so a new client may send ten seconds of its quota at
//! once before any throttle and then waits; a sample that big comes back
//! as another burst each time it expires. Here a young rate is measured
//! over at least one window, so a client is held to its rate from its
//! first second; once the samples span the whole window both agree.

/// Samples in a rate (Kafka's `quota.window.num` default).
pub const QUOTA_WINDOWS: usize = 11;
/// Span of one sample, in ms (Kafka's `quota.window.size.seconds` = 1).
pub const QUOTA_WINDOW_MS: u64 = 1_000;
/// Longest throttle ever answered, in ms: the whole window. A single
/// request big enough to need more is still throttled this long, and the
/// rest is charged on the client's next requests.
pub const THROTTLE_MS_MAX: u64 = QUOTA_WINDOW_MS * QUOTA_WINDOWS as u64;

const _: () = assert!(QUOTA_WINDOWS >= 2 && QUOTA_WINDOW_MS > 0);
const _: () = assert!(THROTTLE_MS_MAX <= i32::MAX as u64);

/// One sample: what was recorded from `start_ms` for one window.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    start_ms: u64,
    value: f64,
    used: bool,
}

/// A windowed rate of one quota bucket (a shard's view; `quota` module
/// doc says why per shard).
#[derive(Clone, Debug, Default)]
pub struct WindowedRate {
    samples: [Sample; QUOTA_WINDOWS],
    current: usize,
}

impl WindowedRate {
    /// Adds `value` at `now_ms`.
    pub fn record(&mut self, now_ms: u64, value: f64) {
        self.purge(now_ms);
        let sample = &mut self.samples[self.current];
        if !sample.used || now_ms >= sample.start_ms + QUOTA_WINDOW_MS {
            if sample.used {
                self.current = (self.current + 1) % QUOTA_WINDOWS;
            }
            self.samples[self.current] = Sample {
                start_ms: now_ms,
                value: 0.0,
                used: true,
            };
        }
        self.samples[self.current].value += value;
    }

    /// Removes `value` from the current sample (never below zero).
    pub fn unrecord(&mut self, value: f64) {
        let sample = &mut self.samples[self.current];
        sample.value = (sample.value - value).max(0.0);
    }

    /// Forgets samples older than the whole window.
    fn purge(&mut self, now_ms: u64) {
        let span = QUOTA_WINDOW_MS * QUOTA_WINDOWS as u64;
        for s in &mut self.samples {
            if s.used && now_ms.saturating_sub(s.start_ms) >= span {
                *s = Sample::default();
            }
        }
    }

    /// The rate at `now_ms` per second, and the window it is measured
    /// over in ms (at least one sample's span).
    pub fn measure(&mut self, now_ms: u64) -> (f64, u64) {
        self.purge(now_ms);
        let mut total = 0.0;
        let mut oldest = now_ms;
        for s in self.samples.iter().filter(|s| s.used) {
            total += s.value;
            oldest = oldest.min(s.start_ms);
        }
        let elapsed_ms = now_ms.saturating_sub(oldest).max(QUOTA_WINDOW_MS);
        (total * 1000.0 / elapsed_ms as f64, elapsed_ms)
    }

    /// The throttle, in ms, that brings the rate back to `bound`: 0 when
    /// it is within it.
    pub fn throttle_ms(&mut self, now_ms: u64, bound: f64) -> u64 {
        let (rate, window_ms) = self.measure(now_ms);
        if rate <= bound || bound <= 0.0 {
            return 0;
        }
        let ms = (rate - bound) / bound * window_ms as f64;
        (ms.ceil() as u64).min(THROTTLE_MS_MAX)
    }

    /// Whether nothing was recorded within the whole window (the bucket
    /// can be dropped).
    pub fn is_idle(&mut self, now_ms: u64) -> bool {
        self.purge(now_ms);
        self.samples.iter().all(|s| !s.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_rate_within_bound_is_not_throttled() {
        let mut r = WindowedRate::default();
        for ms in (0..5_000).step_by(100) {
            r.record(ms, 90.0); // 900 per second
            assert_eq!(r.throttle_ms(ms, 1_000.0), 0, "at {ms} ms");
        }
    }

    #[test]
    fn quota_rate_throttle_is_kafkas_formula() {
        let mut r = WindowedRate::default();
        r.record(0, 3_000.0);
        // 3000 over one window against 1000/s: (3000-1000)/1000 * 1000 ms.
        assert_eq!(r.throttle_ms(0, 1_000.0), 2_000);
        // Measured over the elapsed window once it is longer than one.
        r.record(3_000, 0.0);
        let (rate, window) = r.measure(3_000);
        assert_eq!(window, 3_000);
        assert!((rate - 1_000.0).abs() < 1e-9);
        assert_eq!(r.throttle_ms(3_000, 1_000.0), 0);
    }

    #[test]
    fn quota_rate_forgets_after_whole_window_and_caps_throttle() {
        let mut r = WindowedRate::default();
        r.record(0, 1e9);
        assert_eq!(r.throttle_ms(0, 1.0), THROTTLE_MS_MAX);
        assert!(!r.is_idle(1));
        assert!(r.is_idle(THROTTLE_MS_MAX));
        assert_eq!(r.throttle_ms(THROTTLE_MS_MAX, 1.0), 0);
    }

    /// A client that sends as fast as throttles let it, for 20 s: the
    /// rate it achieves is its bound within 5 %, with no start burst.
    #[test]
    fn quota_rate_throttled_client_converges_to_bound() {
        let bound = 1_000_000.0;
        let request = 64_000.0;
        let mut r = WindowedRate::default();
        let mut now = 0u64;
        let mut sent_by = Vec::new();
        while now < 20_000 {
            r.record(now, request);
            sent_by.push((now, request));
            now += r.throttle_ms(now, bound).max(1);
        }
        for (from, to) in [(0u64, 10_000u64), (5_000, 15_000), (10_000, 20_000)] {
            let bytes: f64 = sent_by
                .iter()
                .filter(|(t, _)| (from..to).contains(t))
                .map(|(_, b)| b)
                .sum();
            let rate = bytes * 1000.0 / (to - from) as f64;
            assert!(
                (rate - bound).abs() / bound < 0.05,
                "{from}..{to} ms: {rate} B/s"
            );
        }
    }
}
