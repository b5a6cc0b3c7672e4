//! Prometheus text exposition (format 0.0.4) of a scrape: what each shard
//! reported (`ops::metrics::ShardReport`), every group's lag and the
//! process's own values.
//!
//! Every family is declared (HELP, TYPE) even when it has no sample yet,
//! so a dashboard or alert written against a fresh broker finds its names;
//! `tests/integration/test_metrics.py` parses the output with the
//! Prometheus client's parser and checks every family listed in issue 7.

use std::fmt::Write as _;

use kafka_protocol::messages::ApiKey;

use super::metrics::{
    escape_label, GroupLagStats, Histogram, PartitionStats, ProcessStats, ShardReport,
    LATENCY_BUCKETS_US,
};

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
    fn(&ShardReport) -> u64,
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
    let per_shard: [ShardFamily; 28] = [
        (
            "corestream_isr_shrinks_total",
            "counter",
            "ISR shrinks of partitions this shard leads (a follower fell behind or its broker was fenced).",
            |r| r.metrics.isr_shrinks,
        ),
        (
            "corestream_isr_expands_total",
            "counter",
            "ISR expansions of partitions this shard leads (a follower caught up).",
            |r| r.metrics.isr_expands,
        ),
        (
            "corestream_replication_fetched_bytes_total",
            "counter",
            "Record bytes this shard's followers fetched from their leaders.",
            |r| r.metrics.replication_fetched_bytes,
        ),
        (
            "corestream_replica_fetches_denied_total",
            "counter",
            "Replica fetches refused: the follower's principal lacks CLUSTER_ACTION.",
            |r| r.metrics.replica_fetches_denied,
        ),
        (
            "corestream_bytes_received_total",
            "counter",
            "Request bytes received.",
            |r| r.metrics.bytes_in,
        ),
        (
            "corestream_bytes_sent_total",
            "counter",
            "Response bytes sent.",
            |r| r.metrics.bytes_out,
        ),
        (
            "corestream_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            |r| r.metrics.connections_accepted,
        ),
        (
            "corestream_authentications_total",
            "counter",
            "SASL authentications that succeeded.",
            |r| r.metrics.authentications,
        ),
        (
            "corestream_authentication_failures_total",
            "counter",
            "SASL authentications refused (client address and reason in the log).",
            |r| r.metrics.authentication_failures,
        ),
        (
            "corestream_reauthentications_total",
            "counter",
            "SASL sessions re-authenticated on their connection (KIP-368).",
            |r| r.metrics.reauthentications,
        ),
        (
            "corestream_expired_sessions_closed_total",
            "counter",
            "Connections closed because their SASL session ended before the client re-authenticated (connections_max_reauth_ms).",
            |r| r.metrics.expired_sessions_closed,
        ),
        (
            "corestream_connections_open",
            "gauge",
            "Client connections open.",
            |r| r.metrics.connections_open,
        ),
        (
            "corestream_cross_shard_messages_total",
            "counter",
            "Messages sent to other shards.",
            |r| r.metrics.cross_shard_messages,
        ),
        (
            "corestream_requests_in_flight",
            "gauge",
            "Requests being handled.",
            |r| r.metrics.requests_in_flight,
        ),
        (
            "corestream_tail_cache_hits_total",
            "counter",
            "Partition reads answered from the in-memory tail cache.",
            |r| r.fetch.tail_cache_reads(),
        ),
        (
            "corestream_tail_cache_misses_total",
            "counter",
            "Partition reads the tail cache could not answer (read from disk).",
            |r| r.fetch.disk_reads(),
        ),
        (
            "corestream_tail_cache_hit_bytes_total",
            "counter",
            "Record bytes answered from the tail cache.",
            |r| r.fetch.tail_cache_bytes(),
        ),
        (
            "corestream_tail_cache_miss_bytes_total",
            "counter",
            "Record bytes read from disk because the tail cache lacked them.",
            |r| r.fetch.disk_bytes(),
        ),
        (
            "corestream_fetch_splice_bytes_total",
            "counter",
            "Record bytes sent from segment files with io_uring splice (no user-space copy).",
            |r| r.fetch.splice_bytes(),
        ),
        (
            "corestream_fetch_copy_fallback_bytes_total",
            "counter",
            "Record bytes copied in user space on the cold fetch path (fallbacks; expected 0).",
            |r| r.fetch.copy_fallback_bytes(),
        ),
        (
            "corestream_tail_cache_bytes",
            "gauge",
            "Bytes of batches the tail cache holds.",
            |r| r.tail_cache_bytes,
        ),
        (
            "corestream_tail_cache_capacity_bytes",
            "gauge",
            "Byte budget of the tail cache.",
            |r| r.tail_cache_capacity_bytes,
        ),
        (
            "corestream_tail_cache_reserved_bytes",
            "gauge",
            "Memory reserved (mapped and touched) for the tail cache at start.",
            |r| r.tail_cache_reserved_bytes,
        ),
        (
            "corestream_tail_cache_unreserved_copy_bytes_total",
            "counter",
            "Appended batch bytes copied to the heap, outside the reserve (batches over 1 MiB, or the reserve full).",
            |r| r.tail_cache_unreserved_copy_bytes,
        ),
        (
            "corestream_fetch_sessions_open",
            "gauge",
            "Fetch sessions (KIP-227) kept.",
            |r| r.fetch_sessions_open,
        ),
        (
            "corestream_fetch_sessions_opened_total",
            "counter",
            "Fetch sessions opened.",
            |r| r.fetch_sessions_opened,
        ),
        (
            "corestream_fetch_session_evictions_total",
            "counter",
            "Fetch sessions evicted to make room for a new one.",
            |r| r.fetch_session_evictions,
        ),
        (
            "corestream_fetch_session_incremental_requests_total",
            "counter",
            "Incremental fetch requests (KIP-227) accepted.",
            |r| r.fetch_session_incremental_requests,
        ),
    ];
    for (name, kind, help, get) in per_shard {
        family(&mut out, name, kind, help);
        for r in reports {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", r.shard, get(r));
        }
    }
    render_quota_throttles(&mut out, reports);
    render_fsync(&mut out, reports);
    render_partitions(&mut out, reports);
    render_replication(&mut out, reports);
    super::replication_metrics::render(&mut out, reports);
    render_lags(&mut out, lags);
    out
}

