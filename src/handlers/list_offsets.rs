//! ListOffsets (key 2), v0-8 (v0 through `handlers::legacy`, as v1):
//! earliest (-2), latest (-1, the high
//! watermark), max-timestamp (-3, v7+: the first record holding the
//! largest timestamp, KIP-734), earliest-local (-4, v8+: the same as
//! earliest, since there is no tiered storage), and by timestamp (the first
//! record at or after the target; see the storage docs for compressed
//! batches). LATEST_TIERED (-5) needs v9, which is not served.
//!
//! A sentinel sent below the version that introduced it gets
//! INVALID_REQUEST: Kafka's clients never send one (they fail the call with
//! UNSUPPORTED_VERSION), so such a request is malformed.

use crate::security::acl::{Operation, ResourceType};
use futures::future::join_all;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::shard::{check_leader_epoch, PartitionOp, PartitionReply};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ListOffsets,
    min: 0,
    max: 8,
};

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// First versions that carry each sentinel (Kafka's ListOffsetsRequest).
const MAX_TIMESTAMP_VERSION_MIN: i16 = 7;
const EARLIEST_LOCAL_VERSION_MIN: i16 = 8;

/// The timestamp to look up for `requested` at request `version`, `None`
/// when the sentinel is unknown or newer than the version.
fn lookup_timestamp(requested: i64, version: i16) -> Option<i64> {
    match requested {
        LATEST_TIMESTAMP | EARLIEST_TIMESTAMP => Some(requested),
        MAX_TIMESTAMP if version >= MAX_TIMESTAMP_VERSION_MIN => Some(requested),
        EARLIEST_LOCAL_TIMESTAMP if version >= EARLIEST_LOCAL_VERSION_MIN => {
            Some(EARLIEST_TIMESTAMP)
        }
        t if t >= 0 => Some(t),
        _ => None,
    }
}

/// Answers ListOffsets.
pub async fn handle(ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let snapshot = ctx.shard.snapshot();
    // read_committed (v2+): "latest" is the last stable offset.
    let committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.clone();
        let snapshot = &snapshot;
        // Kafka: DESCRIBE on the topic.
        let allowed = ctx.authorize(Operation::Describe, ResourceType::Topic, &name);
        let calls = topic.partitions.into_iter().map(|p| {
            let id = snapshot.partition_id(&name, p.partition_index);
            let current = snapshot.leader_epoch(&name, p.partition_index);
            async move {
                let base =
                    ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                let error = |code: i16| {
                    base.clone()
                        .with_error_code(code)
                        .with_offset(-1)
                        .with_timestamp(-1)
                };
                if !allowed {
                    return error(ResponseError::TopicAuthorizationFailed.code());
                }
                let Some(id) = id else {
                    return error(ResponseError::UnknownTopicOrPartition.code());
                };
                // CurrentLeaderEpoch (v4+, KIP-320), against this shard's
                // snapshot: an integer compare.
                if ctx.version >= 4 {
                    if let Err(code) = check_leader_epoch(p.current_leader_epoch, current) {
                        return error(code);
                    }
                }
                let Some(timestamp) = lookup_timestamp(p.timestamp, ctx.version) else {
                    return error(ResponseError::InvalidRequest.code());
                };
                match ctx
                    .shard
                    .call_partition(
                        id,
                        PartitionOp::ListOffset {
                            timestamp,
                            committed,
                        },
                    )
                    .await
                {
                    PartitionReply::Offset { offset, timestamp } => {
                        // leader_epoch exists from v4; the crate refuses a
                        // non-default value on older versions.
                        let epoch = if ctx.version >= 4 { current } else { -1 };
                        base.clone()
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(epoch)
                    }
                    PartitionReply::Error(code) => error(code),
                    _ => error(ResponseError::UnknownServerError.code()),
                }
            }
        });
        let partitions = join_all(calls).await;
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_offsets_sentinels_by_version() {
        assert_eq!(lookup_timestamp(MAX_TIMESTAMP, 6), None);
        assert_eq!(lookup_timestamp(MAX_TIMESTAMP, 7), Some(MAX_TIMESTAMP));
        assert_eq!(lookup_timestamp(EARLIEST_LOCAL_TIMESTAMP, 7), None);
        assert_eq!(
            lookup_timestamp(EARLIEST_LOCAL_TIMESTAMP, 8),
            Some(EARLIEST_TIMESTAMP)
        );
        assert_eq!(lookup_timestamp(-5, 8), None);
        assert_eq!(
            lookup_timestamp(LATEST_TIMESTAMP, 1),
            Some(LATEST_TIMESTAMP)
        );
        assert_eq!(lookup_timestamp(1234, 1), Some(1234));
    }
}
