//! This shard's usage per quota bucket (`!Send`: a thread-local, written
//! only by the shard's own thread, like `ops::metrics`).
//!
//! A bucket is Kafka's metric tags: the quota type and the user and/or
//! client id of the entity level the quota came from, so clients matched
//! by one entity (say every client id of user alice under users/alice)
//! share one rate. Buckets nobody used for a whole window are dropped when
//! the map grows past [`BUCKETS_SWEEP_AT`].

use std::cell::RefCell;
use std::collections::HashMap;

use super::entity::{AppliedQuota, QuotaType};
use super::rate::WindowedRate;

/// Tracked buckets at which idle ones are swept (each is ~300 bytes).
pub const BUCKETS_SWEEP_AT: usize = 10_000;

type BucketKey = (QuotaType, Option<String>, Option<String>);

thread_local! {
    static BUCKETS: RefCell<HashMap<BucketKey, WindowedRate>> = RefCell::new(HashMap::new());
}

fn with_rate<R>(
    kind: QuotaType,
    q: &AppliedQuota,
    now_ms: u64,
    f: impl FnOnce(&mut WindowedRate) -> R,
) -> R {
    BUCKETS.with(|b| {
        let mut buckets = b.borrow_mut();
        if buckets.len() >= BUCKETS_SWEEP_AT {
            buckets.retain(|_, rate| !rate.is_idle(now_ms));
        }
        let rate = buckets
            .entry((kind, q.user.clone(), q.client_id.clone()))
            .or_default();
        f(rate)
    })
}

/// Records `value` and returns the throttle it implies, counted in
/// /metrics when non-zero.
pub fn record(kind: QuotaType, q: &AppliedQuota, now_ms: u64, value: f64) -> u64 {
    let ms = with_rate(kind, q, now_ms, |rate| {
        rate.record(now_ms, value);
        rate.throttle_ms(now_ms, q.bound)
    });
    crate::ops::metrics::record_quota_throttle(kind, ms);
    ms
}

/// Records `value`; the throttle is decided later ([`throttle`]).
pub fn record_only(kind: QuotaType, q: &AppliedQuota, now_ms: u64, value: f64) {
    with_rate(kind, q, now_ms, |rate| rate.record(now_ms, value));
}

/// The throttle the bucket's rate implies now, counted in /metrics when
/// non-zero.
pub fn throttle(kind: QuotaType, q: &AppliedQuota, now_ms: u64) -> u64 {
    let ms = with_rate(kind, q, now_ms, |rate| rate.throttle_ms(now_ms, q.bound));
    crate::ops::metrics::record_quota_throttle(kind, ms);
    ms
}
