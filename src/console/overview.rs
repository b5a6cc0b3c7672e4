//! `GET /v1/overview`: the brokers with their state (DescribeCluster v2,
//! fenced brokers included) and the controller quorum (DescribeQuorum:
//! leader, epoch, high watermark, each voter's log end and lag), as
//! `corestream cluster info` shows them; the topic count (Metadata); and
//! per-shard throughput in and out, partitions per shard and disk use
//! (from the shards' metric reports, which the Kafka protocol lacks).
//!
//! The brokers and quorum come from Kafka requests, so any node answers
//! for the whole cluster (DescribeQuorum is forwarded to the active
//! controller), and both need DESCRIBE on the cluster, as the page does
//! (`access`). A single node is its own only broker and voter at epoch 0
//! with no Raft log (`handlers::describe_quorum`): it renders the same
//! way. "Shutting down" is not a state of its own: a controlled shutdown
//! fences the broker at once (`cluster::controller`), so it shows fenced.
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

use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest};
use serde_json::json;

use super::{kafka, ConsoleError, ConsoleResult};
use crate::handlers::describe_quorum::CLUSTER_METADATA_TOPIC;
use crate::ops::admin::shard_report;
use crate::ops::metrics::ShardReport;
use crate::shard::Shard;

/// Least time between two stored samples.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Span a rate is measured over (at most).
const RATE_SPAN: Duration = Duration::from_secs(10);
/// Samples kept (at one per second, about five minutes).
const SAMPLES_MAX: usize = 300;
/// DescribeCluster version the console speaks (v2: fenced brokers).
const DESCRIBE_CLUSTER_VERSION: i16 = 2;
/// DescribeQuorum version the console speaks.
const DESCRIBE_QUORUM_VERSION: i16 = 1;
/// DescribeCluster's endpoint type for brokers (KIP-919).
const ENDPOINT_TYPE_BROKER: i8 = 1;

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

/// Brokers as DescribeCluster v2 reports them, fenced ones included
/// (KIP-1073), with the controller marked: `(brokers, controller id,
/// cluster id)`.
async fn brokers(
    shard: &Rc<Shard>,
) -> Result<(Vec<serde_json::Value>, i32, Option<String>), ConsoleError> {
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(ENDPOINT_TYPE_BROKER)
        .with_include_fenced_brokers(true);
    let answer = kafka::call(shard, DESCRIBE_CLUSTER_VERSION, &request).await?;
    kafka::check_message(
        answer.error_code,
        answer.error_message.as_ref(),
        "describe the cluster",
    )?;
    let controller = answer.controller_id.0;
    let mut brokers: Vec<_> = answer
        .brokers
        .iter()
        .map(|b| {
            json!({
                "node_id": b.broker_id.0,
                "host": b.host.as_str(),
                "port": b.port,
                "rack": b.rack.as_ref().map(|r| r.as_str()),
                "controller": b.broker_id.0 == controller,
                "fenced": b.is_fenced,
                "state": if b.is_fenced { "fenced" } else { "unfenced" },
                "local": b.broker_id.0 == shard.config.node_id,
            })
        })
        .collect();
    brokers.sort_by_key(|b| b["node_id"].as_i64());
    let cluster_id = Some(answer.cluster_id.to_string()).filter(|c| !c.is_empty());
    Ok((brokers, controller, cluster_id))
}

/// The controller quorum as DescribeQuorum reports it (the active
/// controller answers; `corestream cluster info` shows the same): leader,
/// epoch (the Raft term), high watermark (the committed index) and each
/// voter's log end (matched index) and lag in entries behind the leader
/// (null when unknown). A quorum without a leader (an election) is an
/// `error` field, not a failed overview.
async fn quorum(shard: &Rc<Shard>) -> Result<serde_json::Value, ConsoleError> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(kafka::topic_name(CLUSTER_METADATA_TOPIC))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let answer = kafka::call(shard, DESCRIBE_QUORUM_VERSION, &request).await?;
    kafka::check(answer.error_code, "describe the quorum")?;
    let partition = answer
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .next()
        .ok_or_else(|| ConsoleError::Internal("DescribeQuorum: no partition".into()))?;
    if let Err(e) = kafka::check(partition.error_code, "describe the quorum") {
        return Ok(json!({ "error": e.to_string() }));
    }
    let (last_log_index, voters) = crate::cli::cluster::voter_progress(partition);
    let unknown_as_null = |n: i64| if n < 0 { None } else { Some(n) };
    Ok(json!({
        "leader_id": partition.leader_id.0,
        "epoch": partition.leader_epoch,
        "high_watermark": unknown_as_null(partition.high_watermark),
        "last_log_index": unknown_as_null(last_log_index),
        "voters": voters.iter().map(|&(id, log_end, lag)| json!({
            "id": id,
            "log_end_offset": unknown_as_null(log_end),
            "lag": unknown_as_null(lag),
        })).collect::<Vec<_>>(),
    }))
}

/// The overview document.
pub(super) async fn overview(shard: &Rc<Shard>) -> ConsoleResult {
    let (brokers, controller_id, cluster_id) = brokers(shard).await?;
    let quorum = quorum(shard).await?;
    // The topics the console's principal may see, cluster-wide (the
    // shard reports below hold this node's partitions only).
    let topics = kafka::metadata(shard, None).await?.topics.len();
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
    Ok(json!({
        "cluster_id": cluster_id,
        "controller_id": controller_id,
        "node_id": shard.config.node_id,
        "cluster_mode": shard.snapshot().cluster.is_some(),
        "brokers": brokers,
        "quorum": quorum,
        "topics": topics,
        "shards": shards,
        "disk_bytes": reports.iter().flat_map(|r| &r.partitions).map(|p| p.size_bytes).sum::<u64>(),
        "history": history(),
        "sample_interval_ms": SAMPLE_INTERVAL.as_millis() as u64,
    }))
}
