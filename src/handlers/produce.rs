//! Produce (key 0), v3-11: RecordBatch v2 only (v3 is the first version
//! that carries it). Each partition's records are validated here (length,
//! magic, CRC32C) on the connection's shard, then appended by the owner
//! shard, which answers acks=1/all only after fdatasync. acks=0 gets no
//! response at all, as the protocol says.
//!
//! Batches of idempotent producers are deduplicated by the owner (see
//! `crate::producer`). Not yet: transactional producers; their batches (and
//! control batches, which clients may never send) are refused.

use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::debug;

use super::produce_policy::apply_topic_policy;
use super::topics::topic_or_create;
use super::{ApiSpec, RequestContext};
use crate::metadata::PartitionId;
use crate::protocol::batch::validate_produce;
use crate::shard::{PartitionOp, PartitionReply};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::Produce,
    min: 3,
    max: 11,
};

/// Answers Produce; `None` for acks=0.
pub async fn handle(ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let meta = topic_or_create(ctx, &name, true).await;
        let calls = topic.partition_data.into_iter().map(|p| {
            let index = p.index;
            let meta = meta.clone();
            let name = name.clone();
            async move {
                let error = |code: i16, message: Option<String>| {
                    PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(code)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                        .with_error_message(message.map(StrBytes::from_string))
                };
                let meta = match meta {
                    Ok(meta) if (0..meta.partition_count()).contains(&index) => meta,
                    Ok(_) => return error(ResponseError::UnknownTopicOrPartition.code(), None),
                    Err(code) => return error(code, None),
                };
                if !(acks == 0 || acks == 1 || acks == -1) {
                    return error(ResponseError::InvalidRequiredAcks.code(), None);
                }
                let records = p.records.unwrap_or_default();
                let summary = match validate_produce(&records) {
                    Ok(s) => s,
                    Err(e) => {
                        debug!(topic = %name, partition = index, "produce refused: {e}");
                        return error(e.error_code(), Some(e.to_string()));
                    }
                };
                if summary.first_batch_is_transactional || summary.has_control_batch {
                    return error(
                        ResponseError::InvalidRecord.code(),
                        Some("transactional produce is not supported yet".into()),
                    );
                }
                // Topic rules: max.message.bytes, keys on compacted
                // topics, timestamp bounds and LogAppendTime (produce_policy.rs).
                let config = meta.config(&ctx.shard.config.log_defaults);
                let checked = apply_topic_policy(&config, records, crate::shard::now_ms());
                let (records, log_append_time_ms) = match checked {
                    Ok(c) => (c.records, c.log_append_time_ms),
                    Err((code, message)) => return error(code, Some(message)),
                };
                let id = PartitionId {
                    topic: meta.name.clone(),
                    partition: index,
                };
                match ctx
                    .shard
                    .call_partition(id, PartitionOp::Produce { records, acks })
                    .await
                {
                    PartitionReply::Produced {
                        base_offset,
                        log_start_offset,
                    } => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(base_offset)
                        .with_log_append_time_ms(log_append_time_ms)
                        .with_log_start_offset(log_start_offset),
                    PartitionReply::Error(code) => error(code, None),
                    other => error(
                        ResponseError::UnknownServerError.code(),
                        Some(format!("unexpected reply {other:?}")),
                    ),
                }
            }
        });
        let partition_responses = join_all(calls).await;
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses),
        );
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(topics))
}
