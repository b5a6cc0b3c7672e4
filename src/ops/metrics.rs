//! Per-shard metrics and their Prometheus text rendering.
//!
//! Decisions:
//! - Each shard counts into a thread-local [`ShardMetrics`] (plain `Cell`s
//!   and one `RefCell` map): a shard thread is the only writer, so there is
//!   no atomic, no lock and no cache line shared between cores. A thread
//!   that is not a shard (tests, the main thread) gets its own copy, which
//!   nobody reads.
//! - A scrape (see `ops::admin`) asks every shard, with a `Shard::run_on`
//!   job, for a [`ShardReport`]: a `Send` copy of its counters and of the
//!   state of the partitions it owns. Shard 0 renders them.
//! - Latency histograms use fixed buckets ([`LATENCY_BUCKETS_US`]) so an
//!   observation is one comparison loop and one increment.
//! - Names follow Prometheus conventions: `_total` counters, base units
//!   (seconds, bytes), labels `shard`, `api`, `topic`, `partition`, `group`.
//!   `ops::exposition` renders them; docs/grafana/corestream.json charts
//!   them (a test checks every name it uses is served).
//! - fsync latency is timed around the log flush's fdatasync
//!   (`storage::flush`), on the partition's owner, so it is per shard like
//!   everything else; index and checkpoint syncs are not in it (they are off
//!   the produce path).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::fetch::FetchMetrics;

pub use super::exposition::render;

/// Upper bounds of the latency buckets (requests and fsyncs), in
/// microseconds (the last bucket, +Inf, is implicit).
pub const LATENCY_BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];
const BUCKETS: usize = LATENCY_BUCKETS_US.len();

const _: () = {
    let mut i = 1;
    while i < BUCKETS {
        assert!(LATENCY_BUCKETS_US[i - 1] < LATENCY_BUCKETS_US[i]);
        i += 1;
    }
};

/// A latency histogram: per-bucket counts (not cumulative), sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket; index `BUCKETS` is +Inf.
    pub buckets: [u64; BUCKETS + 1],
    /// Sum of observations, in microseconds.
    pub sum_us: u64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BUCKETS);
        self.buckets[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }
}

/// Counters of one shard. Lives in a thread-local; see the module doc.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    requests: RefCell<BTreeMap<i16, Histogram>>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    connections_accepted: Cell<u64>,
    connections_open: Cell<u64>,
    cross_shard_messages: Cell<u64>,
    authentications: Cell<u64>,
    authentication_failures: Cell<u64>,
    reauthentications: Cell<u64>,
    expired_sessions_closed: Cell<u64>,
    requests_in_flight: Cell<u64>,
    /// In-flight requests per API key (keys below [`API_KEYS_TRACKED`]),
    /// for the log line of a stop whose drain timed out.
    in_flight_by_api: PerApiCounts,
    fsync: RefCell<Histogram>,
    isr_shrinks: Cell<u64>,
    isr_expands: Cell<u64>,
    replication_fetched_bytes: Cell<u64>,
    replica_fetches_denied: Cell<u64>,
    replication_copied_bytes: Cell<u64>,
    acks_all_wait: RefCell<Histogram>,
    /// Per quota type (`QuotaType::ALL` order): throttles answered.
    quota_throttles: [Cell<u64>; QUOTA_TYPES],
    /// Per quota type: throttle time answered, in ms.
    quota_throttle_ms: [Cell<u64>; QUOTA_TYPES],
}

/// Quota types counted (`quota::QuotaType::ALL`).
pub const QUOTA_TYPES: usize = crate::quota::QuotaType::ALL.len();

/// API keys whose in-flight requests are counted one by one (Kafka's keys
/// stay below 100); other keys count in the total only.
const API_KEYS_TRACKED: usize = 100;

/// One counter per tracked API key (`Default` is not derived for arrays
/// this long).
#[derive(Debug)]
struct PerApiCounts([Cell<u32>; API_KEYS_TRACKED]);

impl Default for PerApiCounts {
    fn default() -> Self {
        PerApiCounts(std::array::from_fn(|_| Cell::new(0)))
    }
}

thread_local! {
    static METRICS: ShardMetrics = ShardMetrics::default();
}

/// Runs `f` on this thread's (shard's) metrics.
fn with<R>(f: impl FnOnce(&ShardMetrics) -> R) -> R {
    METRICS.with(f)
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().saturating_add(n));
}

