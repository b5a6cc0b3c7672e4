//! `GET /v1/overview`: brokers (from a Metadata request, as a client sees
//! them), per-shard throughput in and out, partitions per shard and disk
//! use (from the shards' metric reports, which the Kafka protocol lacks).
//!
//! Rates come from a short history of samples kept on shard 0: a sample is
//! taken when a console call asks and the newest is older than
//! [`SAMPLE_INTERVAL`]; a rate is the difference to the oldest sample
//! within [`RATE_SPAN`]. The history (at most [`SAMPLES_MAX`]) also feeds
//! the console's live charts, so a fresh page shows recent minutes at once.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataRequest;
use serde_json::json;

use super::{kafka, ConsoleResult};
use crate::ops::admin::shard_report;
use crate::ops::metrics::ShardReport;
use crate::shard::Shard;

/// Least time between two stored samples.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Span a rate is measured over (at most).
const RATE_SPAN: Duration = Duration::from_secs(10);
/// Samples kept (at one per second, about five minutes).
const SAMPLES_MAX: usize = 300;
/// Metadata version the console speaks.
const METADATA_VERSION: i16 = 12;

/// One reading of the counters.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    unix_ms: i64,
    /// Per shard: bytes in, bytes out.
    shard_bytes: Vec<(u64, u64)>,
    /// Per topic: sum of partition high watermarks.
    topic_offsets: BTreeMap<String, i64>,
}

thread_local! {
    static SAMPLES: RefCell<VecDeque<Sample>> = const { RefCell::new(VecDeque::new()) };
}

/// Every shard's report, in shard order.
pub(super) async fn reports(shard: &Rc<Shard>) -> Vec<ShardReport> {
    let jobs = (0..shard.shard_count())
        .map(|target| shard.run_on(target, |s| async move { shard_report(&s) }));
    futures::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Rates derived from the samples: per shard (bytes/s in, out) and per
/// topic (messages/s).
#[derive(Debug, Default)]
pub(super) struct Rates {
    /// Per shard: bytes per second in, out.
    pub(super) shard_bytes_per_s: Vec<(f64, f64)>,
    /// Per topic: messages per second produced.
    pub(super) topic_messages_per_s: BTreeMap<String, f64>,
}

/// Records `reports` as a sample (if due) and returns the rates.
pub(super) fn observe(reports: &[ShardReport]) -> Rates {
    let now = Instant::now();
    let mut topic_offsets = BTreeMap::new();
    for p in reports.iter().flat_map(|r| &r.partitions) {
        *topic_offsets.entry(p.topic.clone()).or_insert(0) += p.high_watermark;
    }
    let sample = Sample {
        at: now,
        unix_ms: crate::clock::wall_ms(),
        shard_bytes: reports
            .iter()
            .map(|r| (r.metrics.bytes_in, r.metrics.bytes_out))
            .collect(),
        topic_offsets,
    };
    SAMPLES.with(|samples| {
        let mut samples = samples.borrow_mut();
        let base = samples
            .iter()
            .find(|s| now.duration_since(s.at) <= RATE_SPAN)
            .cloned();
        let rates = base.map(|b| rates_between(&b, &sample)).unwrap_or_default();
        let due = samples
            .back()
            .is_none_or(|last| now.duration_since(last.at) >= SAMPLE_INTERVAL);
        if due {
            samples.push_back(sample);
            while samples.len() > SAMPLES_MAX {
                samples.pop_front();
            }
        }
        rates
    })
}

fn rates_between(old: &Sample, new: &Sample) -> Rates {
    let seconds = new.at.duration_since(old.at).as_secs_f64();
    if seconds <= 0.0 {
        return Rates::default();
    }
    let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
    Rates {
        shard_bytes_per_s: new
            .shard_bytes
            .iter()
            .zip(&old.shard_bytes)
            .map(|(n, o)| (per_s(o.0, n.0), per_s(o.1, n.1)))
            .collect(),
        topic_messages_per_s: new
            .topic_offsets
            .iter()
            .map(|(t, n)| {
                let o = old.topic_offsets.get(t).copied().unwrap_or(*n);
                (t.clone(), (n - o).max(0) as f64 / seconds)
            })
            .collect(),
    }
}

/// Per-second byte rates of every shard between consecutive samples, for
/// the live charts: `[{t, in, out}]` per shard.
fn history() -> Vec<Vec<serde_json::Value>> {
    SAMPLES.with(|samples| {
        let samples = samples.borrow();
        let shards = samples.back().map_or(0, |s| s.shard_bytes.len());
        (0..shards)
            .map(|shard| {
                samples
                    .iter()
                    .zip(samples.iter().skip(1))
                    .filter_map(|(a, b)| {
                        let rates = rates_between(a, b);
                        let (i, o) = rates.shard_bytes_per_s.get(shard)?;
                        Some(json!({ "t": b.unix_ms, "in": i, "out": o }))
                    })
                    .collect()
            })
            .collect()
    })
}

/// The overview document.
pub(super) async fn overview(shard: &Rc<Shard>) -> ConsoleResult {
    let metadata = kafka::call(shard, METADATA_VERSION, &MetadataRequest::default()).await?;
    let brokers: Vec<_> = metadata
        .brokers
        .iter()
        .map(|b| {
            json!({
                "node_id": b.node_id.0,
                "host": b.host.as_str(),
                "port": b.port,
                "rack": b.rack.as_ref().map(|r| r.as_str()),
                "controller": b.node_id == metadata.controller_id,
            })
        })
        .collect();
    let reports = reports(shard).await;
    let rates = observe(&reports);
    let shards: Vec<_> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (rate_in, rate_out) = rates.shard_bytes_per_s.get(i).copied().unwrap_or_default();
            json!({
                "shard": r.shard,
                "partitions": r.partitions.len(),
                "disk_bytes": r.partitions.iter().map(|p| p.size_bytes).sum::<u64>(),
                "bytes_in_total": r.metrics.bytes_in,
                "bytes_out_total": r.metrics.bytes_out,
                "bytes_in_per_s": rate_in,
                "bytes_out_per_s": rate_out,
                "connections_open": r.metrics.connections_open,
            })
        })
        .collect();
    let topics = reports
        .iter()
        .flat_map(|r| &r.partitions)
        .map(|p| p.topic.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(json!({
        "cluster_id": metadata.cluster_id.as_ref().map(|c| c.as_str()),
        "controller_id": metadata.controller_id.0,
        "brokers": brokers,
        "topics": topics,
        "shards": shards,
        "disk_bytes": reports.iter().flat_map(|r| &r.partitions).map(|p| p.size_bytes).sum::<u64>(),
        "history": history(),
        "sample_interval_ms": SAMPLE_INTERVAL.as_millis() as u64,
    }))
}
