//! AddPartitionsToTxn (key 24), v0-3: a transactional producer names the
//! partitions it is about to write. The coordinator adds them to the open
//! transaction (opening it) durably before answering; only then may the
//! producer write to them (checked at produce, KIP-890 part 1).
//!
//! v4+ is the broker-to-broker batched form (verify-only), which this
//! single-node broker does in-process; it is not served.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::txn::coordinator_code;
use crate::txn::state::TxnPartition;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::AddPartitionsToTxn,
    min: 0,
    max: 3,
};

/// First version whose clients understand PRODUCER_FENCED (KIP-588).
const FENCED_SINCE_VERSION: i16 = 2;

/// Answers AddPartitionsToTxn.
pub async fn handle(
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let snapshot = ctx.shard.snapshot();
    // Unknown partitions fail the request; the others are not attempted.
    let unknown = |topic: &str, p: i32| {
        snapshot
            .topic(topic)
            .is_none_or(|t| !(0..t.partition_count()).contains(&p))
    };
    let any_unknown = request
        .v3_and_below_topics
        .iter()
        .any(|t| t.partitions.iter().any(|&p| unknown(&t.name.0, p)));
    let code = if any_unknown {
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
        let r = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_results_by_partition(vec![AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(0)
                    .with_partition_error_code(0)]),
        ]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