/// One request answered: its API, time to answer, and bytes in and out
/// (frames with their size prefix).
pub fn record_request(api_key: i16, elapsed: Duration, bytes_in: usize, bytes_out: usize) {
    with(|m| {
        m.requests
            .borrow_mut()
            .entry(api_key)
            .or_default()
            .observe(elapsed);
        add(&m.bytes_in, bytes_in as u64);
        add(&m.bytes_out, bytes_out as u64);
    })
}

/// One log flush's fdatasync took `elapsed` (see `storage::flush`).
pub fn record_fsync(elapsed: Duration) {
    with(|m| m.fsync.borrow_mut().observe(elapsed))
}

/// A SASL exchange ended: authenticated (`ok`) or refused.
pub fn authentication(ok: bool) {
    with(|m| {
        add(
            if ok {
                &m.authentications
            } else {
                &m.authentication_failures
            },
            1,
        )
    });
}

/// A SASL session was re-authenticated on its connection (KIP-368).
pub fn reauthentication() {
    with(|m| add(&m.reauthentications, 1));
}

/// A connection was closed because its SASL session ended before the
/// client re-authenticated (KIP-368; Kafka's expired-connections-killed).
pub fn expired_session_closed() {
    with(|m| add(&m.expired_sessions_closed, 1));
}

/// The ISR of a partition this shard leads changed in a snapshot: a
/// shrink (a follower dropped, by this leader or by a fence) or an
/// expansion (one added back).
pub fn record_isr_change(shrink: bool) {
    with(|m| match shrink {
        true => add(&m.isr_shrinks, 1),
        false => add(&m.isr_expands, 1),
    })
}

/// A replica fetch to this shard was refused (no CLUSTER_ACTION).
pub fn record_replica_fetch_denied() {
    with(|m| add(&m.replica_fetches_denied, 1))
}

/// A follower fetcher of this shard received `bytes` of record batches.
pub fn record_replication_fetch(bytes: usize) {
    with(|m| add(&m.replication_fetched_bytes, bytes as u64))
}

/// A follower of this shard copied `bytes` in user space after the
/// socket read while appending fetched batches (`ops::replication_metrics`).
pub fn record_replication_copy(bytes: usize) {
    with(|m| add(&m.replication_copied_bytes, bytes as u64))
}

/// An acks=all produce waited `elapsed` for the ISR (after its own durable
/// write), whatever the outcome.
pub fn record_acks_all_wait(elapsed: Duration) {
    with(|m| m.acks_all_wait.borrow_mut().observe(elapsed))
}

/// A request of a client over its `kind` quota was answered with a
/// throttle of `ms` (nothing is counted for 0).
pub fn record_quota_throttle(kind: crate::quota::QuotaType, ms: u64) {
    if ms == 0 {
        return;
    }
    let i = kind as usize;
    with(|m| {
        add(&m.quota_throttles[i], 1);
        add(&m.quota_throttle_ms[i], ms);
    })
}

/// A connection was accepted; the returned guard counts it open until dropped.
pub fn connection_opened() -> ConnectionGauge {
    with(|m| {
        add(&m.connections_accepted, 1);
        add(&m.connections_open, 1);
    });
    ConnectionGauge(())
}

/// Counts one open connection while it lives (on the shard that made it).
#[derive(Debug)]
pub struct ConnectionGauge(());

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        with(|m| {
            m.connections_open
                .set(m.connections_open.get().saturating_sub(1))
        });
    }
}

/// A message was sent to another shard.
pub fn cross_shard_message() {
    with(|m| add(&m.cross_shard_messages, 1));
}

/// A request of `api_key` started; the guard counts it in flight until
/// dropped (also when its task is cancelled). Graceful stop waits for this
/// to reach 0.
pub fn request_started(api_key: i16) -> InFlightGuard {
    let tracked = usize::try_from(api_key)
        .ok()
        .filter(|&k| k < API_KEYS_TRACKED);
    with(|m| {
        add(&m.requests_in_flight, 1);
        if let Some(k) = tracked {
            let c = &m.in_flight_by_api.0[k];
            c.set(c.get().saturating_add(1));
        }
    });
    InFlightGuard { tracked }
}

/// See [`request_started`].
#[derive(Debug)]
pub struct InFlightGuard {
    tracked: Option<usize>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        with(|m| {
            m.requests_in_flight
                .set(m.requests_in_flight.get().saturating_sub(1));
            if let Some(k) = self.tracked {
                let c = &m.in_flight_by_api.0[k];
                c.set(c.get().saturating_sub(1));
            }
        });
    }
}

