//! OffsetForLeaderEpoch (key 23), v2-4: where a leader epoch ends in a
//! partition's log (KIP-101, KIP-279). Kafka 4.0 serves v2-4 (KIP-896
//! removed v0-1). Followers ask it to find a divergent tail; consumers
//! (KIP-320, librdkafka and the Java client) ask it after a metadata or
//! leader change to validate their position against log truncation.
//!
//! Each partition goes to its owner shard (`PartitionOp::
//! OffsetForLeaderEpoch`), which makes Kafka's CurrentLeaderEpoch check
//! (FENCED_LEADER_EPOCH below, UNKNOWN_LEADER_EPOCH above, -1 none) and
//! answers from the log's leader-epoch cache: the largest epoch `<=` the
//! requested one and where it ends (the log end offset for the latest
//! epoch), or -1/-1 when unknown. A partition led by another broker is
//! NOT_LEADER_OR_FOLLOWER, an unknown one UNKNOWN_TOPIC_OR_PARTITION, as
//! in Kafka. Errors carry leader_epoch -1 and end_offset -1.

use crate::security::acl::{Operation, ResourceType};
use futures::future::join_all;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::shard::{PartitionOp, PartitionReply};
use crate::storage::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::OffsetForLeaderEpoch,
    min: 2,
    max: 4,
};

/// Answers OffsetForLeaderEpoch.
pub async fn handle(
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let snapshot = ctx.shard.snapshot();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic.0.clone();
        let snapshot = &snapshot;
        // Kafka: a follower's request (ReplicaId >= 0) needs CLUSTER_ACTION
        // on the cluster, a client's DESCRIBE on the topic.
        let allowed = match request.replica_id.0 >= 0 {
            true => ctx.authorize_cluster(Operation::ClusterAction),
            false => ctx.authorize(Operation::Describe, ResourceType::Topic, &name),
        };
        let calls = topic.partitions.into_iter().map(|p| {
            let id = snapshot.partition_id(&name, p.partition);
            async move {
                if !allowed {
                    return error(p.partition, ResponseError::TopicAuthorizationFailed.code());
                }
                let Some(id) = id else {
                    return error(p.partition, ResponseError::UnknownTopicOrPartition.code());
                };
                let op = PartitionOp::OffsetForLeaderEpoch {
                    current_leader_epoch: p.current_leader_epoch,
                    leader_epoch: p.leader_epoch,
                };
                match ctx.shard.call_partition(id, op).await {
                    PartitionReply::EpochEndOffset {
                        leader_epoch,
                        end_offset,
                    } => EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(leader_epoch)
                        .with_end_offset(end_offset),
                    PartitionReply::Error(code) => error(p.partition, code),
                    _ => error(p.partition, ResponseError::UnknownServerError.code()),
                }
            }
        });
        let partitions = join_all(calls).await;
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn error(partition: i32, code: i16) -> EpochEndOffset {
    EpochEndOffset::default()
        .with_partition(partition)
        .with_error_code(code)
        .with_leader_epoch(UNDEFINED_EPOCH)
        .with_end_offset(UNDEFINED_EPOCH_OFFSET)
}
