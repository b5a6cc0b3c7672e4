//! Produce (key 0), v3-11: RecordBatch v2 only (v3 is the first version
//! that carries it). Each partition's records are validated here (length,
//! magic, CRC32C) on the connection's shard, then appended by the owner
//! shard, which answers acks=1/all only after fdatasync. acks=0 gets no
//! response at all, as the protocol says.
//!
//! Batches of idempotent producers are deduplicated by the owner (see
//! `crate::producer`). Transactional batches are appended only after the
//! owner has checked with the transaction coordinator that the partition is
//! in the producer's ongoing transaction (KIP-890 part 1; see
//! `shard::Shard::execute_local`). Control batches are written by the
//! coordinator only; a client's are refused.

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
use crate::protocol::batch::ProduceSummary;
use crate::shard::{PartitionOp, PartitionReply, ProduceOrigin};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::Produce,
    min: 3,
    max: 11,
};

/// Answers Produce; `None` for acks=0.
pub async fn handle(ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty());
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let meta = topic_or_create(ctx, &name, true).await;
        let calls = topic.partition_data.into_iter().map(|p| {
            let index = p.index;
            let transactional_id = transactional_id.clone();
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
                if summary.has_control_batch {
                    return error(
                        ResponseError::InvalidRecord.code(),
                        Some("clients may not write control batches".into()),
                    );
                }
                let origin = if summary.first_batch_is_transactional {
                    match transactional_origin(transactional_id.as_deref(), &summary) {
                        Ok(origin) => origin,
                        Err((code, message)) => return error(code, Some(message)),
                    }
                } else {
                    ProduceOrigin::Client
                };
                // Topic rules: max.message.bytes, keys on compacted
                // topics, timestamp bounds and LogAppendTime (produce_policy.rs).
                let config = meta.config(&ctx.shard.snapshot().log_defaults);
                let checked = apply_topic_policy(&config, records, crate::shard::now_ms());
                let (records, log_append_time_ms) = match checked {
                    Ok(c) => (c.records, c.log_append_time_ms),
                    Err(refusal) => {
                        debug!(topic = %name, partition = index, "produce refused: {}", refusal.message);
                        // Encoded from v8 only: older clients fail the batch.
                        return error(refusal.code, Some(refusal.message))
                            .with_record_errors(refusal.record_errors);
                    }
                };
                let id = PartitionId {
                    topic: meta.name.clone(),
                    partition: index,
                };
                match ctx
                    .shard
                    .call_partition(
                        id,
                        PartitionOp::Produce {
                            records,
                            acks,
                            origin,
                        },
                    )
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

/// The origin of a transactional produce: the request must name its
/// transactional id and the batch its producer (Kafka refuses both
/// otherwise); the partition's owner then verifies the partition is in the
/// transaction (KIP-890 part 1).
fn transactional_origin(
    transactional_id: Option<&str>,
    summary: &ProduceSummary,
) -> Result<ProduceOrigin, (i16, String)> {
    let Some(transactional_id) = transactional_id else {
        return Err((
            ResponseError::TransactionalIdNotFound.code(),
            "a transactional batch needs the request's transactional id".into(),
        ));
    };
    if summary.first_batch_producer_id < 0 {
        return Err((
            ResponseError::InvalidRecord.code(),
            "a transactional batch needs a producer id".into(),
        ));
    }
    Ok(ProduceOrigin::Transactional {
        transactional_id: transactional_id.to_string(),
        producer_id: summary.first_batch_producer_id,
        epoch: summary.first_batch_producer_epoch,
    })
}
