//! `corestream cluster info`: the cluster id, the controller quorum, every
//! broker with its state, and the API versions each one serves
//! (kafka-broker-api-versions plus kafka-metadata-quorum's `--status` and
//! `--replication` in one).
//!
//! The quorum comes from DescribeQuorum (key 55), which any broker forwards
//! to the active controller; broker states from DescribeCluster v2 with
//! fenced brokers included. Both are Kafka APIs, so this also works
//! against a Kafka cluster; a broker that serves neither (an older Kafka)
//! gets the rest of the report without them.

use clap::Subcommand;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::PartitionData as QuorumPartition;
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeQuorumRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::{render_table, Output};
use super::topics::{api_versions_of, API_VERSIONS_HEADERS};

/// Highest DescribeQuorum version this client fills in and reads.
const DESCRIBE_QUORUM_VERSION_MAX: i16 = 1;
/// Highest DescribeCluster version this client fills in and reads (v2:
/// fenced brokers, KIP-1073).
const DESCRIBE_CLUSTER_VERSION_MAX: i16 = 2;
/// DescribeCluster's endpoint type for brokers (KIP-919).
const ENDPOINT_TYPE_BROKER: i8 = 1;
/// Kafka's metadata log, the quorum's one partition (KIP-595).
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// Cluster commands.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller quorum, brokers and their states, and the
    /// API versions each broker serves.
    Info,
}

/// Runs a cluster command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: ClusterCommand) -> Result<(), ClientError> {
    match cmd {
        ClusterCommand::Info => info(cluster, out),
    }
}

/// The quorum as the active controller reports it.
struct Quorum {
    leader_id: i32,
    term: i32,
    committed_index: i64,
    /// The leader's last log index (its own LogEndOffset), -1 unknown.
    last_log_index: i64,
    /// (voter, matched index, lag); -1 when unknown.
    voters: Vec<(i32, i64, i64)>,
}

fn quorum(cluster: &mut Cluster) -> Result<Option<Quorum>, ClientError> {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(CLUSTER_METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let answer = match cluster
        .bootstrap
        .send(&request, DESCRIBE_QUORUM_VERSION_MAX)
    {
        Err(ClientError::Unsupported { .. }) => return Ok(None),
        other => other?,
    };
    check(answer.error_code, || "DescribeQuorum".into())?;
    let Some(p) = answer.topics.first().and_then(|t| t.partitions.first()) else {
        return Ok(None);
    };
    check(p.error_code, || {
        "DescribeQuorum of the metadata partition".into()
    })?;
    let (last_log_index, voters) = voter_progress(p);
    Ok(Some(Quorum {
        leader_id: p.leader_id.0,
        term: p.leader_epoch,
        committed_index: p.high_watermark,
        last_log_index,
        voters,
    }))
}

/// From a DescribeQuorum partition answer: the leader's last log index
/// (its own LogEndOffset; -1 unknown) and, per voter, (id, matched index,
/// entries behind the leader), -1 where unknown. The console's overview
/// shows the same figures.
pub fn voter_progress(p: &QuorumPartition) -> (i64, Vec<(i32, i64, i64)>) {
    let last_log_index = p
        .current_voters
        .iter()
        .find(|v| v.replica_id == p.leader_id)
        .map_or(-1, |v| v.log_end_offset);
    let voters = p
        .current_voters
        .iter()
        .map(|v| {
            let known = v.log_end_offset >= 0 && last_log_index >= 0;
            let lag = if known {
                (last_log_index - v.log_end_offset).max(0)
            } else {
                -1
            };
            (v.replica_id.0, v.log_end_offset, lag)
        })
        .collect();
    (last_log_index, voters)
}

/// (node, address, fenced) of every registered broker: DescribeCluster v2
/// with fenced brokers, else Metadata's live brokers.
fn broker_states(
    cluster: &mut Cluster,
    md: &MetadataResponse,
) -> Result<Vec<(i32, String, bool)>, ClientError> {
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(ENDPOINT_TYPE_BROKER)
        .with_include_fenced_brokers(true);
    let version = cluster
        .bootstrap
        .version::<DescribeClusterRequest>(DESCRIBE_CLUSTER_VERSION_MAX);
    let mut states: Vec<_> = match version {
        Ok(2) => {
            let answer = cluster.bootstrap.send_at(&request, 2)?;
            check(answer.error_code, || "DescribeCluster".into())?;
            answer
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.broker_id.0,
                        format!("{}:{}", b.host.as_str(), b.port),
                        b.is_fenced,
                    )
                })
                .collect()
        }
        _ => md
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    format!("{}:{}", b.host.as_str(), b.port),
                    false,
                )
            })
            .collect(),
    };
    states.sort();
    Ok(states)
}

fn state_name(fenced: bool) -> &'static str {
    match fenced {
        true => "fenced",
        false => "registered",
    }
}

fn info(cluster: &mut Cluster, out: &Output) -> Result<(), ClientError> {
    let md = cluster.metadata(Some(&[]))?;
    let cluster_id = md.cluster_id.as_ref().map(|c| c.to_string());
    let controller = md.controller_id.0;
    let quorum = quorum(cluster)?;
    let states = broker_states(cluster, &md)?;
    let (api_rows, brokers) = api_versions_of(cluster, &md)?;
    if out.json {
        let quorum = quorum.as_ref().map(|q| {
            json!({
                "leader_id": q.leader_id, "term": q.term,
                "committed_index": q.committed_index, "last_log_index": q.last_log_index,
                "voters": q.voters.iter().map(|(id, matched, lag)| json!({
                    "id": id, "matched_index": matched, "lag": lag,
                })).collect::<Vec<_>>(),
            })
        });
        let states: Vec<_> = states
            .iter()
            .map(|(id, addr, fenced)| json!({"node_id": id, "address": addr, "state": state_name(*fenced)}))
            .collect();
        let answer = json!({
            "cluster_id": cluster_id, "controller_id": controller, "quorum": quorum,
            "broker_states": states, "brokers": brokers,
        });
        println!("{answer}");
        return Ok(());
    }
    let id = cluster_id.as_deref().unwrap_or("(none)");
    println!(
        "cluster {id}, controller {controller}, {} broker(s)",
        md.brokers.len()
    );
    if let Some(q) = &quorum {
        println!(
            "quorum: leader {}, term {}, committed index {}, last log index {}",
            q.leader_id, q.term, q.committed_index, q.last_log_index
        );
        let rows: Vec<_> = q
            .voters
            .iter()
            .map(|(id, matched, lag)| vec![id.to_string(), matched.to_string(), lag.to_string()])
            .collect();
        print!(
            "{}",
            render_table(&["VOTER", "MATCHED INDEX", "LAG"], &rows)
        );
    }
    let rows: Vec<_> = states
        .iter()
        .map(|(id, addr, fenced)| vec![id.to_string(), addr.clone(), state_name(*fenced).into()])
        .collect();
    print!("{}", render_table(&["BROKER", "ADDRESS", "STATE"], &rows));
    print!("{}", render_table(&API_VERSIONS_HEADERS, &api_rows));
    Ok(())
}
