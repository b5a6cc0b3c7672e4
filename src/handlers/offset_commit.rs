//! OffsetCommit (key 8), v0-9 (v0-1 through `handlers::legacy`, as v2).
//! Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION here; the
//! rest go to the group's coordinator shard, which checks member and
//! generation and answers after the offsets are durable in
//! `__consumer_offsets`.

use crate::security::acl::{Operation, ResourceType};
use std::collections::HashMap;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::coordinator::Committer;
use crate::group::on_coordinator;
use crate::group::records::OffsetValue;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::OffsetCommit,
    min: 0,
    max: 9,
};

/// One partition's offset as a commit request names it.
pub(super) struct RequestedOffset {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) leader_epoch: i32,
    pub(super) metadata: Option<String>,
}

/// Codes decided before the coordinator (invalid group id, unknown
/// partition) by (topic, partition), and the offsets to send it. Shared
/// with TxnOffsetCommit.
#[allow(clippy::type_complexity)]
pub(super) fn sort_offsets(
    ctx: &RequestContext,
    group_id: &str,
    requested: impl Iterator<Item = RequestedOffset>,
) -> (HashMap<(String, i32), i16>, Vec<(String, i32, OffsetValue)>) {
    let snapshot = ctx.shard.snapshot();
    let now_ms = crate::clock::wall_ms();
    let mut decided = HashMap::new();
    let mut to_commit = Vec::new();
    // Kafka: READ on the group, then READ on each topic.
    let group_allowed = ctx.authorize(Operation::Read, ResourceType::Group, group_id);
    for r in requested {
        let count = snapshot.topic(&r.topic).map(|t| t.partition_count());
        let key = (r.topic.clone(), r.partition);
        if group_id.is_empty() {
            decided.insert(key, ResponseError::InvalidGroupId.code());
        } else if !group_allowed {
            decided.insert(key, ResponseError::GroupAuthorizationFailed.code());
        } else if !ctx.authorize(Operation::Read, ResourceType::Topic, &r.topic) {
            decided.insert(key, ResponseError::TopicAuthorizationFailed.code());
        } else if !count.is_some_and(|c| (0..c).contains(&r.partition)) {
            decided.insert(key, ResponseError::UnknownTopicOrPartition.code());
        } else {
            let value = OffsetValue {
                offset: r.offset,
                leader_epoch: r.leader_epoch,
                metadata: r.metadata.unwrap_or_default(),
                commit_timestamp_ms: now_ms,
            };
            to_commit.push((r.topic, r.partition, value));
        }
    }
    (decided, to_commit)
}

/// Answers OffsetCommit.
pub async fn handle(ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let requested = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| RequestedOffset {
            topic: t.name.0.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if ctx.version >= 6 {
                p.committed_leader_epoch
            } else {
                -1
            },
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
        })
    });
    let (mut decided, to_commit) = sort_offsets(ctx, &group_id, requested);
    if !to_commit.is_empty() {
        let committer = Committer {
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: request.generation_id_or_member_epoch,
        };
        let keys: Vec<(String, i32)> = to_commit.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let group = group_id.clone();
        let codes = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
            shard
                .groups
                .commit(&shard, partition, &group, committer, to_commit)
                .await
        })
        .await
        .unwrap_or_else(|code| vec![code; keys.len()]);
        decided.extend(keys.into_iter().zip(codes));
    }
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = decided
                        .get(&(name.clone(), p.partition_index))
                        .copied()
                        .unwrap_or(ResponseError::UnknownServerError.code());
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn offset_commit_response_encodes_at_every_version() {
        let crate_min = <OffsetCommitResponse as kafka_protocol::protocol::Message>::VERSIONS.min;
        for version in crate_min..=API.max {
            let r = OffsetCommitResponse::default().with_topics(vec![
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![OffsetCommitResponsePartition::default()
                        .with_partition_index(1)
                        .with_error_code(22)]),
            ]);
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
