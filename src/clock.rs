//! The broker's clock: the one place that reads time for decisions a
//! client can see.
//!
//! Two clocks, as Kafka has:
//! - [`wall_ms`]: wall time in ms since the Unix epoch. It is what Kafka
//!   timestamps carry (log-append time, commit and expiry timestamps,
//!   transaction start and update times, retention by timestamp), so it can
//!   step when the host's clock is set.
//! - [`monotonic`] / [`monotonic_ms`]: a clock that never goes back, for
//!   durations the broker enforces (group session and rebalance timeouts,
//!   fetch session idle times).
//!
//! Who reads it: code outside the network and operations layers that takes
//! a protocol-visible decision (groups, transactions, offsets, retention,
//! produce's topic policy, fetch sessions). Timings kept only for metrics
//! or logs (request latency, flush and load durations) and waits on the OS
//! (port probes, drain deadlines) read `std::time` directly: driving them
//! from a test would prove nothing about the protocol.
//!
//! Why free functions and not a `Clock` trait object on the shard: the hot
//! path (produce's log-append time, every fetch's session touch) reads the
//! clock per request, and the broker has exactly one real clock. In a
//! broker build each function is `#[inline]` and compiles to the same
//! `SystemTime::now` / `Instant::now` call as before the seam, so the seam
//! costs nothing. Under `cfg(test)` each reads a thread-local
//! [`ManualClock`] first when a test installed one ([`install_manual`]);
//! glommio runs a shard's tasks on one thread, so a test on an executor
//! drives every read of that shard. The same override can be opened to the
//! deterministic simulation (`tests/sim_*`) behind a feature when it covers
//! groups and transactions; until then it serves the unit tests.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[cfg(test)]
use std::time::Duration;

/// Wall-clock now, in ms since the Unix epoch (Kafka timestamps); 0 if the
/// host's clock is before 1970.
#[inline]
pub fn wall_ms() -> i64 {
    #[cfg(test)]
    if let Some(ms) = manual::read(|c| c.wall_ms) {
        return ms;
    }
    system_wall_ms()
}

/// Monotonic now (deadlines and timeouts).
#[inline]
pub fn monotonic() -> Instant {
    #[cfg(test)]
    if let Some(at) = manual::read(|c| c.base + c.elapsed) {
        return at;
    }
    Instant::now()
}

/// Monotonic ms since the first call in this process (idle times kept as
/// integers).
#[inline]
pub fn monotonic_ms() -> u64 {
    let start = process_start();
    monotonic().saturating_duration_since(start).as_millis() as u64
}

/// The origin of [`monotonic_ms`]: the first read of it in this process.
fn process_start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn system_wall_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as i64)
}

/// A clock a test sets and advances by hand.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub struct ManualClock {
    /// Wall time, ms since the epoch.
    pub wall_ms: i64,
    base: Instant,
    elapsed: Duration,
}

/// Makes this thread's clock reads answer from a [`ManualClock`] that
/// starts at the real time, until the returned guard is dropped.
#[cfg(test)]
pub fn install_manual() -> ManualGuard {
    // The monotonic origin precedes the manual base, so `monotonic_ms`
    // moves exactly as the manual clock is advanced.
    process_start();
    let clock = ManualClock {
        wall_ms: system_wall_ms(),
        base: Instant::now(),
        elapsed: Duration::ZERO,
    };
    manual::CLOCK.with(|c| c.set(Some(clock)));
    ManualGuard(())
}

/// Holds this thread's manual clock; dropping it restores the real clock.
#[cfg(test)]
#[derive(Debug)]
pub struct ManualGuard(());

#[cfg(test)]
impl ManualGuard {
    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        manual::update(|c| {
            c.elapsed += by;
            c.wall_ms += by.as_millis() as i64;
        });
    }

    /// Sets the wall clock alone (a host clock step); the monotonic clock
    /// does not move.
    pub fn set_wall_ms(&self, ms: i64) {
        manual::update(|c| c.wall_ms = ms);
    }
}

#[cfg(test)]
impl Drop for ManualGuard {
    fn drop(&mut self) {
        manual::CLOCK.with(|c| c.set(None));
    }
}

#[cfg(test)]
mod manual {
    use std::cell::Cell;

    use super::ManualClock;

    thread_local! {
        pub(super) static CLOCK: Cell<Option<ManualClock>> = const { Cell::new(None) };
    }

    pub(super) fn read<T>(f: impl FnOnce(&ManualClock) -> T) -> Option<T> {
        CLOCK.with(|c| c.get().as_ref().map(f))
    }

    pub(super) fn update(f: impl FnOnce(&mut ManualClock)) {
        CLOCK.with(|c| {
            if let Some(mut clock) = c.get() {
                f(&mut clock);
                c.set(Some(clock));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_manual_drives_both_clocks_and_drop_restores_real_time() {
        let guard = install_manual();
        let (wall, mono, mono_ms) = (wall_ms(), monotonic(), monotonic_ms());
        guard.advance(Duration::from_secs(30));
        assert_eq!(wall_ms(), wall + 30_000);
        assert_eq!(monotonic() - mono, Duration::from_secs(30));
        assert_eq!(monotonic_ms(), mono_ms + 30_000);
        guard.set_wall_ms(5);
        assert_eq!(wall_ms(), 5);
        assert_eq!(
            monotonic() - mono,
            Duration::from_secs(30),
            "wall step only"
        );
        drop(guard);
        assert!(wall_ms() > 1_700_000_000_000, "real clock back");
    }
}
