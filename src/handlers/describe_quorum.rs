//! DescribeQuorum (key 55), v0-2 (KIP-595, KIP-836, KIP-853): the
//! controller quorum's leader, term, committed index, each voter's
//! progress, the observers and (v2) the voters' controller listeners,
//! what `kafka-metadata-quorum describe --status/--replication` and
//! `corestream cluster info` show.
//!
//! Decisions:
//! - A broker forwards it to the active controller (through its shard 0's
//!   `cluster::member::Member::describe_quorum`), as Kafka's brokers do:
//!   only the Raft leader knows how far each voter has replicated.
//! - The quorum is Kafka's `__cluster_metadata` partition 0; a request
//!   for anything else gets UNKNOWN_TOPIC_OR_PARTITION for it, as Kafka's
//!   Raft client answers.
//! - Raft log indexes are reported as they are: LeaderEpoch is the Raft
//!   term, HighWatermark the committed index, a voter's LogEndOffset the
//!   index of the last entry the leader knows it holds (-1 when unknown).
//! - Timestamps (v1+) come from `cluster::quorum`: a voter's
//!   LastFetchTimestamp is the last heartbeat or append it acknowledged
//!   (openraft's leader metrics; the leader: now), its
//!   LastCaughtUpTimestamp that time when it then held the leader's last
//!   entry; -1 where not known (no acknowledgement this term, or behind
//!   now: openraft keeps no history of when it last was caught up).
//! - Observers are the registered, unfenced brokers that are not voters.
//!   They do not replicate the Raft log (brokers receive the metadata as a
//!   state), so their LogEndOffset and LastCaughtUpTimestamp are -1 and
//!   their LastFetchTimestamp is their last heartbeat to the controller.
//! - v2: ReplicaDirectoryId is the zero UUID for every replica, as Kafka
//!   answers for a static quorum (`controller.quorum.voters`, no KIP-853
//!   directory ids; the voter set cannot change while running here).
//!   Nodes lists each voter's controller listener as `CONTROLLER` (the
//!   name Kafka's docs give `controller.listener.names`), host and port
//!   from `--controller-quorum-voters`; observers have none (Kafka lists
//!   voters' endpoints only). The top-level ErrorMessage is null.
//! - A single node (no `--controller-quorum-voters`) has no Raft log; it
//!   answers itself as the only voter and leader at term 0 with no
//!   entries (HighWatermark and LogEndOffset -1), so tools still see who
//!   the controller is.
//! - With no reachable controller the partition's error is
//!   NOT_LEADER_OR_FOLLOWER (Kafka's answer while the quorum has no
//!   leader), and the client retries.

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::cluster::quorum::{ObserverStatus, QuorumStatus, VoterStatus};
use crate::shard::METADATA_OWNER_SHARD;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeQuorum,
    min: 0,
    max: 2,
};

/// The listener name v2's Nodes give every voter's controller endpoint.
pub const CONTROLLER_LISTENER_NAME: &str = "CONTROLLER";

/// The metadata log's topic name in Kafka (KIP-595).
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";
/// Its only partition.
const CLUSTER_METADATA_PARTITION: i32 = 0;

/// Answers DescribeQuorum.
pub async fn handle(ctx: &RequestContext, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let asks_quorum = matches!(
        request.topics.as_slice(),
        [t] if t.topic_name.0.as_str() == CLUSTER_METADATA_TOPIC
            && matches!(t.partitions.as_slice(), [p] if p.partition_index == CLUSTER_METADATA_PARTITION)
    );
    if !asks_quorum {
        let answer = refused(&request, ResponseError::UnknownTopicOrPartition);
        return fit_version(answer, ctx.version);
    }
    // Kafka's authorizer: DESCRIBE on the cluster.
    if !ctx.authorize_cluster(crate::security::acl::Operation::Describe) {
        let answer = refused(&request, ResponseError::ClusterAuthorizationFailed);
        return fit_version(answer, ctx.version);
    }
    let node_id = ctx.shard.config.node_id;
    let status = ctx
        .shard
        .run_on(METADATA_OWNER_SHARD, |shard| async move {
            match shard.cluster_member() {
                Some(member) => Some(member.describe_quorum().await),
                None => None,
            }
        })
        .await;
    let (partition, nodes) = match status {
        // A single node: itself, no Raft log.
        Some(None) => (single_node(node_id), Vec::new()),
        Some(Some(Ok(status))) => (from_status(&status), nodes(&status)),
        Some(Some(Err(e))) => {
            tracing::debug!("DescribeQuorum: no active controller answered: {e}");
            (partition_error(ResponseError::NotLeaderOrFollower), Vec::new())
        }
        None => (partition_error(ResponseError::NotLeaderOrFollower), Vec::new()),
    };
    let answer = DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(CLUSTER_METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes);
    fit_version(answer, ctx.version)
}

