//! DescribeTransactions (key 65), v0: the state of named transactional ids
//! (Kafka's `kafka-transactions describe`), each from its coordinator
//! shard. An id no coordinator knows gets TRANSACTIONAL_ID_NOT_FOUND.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::txn::state::TxnMeta;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeTransactions,
    min: 0,
    max: 0,
};

/// Answers DescribeTransactions.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let key = id.0.to_string();
        // Kafka: DESCRIBE on the transactional id.
        if !ctx.authorize(Operation::Describe, ResourceType::TransactionalId, &key) {
            states.push(
                TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
            );
            continue;
        }
        let answer = crate::txn::on_coordinator(
            &ctx.shard,
            &key.clone(),
            move |shard, partition| async move {
                shard.txns.ready(&shard, partition).await?;
                Ok::<_, i16>(shard.txns.describe(&key))
            },
        )
        .await
        .and_then(|r| r);
        let state = TransactionState::default().with_transactional_id(id);
        states.push(match answer {
            Ok(Some(meta)) => described(state, &meta),
            Ok(None) => state.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Err(code) => state.with_error_code(code),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn described(state: TransactionState, meta: &TxnMeta) -> TransactionState {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, partition) in &meta.partitions {
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*partition),
            _ => topics.push(
                TopicData::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    state
        .with_transaction_state(StrBytes::from_static_str(meta.state.name()))
        .with_transaction_timeout_ms(meta.timeout_ms)
        .with_transaction_start_time_ms(meta.start_ms)
        .with_producer_id(ProducerId(meta.producer_id))
        .with_producer_epoch(meta.epoch)
        .with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::state::TxnState;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn describe_transactions_response_encodes_every_version() {
        let meta = TxnMeta {
            producer_id: 1,
            epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 1)]
                .into_iter()
                .collect(),
            start_ms: 5,
            update_ms: 6,
        };
        let state = described(TransactionState::default(), &meta);
        assert_eq!(state.topics.len(), 1);
        assert_eq!(state.topics[0].partitions, vec![0, 1]);
        let r = DescribeTransactionsResponse::default().with_transaction_states(vec![state]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
