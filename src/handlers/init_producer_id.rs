//! InitProducerId (key 22), v0-5, for idempotent producers.
//!
//! Every call gets a new producer id at epoch 0 from the metadata owner's
//! durable allocator, as Kafka does for producers without a transactional
//! id — including the KIP-360 form that names the current id and epoch (a
//! fresh id is a valid bump). Transactional ids need the transaction
//! coordinator, which is not built yet: they are refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, the error clients treat as fatal
//! right away instead of retrying forever, and a log line says why.

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use tracing::{error, warn};

use super::{ApiSpec, RequestContext};
use crate::shard::METADATA_OWNER_SHARD;

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
        warn!(transactional_id = %txn.0.as_str(), "transactions are not supported yet; InitProducerId refused");
        return refused(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let allocated = ctx
        .shard
        .run_on(METADATA_OWNER_SHARD, |shard| async move {
            shard
                .producer_ids
                .allocate()
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    match allocated {
        Some(Ok(id)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Some(Err(e)) => {
            error!("producer id allocation failed: {e}");
            refused(ResponseError::KafkaStorageError.code())
        }
        None => refused(ResponseError::CoordinatorNotAvailable.code()),
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