/// Below v2 the fields v2 added (Nodes, the ErrorMessages) stay at the
/// crate's defaults, which is all it encodes there; from v2 an
/// ErrorMessage without an error is null, as Kafka answers (the crate's
/// default is "").
fn fit_version(mut answer: DescribeQuorumResponse, version: i16) -> DescribeQuorumResponse {
    let partitions = answer.topics.iter_mut().flat_map(|t| t.partitions.iter_mut());
    if version < 2 {
        let unset = PartitionData::default().error_message;
        for p in partitions {
            p.error_message = unset.clone();
        }
        answer.nodes.clear();
        answer.error_message = DescribeQuorumResponse::default().error_message;
        return answer;
    }
    for p in partitions.filter(|p| p.error_code == 0) {
        p.error_message = None;
    }
    if answer.error_code == 0 {
        answer.error_message = None;
    }
    answer
}

/// Every asked partition refused with `error`.
fn refused(request: &DescribeQuorumRequest, error: ResponseError) -> DescribeQuorumResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            TopicData::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| partition_error(error).with_partition_index(p.partition_index))
                        .collect(),
                )
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

fn partition_error(error: ResponseError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(CLUSTER_METADATA_PARTITION)
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(error.to_string())))
        .with_leader_id(BrokerId(-1))
        .with_leader_epoch(-1)
        .with_high_watermark(-1)
}

/// Raft ids are `u64`, Kafka's node ids `i32`; node ids come from
/// `--node-id`, an `i32`, so this only saturates on a corrupt value.
fn node(id: u64) -> BrokerId {
    BrokerId(i32::try_from(id).unwrap_or(i32::MAX))
}

/// A replica's state; unknown values are -1 (module doc). The directory
/// id stays the zero UUID (static quorum).
fn replica(
    id: BrokerId,
    log_end_offset: i64,
    last_fetch_ms: Option<i64>,
    last_caught_up_ms: Option<i64>,
) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(id)
        .with_log_end_offset(log_end_offset)
        .with_last_fetch_timestamp(last_fetch_ms.unwrap_or(-1))
        .with_last_caught_up_timestamp(last_caught_up_ms.unwrap_or(-1))
}

fn from_status(status: &QuorumStatus) -> PartitionData {
    let voters = status
        .voters
        .iter()
        .map(|v: &VoterStatus| {
            replica(
                node(v.id),
                v.matched_index.map_or(-1, |m| m as i64),
                v.last_fetch_ms,
                v.last_caught_up_ms,
            )
        })
        .collect();
    let observers = status
        .observers
        .iter()
        .map(|o: &ObserverStatus| replica(BrokerId(o.id), -1, o.last_heartbeat_ms, None))
        .collect();
    PartitionData::default()
        .with_partition_index(CLUSTER_METADATA_PARTITION)
        .with_leader_id(status.leader_id.map_or(BrokerId(-1), node))
        .with_leader_epoch(i32::try_from(status.term).unwrap_or(i32::MAX))
        .with_high_watermark(status.committed_index as i64)
        .with_current_voters(voters)
        .with_observers(observers)
}

/// v2's Nodes: each voter's controller listener; a voter whose address
/// is not HOST:PORT (it was validated at start, so only a corrupt
/// membership) is listed without one.
fn nodes(status: &QuorumStatus) -> Vec<Node> {
    status
        .voters
        .iter()
        .map(|v| {
            let listener = v
                .addr
                .as_deref()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                .map(|(host, port)| {
                    Listener::default()
                        .with_name(StrBytes::from_static_str(CONTROLLER_LISTENER_NAME))
                        .with_host(StrBytes::from_string(
                            host.trim_start_matches('[').trim_end_matches(']').to_string(),
                        ))
                        .with_port(port)
                });
            Node::default()
                .with_node_id(node(v.id))
                .with_listeners(listener.into_iter().collect())
        })
        .collect()
}

