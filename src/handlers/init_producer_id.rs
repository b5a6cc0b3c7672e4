//! InitProducerId (key 22), v0-5, for idempotent producers.
//!
//! Without a transactional id every call gets a new producer id at epoch 0
//! from the metadata owner's durable allocator, as Kafka does — including
//! the KIP-360 form that names the current id and epoch (a fresh id is a
//! valid bump). With one, the transaction coordinator of that id answers
//! (`txn::TxnCoordinator::init_producer_id`): the same producer id with the
//! epoch bumped, which fences the previous producer instance and aborts its
//! open transaction.

use kafka_protocol::ResponseError;
use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::debug;

use super::{ApiSpec, RequestContext};
use crate::txn::coordinator::allocate_producer_id;
use crate::txn::state::for_version;

/// First version whose clients understand PRODUCER_FENCED (KIP-588).
const FENCED_SINCE_VERSION: i16 = 4;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::InitProducerId,
    min: 0,
    max: 5,
};

/// Answers InitProducerId.
pub async fn handle(
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(txn) = request
        .transactional_id
        .as_ref()
        .filter(|t| !t.0.is_empty())
    {
        // Kafka: WRITE on the transactional id.
        if !ctx.authorize(Operation::Write, ResourceType::TransactionalId, &txn.0) {
            return refused(ResponseError::TransactionalIdAuthorizationFailed.code());
        }
        let id = txn.0.to_string();
        let timeout_ms = request.transaction_timeout_ms;
        let expected = (ctx.version >= 3 && request.producer_id.0 >= 0)
            .then_some((request.producer_id.0, request.producer_epoch));
        let answer = crate::txn::on_coordinator(
            &ctx.shard,
            &id.clone(),
            move |shard, partition| async move {
                shard
                    .txns
                    .init_producer_id(&shard, partition, &id, timeout_ms, expected)
                    .await
            },
        )
        .await;
        return match answer.and_then(|r| r) {
            Ok((producer_id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            Err(code) => {
                debug!(transactional_id = %txn.0.as_str(), code, "transactional InitProducerId refused");
                refused(for_version(code, ctx.version, FENCED_SINCE_VERSION))
            }
        };
    }
    // Kafka (KIP-679): an idempotent producer needs IDEMPOTENT_WRITE on the
    // cluster, or WRITE on some topic.
    if !ctx.authorize_cluster(Operation::IdempotentWrite)
        && !ctx.authorize_any(Operation::Write, ResourceType::Topic)
    {
        return refused(ResponseError::ClusterAuthorizationFailed.code());
    }
    match allocate_producer_id(&ctx.shard).await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(code) => refused(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn init_producer_id_response_encodes_every_version() {
        let r = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(42))
            .with_producer_epoch(0);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
