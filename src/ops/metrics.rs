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

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Upper bounds of the request latency buckets, in microseconds (the last
/// bucket, +Inf, is implicit).
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
    requests_in_flight: Cell<u64>,
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

/// A request started; the guard counts it in flight until dropped (also
/// when its task is cancelled). Graceful stop waits for this to reach 0.
pub fn request_started() -> InFlightGuard {
    with(|m| add(&m.requests_in_flight, 1));
    InFlightGuard(())
}

/// See [`request_started`].
#[derive(Debug)]
pub struct InFlightGuard(());

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        with(|m| {
            m.requests_in_flight
                .set(m.requests_in_flight.get().saturating_sub(1))
        });
    }
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
    /// Requests being handled now.
    pub requests_in_flight: u64,
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
        requests_in_flight: m.requests_in_flight.get(),
    })
}

/// The state of one partition, read on its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Durable end of the log (what consumers see).
    pub high_watermark: i64,
    /// Next offset to assign (includes unflushed batches).
    pub log_end_offset: i64,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Bytes of batches in all segments.
    pub size_bytes: u64,
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
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Whether start-up finished and no stop began.
    pub ready: bool,
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

fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("Unknown{key}"))
}

/// A per-shard counter family: name, type, help, and how to read it.
type ShardFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&MetricsSnapshot) -> u64,
);
/// A per-partition gauge family: name, help, and how to read it.
type PartitionFamily = (&'static str, &'static str, fn(&PartitionStats) -> String);

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders a scrape in the Prometheus text exposition format (0.0.4).
pub fn render(reports: &[ShardReport], lags: &[GroupLagStats], process: &ProcessStats) -> String {
    let mut out = String::new();
    render_process(&mut out, reports.len(), process);
    render_requests(&mut out, reports);
    let per_shard: [ShardFamily; 6] = [
        (
            "corestream_bytes_received_total",
            "counter",
            "Request bytes received.",
            |m| m.bytes_in,
        ),
        (
            "corestream_bytes_sent_total",
            "counter",
            "Response bytes sent.",
            |m| m.bytes_out,
        ),
        (
            "corestream_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            |m| m.connections_accepted,
        ),
        (
            "corestream_connections_open",
            "gauge",
            "Client connections open.",
            |m| m.connections_open,
        ),
        (
            "corestream_cross_shard_messages_total",
            "counter",
            "Messages sent to other shards.",
            |m| m.cross_shard_messages,
        ),
        (
            "corestream_requests_in_flight",
            "gauge",
            "Requests being handled.",
            |m| m.requests_in_flight,
        ),
    ];
    for (name, kind, help, get) in per_shard {
        family(&mut out, name, kind, help);
        for r in reports {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", r.shard, get(&r.metrics));
        }
    }
    render_partitions(&mut out, reports);
    render_lags(&mut out, lags);
    out
}

fn render_process(out: &mut String, shards: usize, process: &ProcessStats) {
    family(
        out,
        "corestream_shards",
        "gauge",
        "Shards (executors) running.",
    );
    let _ = writeln!(out, "corestream_shards {shards}");
    family(
        out,
        "corestream_ready",
        "gauge",
        "1 once start-up finished and no stop began.",
    );
    let _ = writeln!(out, "corestream_ready {}", u8::from(process.ready));
    family(
        out,
        "corestream_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    let _ = writeln!(
        out,
        "corestream_uptime_seconds {:.3}",
        process.uptime_seconds
    );
    if let Some(rss) = process.resident_memory_bytes {
        family(
            out,
            "corestream_resident_memory_bytes",
            "gauge",
            "Resident memory of the process.",
        );
        let _ = writeln!(out, "corestream_resident_memory_bytes {rss}");
    }
}

fn render_requests(out: &mut String, reports: &[ShardReport]) {
    family(
        out,
        "corestream_requests_total",
        "counter",
        "Requests answered, per shard and API.",
    );
    for r in reports {
        for (key, h) in &r.metrics.requests {
            let _ = writeln!(
                out,
                "corestream_requests_total{{shard=\"{}\",api=\"{}\"}} {}",
                r.shard,
                api_name(*key),
                h.count
            );
        }
    }
    let name = "corestream_request_latency_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from a request's arrival to its answer.",
    );
    for r in reports {
        for (key, h) in &r.metrics.requests {
            let labels = format!("shard=\"{}\",api=\"{}\"", r.shard, api_name(*key));
            let mut cumulative = 0;
            for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
                cumulative += h.buckets[i];
                let le = *bound as f64 / 1e6;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_us as f64 / 1e6);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
    }
}