fn single_node(node_id: i32) -> PartitionData {
    PartitionData::default()
        .with_partition_index(CLUSTER_METADATA_PARTITION)
        .with_leader_id(BrokerId(node_id))
        .with_leader_epoch(0)
        .with_high_watermark(-1)
        .with_current_voters(vec![replica(BrokerId(node_id), -1, None, None)])
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;

    fn status() -> QuorumStatus {
        QuorumStatus {
            node_id: 2,
            leader_id: Some(2),
            term: 5,
            committed_index: 41,
            last_log_index: 42,
            applied_index: 41,
            voters: vec![
                VoterStatus {
                    id: 1,
                    matched_index: Some(40),
                    lag_entries: Some(2),
                    addr: Some("127.0.0.1:19093".into()),
                    last_fetch_ms: Some(1_000),
                    last_caught_up_ms: None,
                },
                VoterStatus {
                    id: 2,
                    matched_index: Some(42),
                    lag_entries: Some(0),
                    addr: Some("[::1]:19094".into()),
                    last_fetch_ms: Some(2_000),
                    last_caught_up_ms: Some(2_000),
                },
                VoterStatus {
                    id: 3,
                    matched_index: None,
                    lag_entries: None,
                    addr: Some("not an address".into()),
                    last_fetch_ms: None,
                    last_caught_up_ms: None,
                },
            ],
            observers: vec![ObserverStatus {
                id: 4,
                last_heartbeat_ms: Some(1_500),
            }],
        }
    }

    #[test]
    fn describe_quorum_v0_v1_reports_leader_term_and_voter_progress() {
        let p = from_status(&status());
        assert_eq!((p.leader_id.0, p.leader_epoch, p.high_watermark), (2, 5, 41));
        let voters: Vec<_> = p
            .current_voters
            .iter()
            .map(|v| (v.replica_id.0, v.log_end_offset))
            .collect();
        assert_eq!(voters, vec![(1, 40), (2, 42), (3, -1)]);
        // both versions encode and decode it
        let response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(CLUSTER_METADATA_TOPIC)))
            .with_partitions(vec![p])]);
        for version in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).expect("encodes");
            let back = DescribeQuorumResponse::decode(&mut buf.freeze(), version).expect("decodes");
            let p = &back.topics[0].partitions[0];
            assert_eq!((p.leader_id.0, p.current_voters.len()), (2, 3), "v{version}");
        }
    }

    #[test]
    fn describe_quorum_v2_nodes_directory_ids_observers_and_timestamps_round_trip() {
        let status = status();
        let response = DescribeQuorumResponse::default()
            .with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(CLUSTER_METADATA_TOPIC)))
                .with_partitions(vec![from_status(&status)])])
            .with_nodes(nodes(&status));
        let mut buf = bytes::BytesMut::new();
        fit_version(response.clone(), 2)
            .encode(&mut buf, 2)
            .expect("encodes");
        let back = DescribeQuorumResponse::decode(&mut buf.freeze(), 2).expect("decodes");
        let p = &back.topics[0].partitions[0];
        let times: Vec<_> = p
            .current_voters
            .iter()
            .map(|v| (v.replica_id.0, v.last_fetch_timestamp, v.last_caught_up_timestamp))
            .collect();
        assert_eq!(times, vec![(1, 1_000, -1), (2, 2_000, 2_000), (3, -1, -1)]);
        assert_eq!(p.error_message, None, "null without an error, as Kafka answers");
        assert_eq!(back.error_message, None);
        assert!(p
            .current_voters
            .iter()
            .all(|v| v.replica_directory_id == uuid::Uuid::nil()));
        let observers: Vec<_> = p
            .observers
            .iter()
            .map(|o| (o.replica_id.0, o.log_end_offset, o.last_fetch_timestamp, o.last_caught_up_timestamp))
            .collect();
        assert_eq!(observers, vec![(4, -1, 1_500, -1)]);
        let listeners: Vec<_> = back
            .nodes
            .iter()
            .map(|n| {
                let l: Vec<_> = n
                    .listeners
                    .iter()
                    .map(|l| (l.name.to_string(), l.host.to_string(), l.port))
                    .collect();
                (n.node_id.0, l)
            })
            .collect();
        assert_eq!(
            listeners,
            vec![
                (1, vec![("CONTROLLER".into(), "127.0.0.1".into(), 19093)]),
                (2, vec![("CONTROLLER".into(), "::1".into(), 19094)]),
                (3, vec![]),
            ]
        );
        // v1 carries the timestamps but not the nodes.
        let mut buf = bytes::BytesMut::new();
        fit_version(response, 1)
            .encode(&mut buf, 1)
            .expect("encodes");
        let v1 = DescribeQuorumResponse::decode(&mut buf.freeze(), 1).expect("decodes");
        assert!(v1.nodes.is_empty());
        assert_eq!(v1.topics[0].partitions[0].current_voters[1].last_caught_up_timestamp, 2_000);
    }

    #[test]
    fn describe_quorum_no_leader_known_and_single_node() {
        let p = from_status(&QuorumStatus {
            leader_id: None,
            ..status()
        });
        assert_eq!(p.leader_id.0, -1);
        let p = single_node(7);
        assert_eq!((p.leader_id.0, p.leader_epoch, p.high_watermark), (7, 0, -1));
        assert_eq!(p.current_voters[0].replica_id.0, 7);
    }

    #[test]
    fn describe_quorum_v0_v1_v2_errors_encode_at_every_version() {
        // An error's message is a v2 field: below v2 it is left out.
        let answer = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(CLUSTER_METADATA_TOPIC)))
            .with_partitions(vec![partition_error(ResponseError::NotLeaderOrFollower)])]);
        for version in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            fit_version(answer.clone(), version)
                .encode(&mut buf, version)
                .expect("encodes");
            let back = DescribeQuorumResponse::decode(&mut buf.freeze(), version).expect("decodes");
            let p = &back.topics[0].partitions[0];
            assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code(), "v{version}");
            // Below v2 the decoder gives the crate's default, "".
            let message = p.error_message.as_ref().is_some_and(|m| !m.is_empty());
            assert_eq!(message, version >= 2, "v{version}");
        }
    }

    #[test]
    fn describe_quorum_other_partition_refused_unknown() {
        use kafka_protocol::messages::describe_quorum_request;
        let request = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(3),
                ]),
        ]);
        let r = refused(&request, ResponseError::UnknownTopicOrPartition);
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.partition_index, p.error_code),
            (3, ResponseError::UnknownTopicOrPartition.code())
        );
    }
}
