//! EndTxn (key 26), v0-4: commit or abort the producer's open transaction.
//! The coordinator writes PrepareCommit/PrepareAbort, a marker to every
//! partition of the transaction, then CompleteCommit/CompleteAbort, and
//! answers once all of it is durable (see `crate::txn`). v4 only adds an
//! error code (TRANSACTION_ABORTABLE) this broker never returns; v5
//! (KIP-890 part 2, an epoch bump per transaction) is not served.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse};

use super::{ApiSpec, RequestContext};
use crate::txn::coordinator_code;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::EndTxn,
    min: 0,
    max: 4,
};

/// First version whose clients understand PRODUCER_FENCED (KIP-588).
const FENCED_SINCE_VERSION: i16 = 2;

/// Answers EndTxn.
pub async fn handle(ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    // Kafka: WRITE on the transactional id.
    if !ctx.authorize(Operation::Write, ResourceType::TransactionalId, &request.transactional_id.0) {
        return EndTxnResponse::default()
            .with_error_code(kafka_protocol::ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let id = request.transactional_id.0.to_string();
    let (pid, epoch, commit) = (
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
    let key = id.clone();
    let version = ctx.version;
    let code = coordinator_code(
        &ctx.shard,
        &key,
        version,
        FENCED_SINCE_VERSION,
        move |shard, partition| async move {
            let txns = &shard.txns;
            txns.end_txn(&shard, partition, &id, pid, epoch, commit)
                .await
        },
    )
    .await;
    EndTxnResponse::default().with_error_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn end_txn_response_encodes_every_version() {
        let r = EndTxnResponse::default().with_error_code(48);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
