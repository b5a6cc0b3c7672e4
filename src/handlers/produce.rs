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
//! coordinator only; a client's are refused, and so is any produce to an
//! internal topic (INVALID_TOPIC_EXCEPTION, `metadata::internal_topics`).
//! With an authorizer, a topic needs WRITE (else TOPIC_AUTHORIZATION_FAILED)
//! and a transactional producer WRITE on its transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every partition).
//!
//! In a cluster, a partition led elsewhere is answered NOT_LEADER_OR_FOLLOWER
//! with, from v10, the KIP-951 hint: the leader's id and epoch and its
//! address (`handlers::leader_hint`).
//!
//! Client quotas (`quota`): the request's bytes count against the
//! producer's `producer_byte_rate` when the connection reads it; over it,
//! the answer carries `throttle_time_ms` and the connection is muted that
//! long (KIP-219).

use std::collections::BTreeSet;

use futures::future::{join_all, Either};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::debug;

use super::leader_hint::{endpoints, leader_of, PRODUCE_HINT_VERSION_MIN};
use super::produce_policy::apply_topic_policy;
use super::topics::topic_or_create;
use super::{ApiSpec, RequestContext};
use crate::metadata::{internal_topics, is_internal_topic, PartitionId};
use crate::protocol::batch::validate_produce;
use crate::security::acl::{Operation, ResourceType};
use crate::protocol::batch::ProduceSummary;
use crate::shard::{PartitionOp, PartitionReply, ProduceOrigin};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::Produce,
    min: 3,
    max: 11,
};

/// Answers Produce; `None` for acks=0.
///
/// Every partition's batches are checked and handed to its owner before
/// any answer is awaited, in the connection's dispatch turn, which is
/// then given up (`RequestContext::dispatch_turn`, `dispatched`): that is
/// what keeps a connection's pipelined produces to a partition in the
/// order they were sent (`server::request_order`).
pub async fn handle(ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout_ms = request.timeout_ms;
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty());
    // Topics first: creating one waits for the metadata owner. Only the
    // coordinators write to internal topics.
    // With an authorizer: WRITE on the transactional id (for the whole
    // request) and on each topic, checked before anything is created.
    let txn_refused = transactional_id.as_deref().is_some_and(|id| {
        !ctx.authorize(Operation::Write, ResourceType::TransactionalId, id)
    });
    let mut metas = Vec::with_capacity(request.topic_data.len());
    for topic in &request.topic_data {
        if txn_refused {
            metas.push(Some(Err(ResponseError::TransactionalIdAuthorizationFailed.code())));
            continue;
        }
        if !ctx.authorize(Operation::Write, ResourceType::Topic, &topic.name.0) {
            metas.push(Some(Err(ResponseError::TopicAuthorizationFailed.code())));
            continue;
        }
        let internal = is_internal_topic(&topic.name.0);
        metas.push(match internal {
            true => None,
            false => Some(topic_or_create(ctx, &topic.name.0, true).await),
        });
    }
    ctx.dispatch_turn().await;
    // Once per request: the broker's defaults under topic overrides.
    let log_defaults = ctx.shard.snapshot().log_defaults.clone();
    let mut sent = Vec::with_capacity(request.topic_data.len());
    for (topic, meta) in request.topic_data.into_iter().zip(metas) {
        let Some(meta) = meta else {
            sent.push(Either::Left(internal_topic_refused(topic)));
            continue;
        };
        let partitions: Vec<_> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                let index = p.index;
                let request_acks = (acks, timeout_ms);
                match check_partition(&log_defaults, &meta, p, request_acks, transactional_id.as_deref()) {
                    Ok(checked) => {
                        let answer = ctx.shard.send_partition(checked.id, checked.op);
                        Either::Left(answer_partition(index, checked.log_append_time_ms, answer))
                    }
                    Err(refused) => Either::Right(std::future::ready(refused)),
                }
            })
            .collect();
        sent.push(Either::Right((topic.name, partitions)));
    }
    ctx.dispatched();
    let mut topics = Vec::with_capacity(sent.len());
    for topic in sent {
        topics.push(match topic {
            Either::Left(refused) => refused,
            Either::Right((name, partitions)) => TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(join_all(partitions).await),
        });
    }
    // The quota throttle the connection's reader decided when it read
    // this request (`quota`); the connection is muted for it already.
    let mut response = ProduceResponse::default()
        .with_responses(topics)
        .with_throttle_time_ms(ctx.throttle_ms);
    if ctx.version >= PRODUCE_HINT_VERSION_MIN && acks != 0 {
        add_leader_hints(
            &ctx.shard.snapshot(),
            ctx.connection.listener.protocol.name(),
            &mut response,
        );
    }
    (acks != 0).then_some(response)
}

