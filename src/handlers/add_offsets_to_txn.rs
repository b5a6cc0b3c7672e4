//! AddOffsetsToTxn (key 25), v0-4: a transactional producer is about to
//! commit a group's offsets in its transaction (`send_offsets_to_
//! transaction`). The coordinator adds the group's `__consumer_offsets`
//! partition to the transaction, so the COMMIT/ABORT marker reaches it and
//! the offsets become visible (or vanish) with the transaction. v4 only
//! adds an error code (TRANSACTION_ABORTABLE) this broker never returns.

use kafka_protocol::ResponseError;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};

use super::add_partitions_to_txn::add_to_txn;
use super::{ApiSpec, RequestContext};
use crate::group::OFFSETS_TOPIC;
use crate::shard::internal_topic;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::AddOffsetsToTxn,
    min: 0,
    max: 4,
};

/// First version whose clients understand PRODUCER_FENCED (KIP-588).
const FENCED_SINCE_VERSION: i16 = 2;

/// Answers AddOffsetsToTxn.
pub async fn handle(
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    // Only the group's offsets partition is needed: its coordinator may be
    // on another broker than the transaction's (a cluster).
    // Kafka: WRITE on the transactional id, READ on the group.
    if !ctx.authorize(Operation::Write, ResourceType::TransactionalId, &request.transactional_id.0) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !ctx.authorize(Operation::Read, ResourceType::Group, &request.group_id.0) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let partitions = ctx.shard.config.offsets_topic_partitions;
    let count = internal_topic::ensure(&ctx.shard, OFFSETS_TOPIC, partitions).await;
    let code = match count {
        Err(code) => code,
        Ok(count) => {
            let offsets_partition = internal_topic::partition_for(&request.group_id.0, count);
            let id = request.transactional_id.0.to_string();
            let (pid, epoch) = (request.producer_id.0, request.producer_epoch);
            let partitions = vec![(OFFSETS_TOPIC.to_string(), offsets_partition)];
            add_to_txn(ctx, id, pid, epoch, partitions, FENCED_SINCE_VERSION).await
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn add_offsets_to_txn_response_encodes_every_version() {
        let r = AddOffsetsToTxnResponse::default().with_error_code(51);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