/// Client quota throttles per shard and quota type (`produce`, `fetch`,
/// `request`): how many answers were throttled and for how long in all.
fn render_quota_throttles(out: &mut String, reports: &[ShardReport]) {
    use crate::quota::QuotaType;
    type Read = fn(&ShardReport, usize) -> String;
    let families: [(&str, &str, Read); 2] = [
        (
            "corestream_quota_throttles_total",
            "Answers throttled for a client quota (KIP-219: throttle_time_ms set, connection muted).",
            |r, i| r.metrics.quota_throttles[i].to_string(),
        ),
        (
            "corestream_quota_throttle_seconds_total",
            "Throttle time answered for client quotas.",
            |r, i| format!("{:.3}", r.metrics.quota_throttle_ms[i] as f64 / 1000.0),
        ),
    ];
    for (name, help, get) in families {
        family(out, name, "counter", help);
        for r in reports {
            for (i, kind) in QuotaType::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\",quota_type=\"{}\"}} {}",
                    r.shard,
                    kind.label(),
                    get(r, i)
                );
            }
        }
    }
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
    if let Some(a) = process.allocator {
        family(
            out,
            "corestream_allocator_allocated_bytes",
            "gauge",
            "Heap bytes allocated and not freed (glibc mallinfo2).",
        );
        let _ = writeln!(
            out,
            "corestream_allocator_allocated_bytes {}",
            a.allocated_bytes
        );
        family(
            out,
            "corestream_allocator_mapped_bytes",
            "gauge",
            "Heap bytes the allocator holds from the kernel (glibc mallinfo2).",
        );
        let _ = writeln!(out, "corestream_allocator_mapped_bytes {}", a.mapped_bytes);
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
            render_histogram(out, name, &labels, h);
        }
    }
}

