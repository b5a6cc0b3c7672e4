//! Exposition tests: expected lines, and a well-formedness check of the
//! whole text.

use std::collections::BTreeMap;
use std::time::Duration;

use super::render;
use crate::ops::metrics::MetricsSnapshot;
use crate::ops::metrics::{GroupLagStats, Histogram, PartitionStats, ProcessStats, ShardReport};

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
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
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