fn render_partitions(out: &mut String, reports: &[ShardReport]) {
    let gauges: [PartitionFamily; 4] = [
        (
            "corestream_partition_high_watermark",
            "Durable end offset consumers can read.",
            |p| p.high_watermark.to_string(),
        ),
        (
            "corestream_partition_log_end_offset",
            "Next offset to be assigned.",
            |p| p.log_end_offset.to_string(),
        ),
        (
            "corestream_partition_log_start_offset",
            "First offset still in the log.",
            |p| p.log_start_offset.to_string(),
        ),
        (
            "corestream_partition_size_bytes",
            "Bytes of record batches on disk.",
            |p| p.size_bytes.to_string(),
        ),
    ];
    for (name, help, get) in gauges {
        family(out, name, "gauge", help);
        for r in reports {
            for p in &r.partitions {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{}\",partition=\"{}\",shard=\"{}\"}} {}",
                    escape_label(&p.topic),
                    p.partition,
                    r.shard,
                    get(p)
                );
            }
        }
    }
}

fn render_lags(out: &mut String, lags: &[GroupLagStats]) {
    family(
        out,
        "corestream_group_lag",
        "gauge",
        "Records between a group's committed offset and the high watermark.",
    );
    for l in lags {
        let _ = writeln!(
            out,
            "corestream_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
            escape_label(&l.group),
            escape_label(&l.topic),
            l.partition,
            l.lag
        );
    }
    family(
        out,
        "corestream_group_committed_offset",
        "gauge",
        "A group's committed offset.",
    );
    for l in lags {
        let _ = writeln!(
            out,
            "corestream_group_committed_offset{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
            escape_label(&l.group),
            escape_label(&l.topic),
            l.partition,
            l.committed_offset
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<ShardReport>, Vec<GroupLagStats>) {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(80));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let metrics = MetricsSnapshot {
            requests: BTreeMap::from([(0, h)]),
            bytes_in: 10,
            bytes_out: 20,
            ..Default::default()
        };
        let reports = vec![ShardReport {
            shard: 1,
            metrics,
            partitions: vec![PartitionStats {
                topic: "t".into(),
                partition: 2,
                high_watermark: 5,
                log_end_offset: 5,
                log_start_offset: 0,
                size_bytes: 300,
            }],
        }];
        let lags = vec![GroupLagStats {
            group: "g\"1".into(),
            topic: "t".into(),
            partition: 2,
            committed_offset: 3,
            lag: 2,
        }];
        (reports, lags)
    }

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
    fn metrics_text_format_lines() {
        let (reports, lags) = sample();
        let text = render(&reports, &lags, &ProcessStats::default());
        for line in [
            "# TYPE corestream_requests_total counter",
            "corestream_requests_total{shard=\"1\",api=\"Produce\"} 3",
            "corestream_request_latency_seconds_bucket{shard=\"1\",api=\"Produce\",le=\"0.0001\"} 1",
            "corestream_request_latency_seconds_bucket{shard=\"1\",api=\"Produce\",le=\"0.005\"} 2",
            "corestream_request_latency_seconds_bucket{shard=\"1\",api=\"Produce\",le=\"+Inf\"} 3",
            "corestream_request_latency_seconds_count{shard=\"1\",api=\"Produce\"} 3",
            "corestream_bytes_received_total{shard=\"1\"} 10",
            "corestream_partition_high_watermark{topic=\"t\",partition=\"2\",shard=\"1\"} 5",
            "corestream_partition_size_bytes{topic=\"t\",partition=\"2\",shard=\"1\"} 300",
            "corestream_group_lag{group=\"g\\\"1\",topic=\"t\",partition=\"2\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn metrics_text_format_is_well_formed() {
        let (reports, lags) = sample();
        let text = render(&reports, &lags, &ProcessStats::default());
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(
                    typed.insert(name.to_string()),
                    "family {name} declared twice"
                );
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family), "sample {line:?} before its TYPE");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
    }

    #[test]
    fn metrics_thread_local_counters() {
        record_request(3, Duration::from_millis(1), 100, 200);
        let guard = request_started();
        assert_eq!(requests_in_flight(), 1);
        drop(guard);
        let s = snapshot();
        assert_eq!(s.requests[&3].count, 1);
        assert_eq!(
            (s.bytes_in, s.bytes_out, s.requests_in_flight),
            (100, 200, 0)
        );
    }
}
