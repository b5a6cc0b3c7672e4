//! DeleteRecords (key 21), v0-2: moves each partition's log start offset
//! (-1 = the high watermark) on its owner shard; whole segments below it are
//! removed and fetches below it get OFFSET_OUT_OF_RANGE (storage/retention.rs).
//! Internal topics are refused (INVALID_TOPIC_EXCEPTION, as Kafka's
//! ReplicaManager does): their coordinators need every key's latest record.
//! Answers the new low watermark per partition. An offset past the high
//! watermark is OFFSET_OUT_OF_RANGE, as in Kafka. `timeout_ms` needs no
//! waiting on a single broker: the change is durable when answered.

use crate::security::acl::{Operation, ResourceType};
use futures::future::join_all;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use tracing::debug;

use super::{ApiSpec, RequestContext};
use crate::metadata::{internal_topics, is_internal_topic};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DeleteRecords,
    min: 0,
    max: 2,
};

/// The offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Answers DeleteRecords.
pub async fn handle(ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let snapshot = ctx.shard.snapshot();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.clone();
        let snapshot = &snapshot;
        // Kafka: DELETE on the topic.
        let allowed = ctx.authorize(Operation::Delete, ResourceType::Topic, &name);
        let calls = topic.partitions.into_iter().map(|p| {
            let id = snapshot.partition_id(&name, p.partition_index);
            async move {
                let result =
                    DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                let error = |code: i16| result.clone().with_low_watermark(-1).with_error_code(code);
                if !allowed {
                    return error(ResponseError::TopicAuthorizationFailed.code());
                }
                let Some(id) = id else {
                    return error(ResponseError::UnknownTopicOrPartition.code());
                };
                if is_internal_topic(&id.topic) {
                    debug!("{}", internal_topics::delete_records_refusal(&id.topic));
                    return error(ResponseError::InvalidTopicException.code());
                }
                if p.offset < HIGH_WATERMARK {
                    return error(ResponseError::OffsetOutOfRange.code());
                }
                match ctx.shard.delete_records(id, p.offset).await {
                    Ok(low_watermark) => result.clone().with_low_watermark(low_watermark),
                    Err(code) => error(code),
                }
            }
        });
        let partitions = join_all(calls).await;
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    #[test]
    fn delete_records_response_encodes_every_version() {
        let partitions = vec![
            DeleteRecordsPartitionResult::default()
                .with_partition_index(0)
                .with_low_watermark(42),
            DeleteRecordsPartitionResult::default()
                .with_partition_index(1)
                .with_low_watermark(-1)
                .with_error_code(ResponseError::OffsetOutOfRange.code()),
        ];
        let topic = DeleteRecordsTopicResult::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions);
        let response = DeleteRecordsResponse::default().with_topics(vec![topic]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
