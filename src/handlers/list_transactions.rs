//! ListTransactions (key 66), v0-1: the transactional ids every coordinator
//! shard knows, filtered by state names, producer ids and (v1) by running
//! longer than a duration (KIP-664 / KIP-994). Unknown state names are
//! echoed back in `unknown_state_filters`, as Kafka does. v2's id pattern
//! is not served.

use crate::security::acl::{Operation, ResourceType};
use futures::future::join_all;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ApiKey, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::{ApiSpec, RequestContext};
use crate::txn::coordinator::TxnView;
use crate::txn::state::TxnState;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ListTransactions,
    min: 0,
    max: 1,
};

const STATE_NAMES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

/// Answers ListTransactions.
pub async fn handle(
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let lists = (0..ctx.shard.shard_count()).map(|target| {
        ctx.shard.run_on(target, |shard| async move {
            shard.txns.load_owned(&shard).await;
            shard.txns.list()
        })
    });
    let all: Vec<TxnView> = join_all(lists)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|s| !STATE_NAMES.contains(&s.as_str()))
        .cloned()
        .collect();
    let duration = if ctx.version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let now = crate::shard::now_ms();
    let mut states: Vec<TransactionState> = all
        .into_iter()
        .filter(|t| {
            request.state_filters.is_empty()
                || request
                    .state_filters
                    .iter()
                    .any(|s| s.as_str() == t.meta.state.name())
        })
        .filter(|t| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .contains(&ProducerId(t.meta.producer_id))
        })
        // Kafka: only the transactional ids the principal may DESCRIBE.
        .filter(|t| ctx.authorize(Operation::Describe, ResourceType::TransactionalId, &t.transactional_id))
        .filter(|t| {
            duration < 0 || (t.meta.state == TxnState::Ongoing && now - t.meta.start_ms > duration)
        })
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.meta.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.meta.state.name()))
        })
        .collect();
    states.sort_by(|a, b| a.transactional_id.0.cmp(&b.transactional_id.0));
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn list_transactions_response_encodes_every_version() {
        let r = ListTransactionsResponse::default()
            .with_unknown_state_filters(vec![StrBytes::from_static_str("Bogus")])
            .with_transaction_states(vec![TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_static_str("t")))
                .with_producer_id(ProducerId(1))
                .with_transaction_state(StrBytes::from_static_str("Ongoing"))]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }

    #[test]
    fn list_transactions_state_names_match_the_states() {
        for v in 0..8 {
            let state = TxnState::from_i8(v).unwrap();
            assert_eq!(STATE_NAMES[v as usize], state.name());
        }
    }
}