/// One histogram's `_bucket` (cumulative, seconds), `_sum` and `_count` lines.
fn render_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
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

fn render_fsync(out: &mut String, reports: &[ShardReport]) {
    let name = "corestream_fsync_latency_seconds";
    family(
        out,
        name,
        "histogram",
        "Time of one log flush's fdatasync, per shard.",
    );
    for r in reports {
        render_histogram(
            out,
            name,
            &format!("shard=\"{}\"", r.shard),
            &r.metrics.fsync,
        );
    }
    let name = "corestream_acks_all_wait_seconds";
    family(
        out,
        name,
        "histogram",
        "Time an acks=all produce waited for the ISR after the leader's durable write, per shard.",
    );
    for r in reports {
        let labels = format!("shard=\"{}\"", r.shard);
        render_histogram(out, name, &labels, &r.metrics.acks_all_wait);
    }
}

fn render_partitions(out: &mut String, reports: &[ShardReport]) {
    let gauges: [PartitionFamily; 4] = [
        (
            "corestream_partition_high_watermark",
            "Offset consumers can read up to (with replicas: what the ISR holds).",
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

/// Replication of the partitions this broker leads (issue 21): under
/// replicated (ISR smaller than the replica set) and each follower's lag.
fn render_replication(out: &mut String, reports: &[ShardReport]) {
    let led = || {
        reports.iter().flat_map(|r| {
            r.partitions
                .iter()
                .filter_map(move |p| p.replication.as_ref().map(|s| (r.shard, p, s)))
        })
    };
    family(
        out,
        "corestream_partition_under_replicated",
        "gauge",
        "1 when a partition this broker leads has fewer in-sync replicas than replicas.",
    );
    for (shard, p, s) in led() {
        let _ = writeln!(
            out,
            "corestream_partition_under_replicated{{topic=\"{}\",partition=\"{}\",shard=\"{shard}\"}} {}",
            escape_label(&p.topic),
            p.partition,
            u8::from(s.isr < s.replicas)
        );
    }
    family(
        out,
        "corestream_replica_lag_offsets",
        "gauge",
        "Offsets a follower is behind the leader's durable end.",
    );
    for (shard, p, s) in led() {
        for (replica, lag) in &s.follower_lag {
            let _ = writeln!(
                out,
                "corestream_replica_lag_offsets{{topic=\"{}\",partition=\"{}\",shard=\"{shard}\",replica=\"{replica}\"}} {lag}",
                escape_label(&p.topic),
                p.partition,
            );
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
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::ops::metrics::MetricsSnapshot;

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
                replication: Some(crate::ops::metrics::ReplicationStats {
                    isr: 2,
                    replicas: 3,
                    follower_lag: vec![(2, 0), (3, 7)],
                    lag_ms_max: 0,
                }),
            }],
            tail_cache_bytes: 4096,
            tail_cache_reserved_bytes: 8 << 20,
            ..Default::default()
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
            "corestream_partition_under_replicated{topic=\"t\",partition=\"2\",shard=\"1\"} 1",
            "corestream_replica_lag_offsets{topic=\"t\",partition=\"2\",shard=\"1\",replica=\"3\"} 7",
            "corestream_group_lag{group=\"g\\\"1\",topic=\"t\",partition=\"2\"} 2",
            "# TYPE corestream_fsync_latency_seconds histogram",
            "corestream_fsync_latency_seconds_count{shard=\"1\"} 0",
            "corestream_tail_cache_hits_total{shard=\"1\"} 0",
            "corestream_tail_cache_bytes{shard=\"1\"} 4096",
            "corestream_tail_cache_reserved_bytes{shard=\"1\"} 8388608",
            "corestream_tail_cache_unreserved_copy_bytes_total{shard=\"1\"} 0",
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
}