/// The API keys with requests in flight on this shard, with their counts.
pub fn requests_in_flight_by_api() -> Vec<(i16, u32)> {
    with(|m| {
        (0..API_KEYS_TRACKED)
            .filter_map(|k| {
                let n = m.in_flight_by_api.0[k].get();
                (n > 0).then_some((k as i16, n))
            })
            .collect()
    })
}

/// Requests being handled on this shard now.
pub fn requests_in_flight() -> u64 {
    with(|m| m.requests_in_flight.get())
}

/// A `Send` copy of one shard's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Latency histogram (and so count) per API key.
    pub requests: BTreeMap<i16, Histogram>,
    /// Request bytes received.
    pub bytes_in: u64,
    /// Response bytes sent.
    pub bytes_out: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Messages sent to other shards.
    pub cross_shard_messages: u64,
    /// SASL authentications that succeeded.
    pub authentications: u64,
    /// SASL authentications refused (bad credentials, unknown user or
    /// mechanism, a SASL request out of order).
    pub authentication_failures: u64,
    /// SASL sessions re-authenticated on their connection (KIP-368).
    pub reauthentications: u64,
    /// Connections closed because their SASL session ended (KIP-368).
    pub expired_sessions_closed: u64,
    /// Requests being handled now.
    pub requests_in_flight: u64,
    /// Log flush fdatasync latency.
    pub fsync: Histogram,
    /// ISR shrinks of partitions this shard leads.
    pub isr_shrinks: u64,
    /// ISR expansions of partitions this shard leads.
    pub isr_expands: u64,
    /// Record bytes this shard's follower fetchers received.
    pub replication_fetched_bytes: u64,
    /// Replica fetches refused for want of CLUSTER_ACTION.
    pub replica_fetches_denied: u64,
    /// Bytes its followers copied in user space after the socket read
    /// while appending them.
    pub replication_copied_bytes: u64,
    /// acks=all waits for the ISR.
    pub acks_all_wait: Histogram,
    /// Throttles answered per quota type (`quota::QuotaType::ALL` order).
    pub quota_throttles: [u64; QUOTA_TYPES],
    /// Throttle time answered per quota type, in ms.
    pub quota_throttle_ms: [u64; QUOTA_TYPES],
}

/// This shard's counters, copied.
pub fn snapshot() -> MetricsSnapshot {
    with(|m| MetricsSnapshot {
        requests: m.requests.borrow().clone(),
        bytes_in: m.bytes_in.get(),
        bytes_out: m.bytes_out.get(),
        connections_accepted: m.connections_accepted.get(),
        connections_open: m.connections_open.get(),
        cross_shard_messages: m.cross_shard_messages.get(),
        authentications: m.authentications.get(),
        authentication_failures: m.authentication_failures.get(),
        reauthentications: m.reauthentications.get(),
        expired_sessions_closed: m.expired_sessions_closed.get(),
        requests_in_flight: m.requests_in_flight.get(),
        fsync: m.fsync.borrow().clone(),
        isr_shrinks: m.isr_shrinks.get(),
        isr_expands: m.isr_expands.get(),
        replication_fetched_bytes: m.replication_fetched_bytes.get(),
        replica_fetches_denied: m.replica_fetches_denied.get(),
        replication_copied_bytes: m.replication_copied_bytes.get(),
        acks_all_wait: m.acks_all_wait.borrow().clone(),
        quota_throttles: std::array::from_fn(|i| m.quota_throttles[i].get()),
        quota_throttle_ms: std::array::from_fn(|i| m.quota_throttle_ms[i].get()),
    })
}

/// The state of one partition, read on its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// What consumers may read up to: the durable end, or with replicas
    /// the ISR's (replication).
    pub high_watermark: i64,
    /// Next offset to assign (includes unflushed batches).
    pub log_end_offset: i64,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Bytes of batches in all segments.
    pub size_bytes: u64,
    /// Its replica set, when this broker leads other replicas of it.
    pub replication: Option<ReplicationStats>,
}

/// A led partition's replica set, for /metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStats {
    /// In-sync replicas (the leader included).
    pub isr: usize,
    /// Replicas.
    pub replicas: usize,
    /// Each follower's node id and how many offsets it is behind the
    /// leader's durable end (its whole log until it first fetches).
    pub follower_lag: Vec<(i32, i64)>,
    /// The longest any follower has not been caught up with the leader's
    /// durable end, ms (0 when all hold it): what the ISR rule compares
    /// with `replica.lag.time.max.ms`.
    pub lag_ms_max: u64,
}

