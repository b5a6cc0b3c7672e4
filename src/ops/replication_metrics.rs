//! Replication families rendered for `/metrics` apart from `exposition`,
//! so they can grow without that file's list of families growing with
//! them: follower lag in time and the bytes followers copy in user space.
//!
//! **Lag in time** (issue 21 item 7) is what the ISR rule compares with
//! `replica.lag.time.max.ms` (`shard::partition::follower_progress`): how
//! long a follower has not been caught up with its leader's durable end,
//! 0 when it holds it. A follower is dropped from the ISR once this passes
//! the limit, so an alert on it fires before the ISR shrinks. Label
//! cardinality: one gauge per led partition (the longest lag over its
//! followers, not one series per follower: the per-follower view is
//! `corestream_replica_lag_offsets`) and one per shard (the longest over
//! the partitions it leads), which is what a dashboard plots.
//!
//! **Copies**: `corestream_replication_copied_bytes_total` counts the bytes
//! a follower shard copied in user space after reading them from the
//! socket, while appending what it fetched (`Partition::append_replica`);
//! divided by `corestream_replication_fetched_bytes_total` it is the copies
//! per replicated byte that docs/BENCHMARKS.md reports.

use std::fmt::Write as _;

use super::metrics::{escape_label, ShardReport};

/// Per led partition: the longest follower lag in time.
pub const PARTITION_FAMILY: &str = "corestream_partition_replica_lag_seconds";
/// Per shard: the longest follower lag over the partitions it leads.
pub const SHARD_FAMILY: &str = "corestream_replica_lag_seconds_max";

/// Milliseconds per second, for the seconds the families are in.
const MS_PER_S: f64 = 1_000.0;

/// Per shard: bytes copied in user space after the socket read.
pub const COPIED_FAMILY: &str = "corestream_replication_copied_bytes_total";

/// Appends the families (declared even with no led partition).
pub fn render(out: &mut String, reports: &[ShardReport]) {
    render_lag(out, reports);
    let _ = writeln!(
        out,
        "# HELP {COPIED_FAMILY} Bytes this shard's followers copied in user space after the socket read while appending fetched batches (the tail-cache copy and the O_DIRECT buffer copy)."
    );
    let _ = writeln!(out, "# TYPE {COPIED_FAMILY} counter");
    for r in reports {
        let _ = writeln!(
            out,
            "{COPIED_FAMILY}{{shard=\"{}\"}} {}",
            r.shard, r.metrics.replication_copied_bytes
        );
    }
}

fn render_lag(out: &mut String, reports: &[ShardReport]) {
    let _ = writeln!(
        out,
        "# HELP {PARTITION_FAMILY} Longest time a follower of a partition this broker leads has not been caught up with the leader's log end (0: all hold it); the ISR drops a follower past replica.lag.time.max.ms."
    );
    let _ = writeln!(out, "# TYPE {PARTITION_FAMILY} gauge");
    for r in reports {
        for p in &r.partitions {
            let Some(s) = &p.replication else { continue };
            let _ = writeln!(
                out,
                "{PARTITION_FAMILY}{{topic=\"{}\",partition=\"{}\",shard=\"{}\"}} {}",
                escape_label(&p.topic),
                p.partition,
                r.shard,
                s.lag_ms_max as f64 / MS_PER_S
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP {SHARD_FAMILY} Longest follower lag in time over the partitions a shard leads, seconds."
    );
    let _ = writeln!(out, "# TYPE {SHARD_FAMILY} gauge");
    for r in reports {
        let max = r
            .partitions
            .iter()
            .filter_map(|p| p.replication.as_ref().map(|s| s.lag_ms_max))
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{SHARD_FAMILY}{{shard=\"{}\"}} {}",
            r.shard,
            max as f64 / MS_PER_S
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::metrics::{PartitionStats, ReplicationStats};

    fn partition(index: i32, lag_ms_max: Option<u64>) -> PartitionStats {
        PartitionStats {
            topic: "t\"x".into(),
            partition: index,
            high_watermark: 0,
            log_end_offset: 0,
            log_start_offset: 0,
            size_bytes: 0,
            replication: lag_ms_max.map(|lag_ms_max| ReplicationStats {
                isr: 3,
                replicas: 3,
                follower_lag: Vec::new(),
                lag_ms_max,
            }),
        }
    }

    #[test]
    fn replica_lag_seconds_per_led_partition_and_max_per_shard() {
        let reports = vec![
            ShardReport {
                shard: 0,
                partitions: vec![
                    partition(0, Some(1_500)),
                    partition(1, Some(250)),
                    // Followed or single-replica: no lag series.
                    partition(2, None),
                ],
                ..Default::default()
            },
            ShardReport {
                shard: 1,
                ..Default::default()
            },
        ];
        let mut text = String::new();
        render(&mut text, &reports);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(COPIED_FAMILY))
            .collect();
        assert_eq!(
            lines,
            vec![
                "corestream_partition_replica_lag_seconds{topic=\"t\\\"x\",partition=\"0\",shard=\"0\"} 1.5",
                "corestream_partition_replica_lag_seconds{topic=\"t\\\"x\",partition=\"1\",shard=\"0\"} 0.25",
                "corestream_replica_lag_seconds_max{shard=\"0\"} 1.5",
                "corestream_replica_lag_seconds_max{shard=\"1\"} 0",
            ]
        );
        assert!(text.contains("# TYPE corestream_partition_replica_lag_seconds gauge"));
        assert!(text.contains("# TYPE corestream_replica_lag_seconds_max gauge"));
    }

    #[test]
    fn replication_copied_bytes_total_per_shard() {
        let mut report = ShardReport {
            shard: 3,
            ..Default::default()
        };
        report.metrics.replication_copied_bytes = 8_192;
        let mut text = String::new();
        render(&mut text, &[report]);
        assert!(text
            .lines()
            .any(|l| l == "corestream_replication_copied_bytes_total{shard=\"3\"} 8192"));
        assert!(text.contains("# TYPE corestream_replication_copied_bytes_total counter"));
    }
}
