//! AddPartitionsToTxn (key 24), v0-4: a transactional producer names the
//! partitions it is about to write. The coordinator adds them to the open
//! transaction (opening it) durably before answering; only then may the
//! producer write to them (checked at produce, KIP-890 part 1).
//!
//! v4 is the broker-to-broker batched form: a partition leader on another
//! broker asks the coordinator, `verify_only`, whether a transactional
//! produce's partition is in the transaction (`txn::remote`); a
//! coordinator on the same broker is asked in-process. Kafka limits v4 to
//! brokers (ClusterAction); there is no authorizer yet, as for every API.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::metadata::PartitionId;
use crate::txn::coordinator_code;
use crate::txn::state::TxnPartition;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::AddPartitionsToTxn,
    min: 0,
    max: 4,
};

/// The first version of the broker-to-broker form.
const BROKER_FORM_SINCE_VERSION: i16 = 4;

/// First version whose clients understand PRODUCER_FENCED (KIP-588).
const FENCED_SINCE_VERSION: i16 = 2;

/// Answers AddPartitionsToTxn.
pub async fn handle(
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version >= BROKER_FORM_SINCE_VERSION {
        return handle_batched(ctx, request).await;
    }
    let snapshot = ctx.shard.snapshot();
    // Unknown partitions fail the request; the others are not attempted.
    let unknown = |topic: &str, p: i32| {
        snapshot
            .topic(topic)
            .is_none_or(|t| !(0..t.partition_count()).contains(&p))
    };
    // Kafka: WRITE on the transactional id (else every partition fails
    // with TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (else
    // its partitions fail with TOPIC_AUTHORIZATION_FAILED, the others are
    // not attempted).
    let txn_allowed = ctx.authorize(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.v3_and_below_transactional_id.0,
    );
    let refused_topic = |topic: &str| !ctx.authorize(Operation::Write, ResourceType::Topic, topic);
    let any_unknown = request.v3_and_below_topics.iter().any(|t| {
        refused_topic(&t.name.0) || t.partitions.iter().any(|&p| unknown(&t.name.0, p))
    });
    let code = if !txn_allowed {
        Some(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else if any_unknown {
        None
    } else {
        let partitions: Vec<TxnPartition> = request
            .v3_and_below_topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.name.0.to_string(), p)))
            .collect();
        let id = request.v3_and_below_transactional_id.0.to_string();
        let (pid, epoch) = (
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
        );
        Some(add_to_txn(ctx, id, pid, epoch, partitions, FENCED_SINCE_VERSION).await)
    };
    let results = request
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = match code {
                        Some(code) => code,
                        None if refused_topic(&t.name.0) => {
                            ResponseError::TopicAuthorizationFailed.code()
                        }
                        None if unknown(&t.name.0, p) => {
                            ResponseError::UnknownTopicOrPartition.code()
                        }
                        None => ResponseError::OperationNotAttempted.code(),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// v4: every transaction of the batch, each verified (`verify_only`) or
/// added partition by partition on its coordinator.
async fn handle_batched(
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    // Kafka: v4 is the brokers' form: CLUSTER_ACTION on the cluster.
    if !ctx.authorize_cluster(Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in request.transactions {
        let id = txn.transactional_id.0.to_string();
        let (pid, epoch) = (txn.producer_id.0, txn.producer_epoch);
        let mut topic_results = Vec::with_capacity(txn.topics.len());
        for topic in &txn.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for &p in &topic.partitions {
                let partition = PartitionId {
                    topic: topic.name.0.to_string().into(),
                    partition: p,
                };
                let code = match txn.verify_only {
                    true => verify_here(ctx, id.clone(), (pid, epoch), partition).await,
                    false => {
                        let added = vec![(partition.topic.to_string(), p)];
                        add_to_txn(ctx, id.clone(), pid, epoch, added, FENCED_SINCE_VERSION).await
                    }
                };
                partitions.push(
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code),
                );
            }
            topic_results.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_results_by_partition(partitions),
            );
        }
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id)
                .with_topic_results(topic_results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// KIP-890 verification on this broker's coordinator of `id`: 0 when
/// `partition` is in the ongoing transaction at (`pid`, `epoch`).
async fn verify_here(
    ctx: &RequestContext,
    id: String,
    (pid, epoch): (i64, i16),
    partition: PartitionId,
) -> i16 {
    let key = id.clone();
    let verified = crate::txn::on_coordinator(&ctx.shard, &key, move |shard, p| async move {
        shard.txns.ready(&shard, p).await?;
        shard.txns.verify(&id, pid, epoch, &partition)
    })
    .await;
    match verified {
        Ok(Ok(())) => 0,
        Ok(Err(code)) | Err(code) => code,
    }
}

/// Adds `partitions` to `id`'s transaction on its coordinator; the code
/// for the client (AddOffsetsToTxn uses it too).
pub(super) async fn add_to_txn(
    ctx: &RequestContext,
    id: String,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<TxnPartition>,
    fenced_since: i16,
) -> i16 {
    let key = id.clone();
    let version = ctx.version;
    coordinator_code(
        &ctx.shard,
        &key,
        version,
        fenced_since,
        move |shard, partition| async move {
            let txns = &shard.txns;
            txns.add_partitions(&shard, partition, &id, producer_id, epoch, &partitions)
                .await
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
    fn add_partitions_to_txn_response_encodes_every_version() {
        let topic = AddPartitionsToTxnTopicResult::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_results_by_partition(vec![AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(0)
                .with_partition_error_code(0)]);
        // v0-3 answer by topic; v4 (broker to broker) by transaction.
        let client_form =
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![topic.clone()]);
        let broker_form = AddPartitionsToTxnResponse::default().with_results_by_transaction(vec![
            AddPartitionsToTxnResult::default().with_topic_results(vec![topic]),
        ]);
        for v in API.min..=API.max {
            let r = match v < BROKER_FORM_SINCE_VERSION {
                true => &client_form,
                false => &broker_form,
            };
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
