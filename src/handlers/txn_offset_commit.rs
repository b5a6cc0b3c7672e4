//! TxnOffsetCommit (key 28), v0-4: a transactional producer commits a
//! group's offsets inside its transaction. Checked first with the
//! transaction coordinator (the group's offsets partition must be in the
//! producer's ongoing transaction, KIP-890 part 1), then written by the
//! group coordinator as the producer's transactional batch and held until
//! the marker (`group::txn_offsets`). v3+ names the member and generation,
//! checked like OffsetCommit's when the generation is not -1. v4 only adds
//! an error code this broker never returns.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::offset_commit::{sort_offsets, RequestedOffset};
use super::{ApiSpec, RequestContext};
use crate::group::coordinator::Committer;
use crate::group::{coordinator_for, on_coordinator, OFFSETS_TOPIC};
use crate::metadata::PartitionId;
use crate::txn::state::for_version;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::TxnOffsetCommit,
    min: 0,
    max: 4,
};

/// First version whose clients understand PRODUCER_FENCED (KIP-588).
const FENCED_SINCE_VERSION: i16 = 3;

/// Answers TxnOffsetCommit.
pub async fn handle(
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let requested = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| RequestedOffset {
            topic: t.name.0.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if ctx.version >= 2 {
                p.committed_leader_epoch
            } else {
                -1
            },
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
        })
    });
    // Kafka: WRITE on the transactional id first (every partition fails
    // without it); READ on the group and topics in `sort_offsets`.
    let txn_allowed =
        ctx.authorize(Operation::Write, ResourceType::TransactionalId, &request.transactional_id.0);
    let (mut decided, mut to_commit) = sort_offsets(ctx, &group_id, requested);
    if !txn_allowed {
        let refused = ResponseError::TransactionalIdAuthorizationFailed.code();
        decided.values_mut().for_each(|code| *code = refused);
        decided.extend(to_commit.drain(..).map(|(t, p, _)| ((t, p), refused)));
    }
    if !to_commit.is_empty() {
        let keys: Vec<(String, i32)> = to_commit.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let codes = match verify(ctx, &request, &group_id).await {
            Err(code) => vec![for_version(code, ctx.version, FENCED_SINCE_VERSION); keys.len()],
            Ok(()) => {
                let committer = Committer {
                    member_id: request.member_id.to_string(),
                    group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
                    generation: if ctx.version >= 3 {
                        request.generation_id
                    } else {
                        -1
                    },
                };
                let group = group_id.clone();
                on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
                    shard
                        .groups
                        .commit_txn(&shard, partition, &group, producer, committer, to_commit)
                        .await
                })
                .await
                .unwrap_or_else(|code| vec![code; keys.len()])
            }
        };
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
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The group's offsets partition must be in the producer's transaction.
async fn verify(
    ctx: &RequestContext,
    request: &TxnOffsetCommitRequest,
    group_id: &str,
) -> Result<(), i16> {
    let (_, offsets_partition) = coordinator_for(&ctx.shard, group_id).await?;
    crate::txn::verify_partition(
        &ctx.shard,
        request.transactional_id.0.to_string(),
        request.producer_id.0,
        request.producer_epoch,
        PartitionId {
            topic: OFFSETS_TOPIC.into(),
            partition: offsets_partition,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn txn_offset_commit_response_encodes_every_version() {
        let r = TxnOffsetCommitResponse::default().with_topics(vec![
            TxnOffsetCommitResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(0)
                    .with_error_code(0)]),
        ]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