/// KIP-951: every NOT_LEADER_OR_FOLLOWER partition names the leader this
/// broker knows of, and the response carries those leaders' addresses
/// (`handlers::leader_hint`). Nothing to do on a single node.
/// Addresses are those on `listener`, the client's.
fn add_leader_hints(
    snapshot: &crate::metadata::Snapshot,
    listener: &str,
    response: &mut ProduceResponse,
) {
    if snapshot.cluster.is_none() {
        return;
    }
    let not_leader = ResponseError::NotLeaderOrFollower.code();
    let mut leaders = BTreeSet::new();
    for topic in &mut response.responses {
        for p in &mut topic.partition_responses {
            if p.error_code != not_leader {
                continue;
            }
            if let Some(hint) = leader_of(snapshot, &topic.name.0, p.index) {
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(hint.leader_id))
                    .with_leader_epoch(hint.leader_epoch);
                leaders.insert(hint.leader_id);
            }
        }
    }
    response.node_endpoints = endpoints(snapshot, leaders)
        .into_iter()
        .map(|b| {
            let (host, port) = b.address_on(listener);
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)
        })
        .collect();
}

/// A partition's batches, checked and ready for its owner.
struct Checked {
    id: PartitionId,
    op: PartitionOp,
    log_append_time_ms: i64,
}

/// The error answer for partition `index`.
fn refused(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

// The error is the partition's refusal answer itself, built only when a
// batch is refused; boxing it would only add an allocation there.
#[allow(clippy::result_large_err)]
/// Checks one partition's batches on this shard (the topic, acks, the
/// batches' framing and CRCs, control and transactional rules, the topic's
/// produce policy); no I/O.
fn check_partition(
    log_defaults: &crate::metadata::LogDefaults,
    meta: &Result<std::sync::Arc<crate::metadata::TopicMeta>, i16>,
    p: PartitionProduceData,
    (acks, timeout_ms): (i16, i32),
    transactional_id: Option<&str>,
) -> Result<Checked, PartitionProduceResponse> {
    let index = p.index;
    let meta = match meta {
        Ok(meta) if (0..meta.partition_count()).contains(&index) => meta,
        Ok(_) => {
            return Err(refused(
                index,
                ResponseError::UnknownTopicOrPartition.code(),
                None,
            ))
        }
        Err(code) => return Err(refused(index, *code, None)),
    };
    if !(acks == 0 || acks == 1 || acks == -1) {
        return Err(refused(
            index,
            ResponseError::InvalidRequiredAcks.code(),
            None,
        ));
    }
    let records = p.records.unwrap_or_default();
    let summary = validate_produce(&records).map_err(|e| {
        debug!(topic = %meta.name, partition = index, "produce refused: {e}");
        refused(index, e.error_code(), Some(e.to_string()))
    })?;
    if summary.has_control_batch {
        let message = "clients may not write control batches".to_string();
        return Err(refused(
            index,
            ResponseError::InvalidRecord.code(),
            Some(message),
        ));
    }
    let origin = if summary.first_batch_is_transactional {
        transactional_origin(transactional_id, &summary)
            .map_err(|(code, message)| refused(index, code, Some(message)))?
    } else {
        ProduceOrigin::Client
    };
    // Topic rules: max.message.bytes, keys on compacted topics, timestamp
    // bounds and LogAppendTime (produce_policy.rs).
    let config = meta.config(log_defaults);
    let checked =
        apply_topic_policy(&config, records, crate::shard::now_ms()).map_err(|refusal| {
            debug!(topic = %meta.name, partition = index, "produce refused: {}", refusal.message);
            // Encoded from v8 only: older clients fail the batch.
            refused(index, refusal.code, Some(refusal.message))
                .with_record_errors(refusal.record_errors)
        })?;
    Ok(Checked {
        id: PartitionId {
            topic: meta.name.clone(),
            partition: index,
        },
        op: PartitionOp::Produce {
            records: checked.records,
            acks,
            origin,
            timeout_ms,
        },
        log_append_time_ms: checked.log_append_time_ms,
    })
}

/// The answer for partition `index` once its owner replied.
async fn answer_partition(
    index: i32,
    log_append_time_ms: i64,
    answer: impl std::future::Future<Output = PartitionReply>,
) -> PartitionProduceResponse {
    match answer.await {
        PartitionReply::Produced {
            base_offset,
            log_start_offset,
        } => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(base_offset)
            .with_log_append_time_ms(log_append_time_ms)
            .with_log_start_offset(log_start_offset),
        PartitionReply::Error(code) => refused(index, code, None),
        other => refused(
            index,
            ResponseError::UnknownServerError.code(),
            Some(format!("unexpected reply {other:?}")),
        ),
    }
}

/// Every partition of a produce to an internal topic, refused as Kafka
/// refuses it.
fn internal_topic_refused(topic: TopicProduceData) -> TopicProduceResponse {
    let message = internal_topics::produce_refusal(&topic.name.0);
    let partitions = topic
        .partition_data
        .iter()
        .map(|p| {
            refused(
                p.index,
                ResponseError::InvalidTopicException.code(),
                Some(message.clone()),
            )
        })
        .collect();
    TopicProduceResponse::default()
        .with_name(topic.name)
        .with_partition_responses(partitions)
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
