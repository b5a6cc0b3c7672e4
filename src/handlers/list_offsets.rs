//! ListOffsets (key 2), v0-8 (v0 through `handlers::legacy`, as v1): earliest (-2), latest (-1, the high
//! watermark), earliest-local (-4, the same as earliest: there is no tiered
//! storage), and by timestamp (the first batch whose max timestamp is at or
//! after the target; see the storage docs for the batch granularity).
//! MAX_TIMESTAMP (-3) is not supported yet and gets INVALID_REQUEST.

use futures::future::join_all;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::shard::{PartitionOp, PartitionReply};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ListOffsets,
    min: 0,
    max: 8,
};

const EARLIEST_TIMESTAMP: i64 = -2;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

/// Answers ListOffsets.
pub async fn handle(ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let snapshot = ctx.shard.snapshot();
    // read_committed (v2+): "latest" is the last stable offset.
    let committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.clone();
        let snapshot = &snapshot;
        let calls = topic.partitions.into_iter().map(|p| {
            let id = snapshot.partition_id(&name, p.partition_index);
            async move {
                let base =
                    ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                let error = |code: i16| {
                    base.clone()
                        .with_error_code(code)
                        .with_offset(-1)
                        .with_timestamp(-1)
                };
                let Some(id) = id else {
                    return error(ResponseError::UnknownTopicOrPartition.code());
                };
                let timestamp = if p.timestamp == EARLIEST_LOCAL_TIMESTAMP {
                    EARLIEST_TIMESTAMP
                } else {
                    p.timestamp
                };
                if timestamp < 0 && timestamp != EARLIEST_TIMESTAMP && timestamp != -1 {
                    return error(ResponseError::InvalidRequest.code());
                }
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
                        let epoch = if ctx.version >= 4 { 0 } else { -1 };
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
