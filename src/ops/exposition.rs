//! Prometheus text exposition (format 0.0.4) of a scrape: what each shard
//! reported (`ops::metrics::ShardReport`), every group's lag and the
//! process's own values.
//!
//! Every family is declared (HELP, TYPE) even when it has no sample yet,
//! so a dashboard or alert written against a fresh broker finds its names;
//! `tests/integration/test_metrics.py` parses the output with the
//! Prometheus client's parser and checks every family listed in issue 7.
//!
//! This file holds `render`, the per-shard counter table and the request,
//! fsync, partition and replication families; the process's own families
//! (`process.rs`), client quota throttles (`quotas.rs`) and group lag
//! (`lags.rs`) sit beside it, with the tests (`tests.rs`).

mod lags;
mod process;
mod quotas;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use kafka_protocol::messages::ApiKey;

use self::lags::render_lags;
use self::process::render_process;
use self::quotas::render_quota_throttles;
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