/// What one shard reports to a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardReport {
    /// Shard index.
    pub shard: usize,
    /// Its counters.
    pub metrics: MetricsSnapshot,
    /// The partitions it owns.
    pub partitions: Vec<PartitionStats>,
    /// Which path served its partition reads (tail cache or disk).
    pub fetch: FetchMetrics,
    /// Bytes its tail cache holds now.
    pub tail_cache_bytes: u64,
    /// Its tail cache's byte budget.
    pub tail_cache_capacity_bytes: u64,
    /// Memory reserved for its tail cache at start.
    pub tail_cache_reserved_bytes: u64,
    /// Bytes of appended batches copied outside that reserve since start.
    pub tail_cache_unreserved_copy_bytes: u64,
    /// Fetch sessions (KIP-227) it keeps now.
    pub fetch_sessions_open: u64,
    /// Fetch sessions it opened since start.
    pub fetch_sessions_opened: u64,
    /// Fetch sessions it evicted to make room since start.
    pub fetch_session_evictions: u64,
    /// Incremental fetch requests it accepted since start.
    pub fetch_session_incremental_requests: u64,
}

/// Lag of one group on one partition (see `group::lag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLagStats {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed_offset: i64,
    /// Lag in records; -1 when the partition's end is unknown.
    pub lag: i64,
}

/// Whole-process values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident memory, if known.
    pub resident_memory_bytes: Option<u64>,
    /// What the C allocator holds, if known.
    pub allocator: Option<AllocatorStats>,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Whether start-up finished and no stop began.
    pub ready: bool,
}

/// The C allocator's view of the heap (glibc `mallinfo2`, all arenas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes in blocks handed out and not yet freed (arena chunks in use
    /// plus mmap'ed blocks).
    pub allocated_bytes: u64,
    /// Bytes the allocator holds from the kernel (arena heap plus mmap'ed
    /// blocks); the difference to `allocated_bytes` is free-list slack.
    pub mapped_bytes: u64,
}

/// Reads the allocator's totals. glibc's `mallinfo2` walks each arena's
/// free lists under the arena lock: cheap at scrape rate, not for a hot
/// path. `None` on other C libraries.
pub fn allocator_stats() -> Option<AllocatorStats> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 has no preconditions; it returns a plain struct.
        let info = unsafe { libc::mallinfo2() };
        let mmapped = info.hblkhd as u64;
        Some(AllocatorStats {
            allocated_bytes: info.uordblks as u64 + mmapped,
            mapped_bytes: info.arena as u64 + mmapped,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Escapes a label value (backslash, double quote, newline).
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_histogram_buckets() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_micros(101));
        h.observe(Duration::from_secs(100));
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[BUCKETS], 1);
        assert_eq!(h.count, 3);
    }

    #[test]
    fn metrics_thread_local_counters() {
        record_request(3, Duration::from_millis(1), 100, 200);
        let guard = request_started(1);
        let _untracked = request_started(-1);
        assert_eq!(requests_in_flight(), 2);
        assert_eq!(requests_in_flight_by_api(), vec![(1, 1)]);
        drop(guard);
        assert_eq!(requests_in_flight_by_api(), vec![]);
        drop(_untracked);
        let s = snapshot();
        assert_eq!(s.requests[&3].count, 1);
        assert_eq!(
            (s.bytes_in, s.bytes_out, s.requests_in_flight),
            (100, 200, 0)
        );
    }

    #[test]
    fn metrics_fsync_histogram_and_allocator_stats() {
        record_fsync(Duration::from_micros(300));
        record_fsync(Duration::from_millis(20));
        let s = snapshot();
        assert_eq!(s.fsync.count, 2);
        assert_eq!(s.fsync.buckets[2], 1); // 300 us is in (250, 500]
                                           // other test threads allocate concurrently: only bounds that hold
                                           // whatever they do
        let held = std::hint::black_box(vec![7u8; 4 << 20]);
        let b = allocator_stats().expect("glibc target");
        assert!(b.allocated_bytes >= 4 << 20, "{b:?}");
        assert!(b.mapped_bytes >= b.allocated_bytes, "{b:?}");
        drop(held);
    }
}
