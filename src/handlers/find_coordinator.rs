//! FindCoordinator (key 10), v0-5. Key type 0 (group) and 1 (transaction):
//! the coordinator is the leader of the key's partition of the internal
//! topic (this broker on a single node), and the first lookup creates
//! `__consumer_offsets` / `__transaction_state` (as Kafka does). v4+
//! batches keys.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::ensure_offsets_topic;
use crate::metadata::internal_topics::{OFFSETS_TOPIC, TXN_TOPIC};
use crate::metadata::{BrokerInfo, PartitionLocation};
use crate::shard::internal_topic::partition_for;
use crate::txn::ensure_txn_topic;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::FindCoordinator,
    min: 0,
    max: 5,
};

/// Key type of consumer groups.
const KEY_TYPE_GROUP: i8 = 0;
/// Key type of transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Answers FindCoordinator.
pub async fn handle(
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys = if ctx.version >= 4 {
        request.coordinator_keys
    } else {
        vec![request.key]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let found = match request.key_type {
            // Kafka: DESCRIBE on the group or transactional id.
            KEY_TYPE_GROUP if !ctx.authorize(Operation::Describe, ResourceType::Group, &key) => {
                Err(ResponseError::GroupAuthorizationFailed.code())
            }
            KEY_TYPE_TRANSACTION
                if !ctx.authorize(Operation::Describe, ResourceType::TransactionalId, &key) =>
            {
                Err(ResponseError::TransactionalIdAuthorizationFailed.code())
            }
            KEY_TYPE_GROUP => ensure_offsets_topic(&ctx.shard)
                .await
                .and_then(|count| leader_of(ctx, OFFSETS_TOPIC, count, &key)),
            KEY_TYPE_TRANSACTION => ensure_txn_topic(&ctx.shard)
                .await
                .and_then(|count| leader_of(ctx, TXN_TOPIC, count, &key)),
            _ => Err(ResponseError::InvalidRequest.code()),
        };
        coordinators.push(coordinator(key, found));
    }
    response(ctx.version, coordinators)
}

/// The broker leading `key`'s partition of internal topic `topic`: this
/// one on a single node; in a cluster, the partition's leader, or
/// COORDINATOR_NOT_AVAILABLE while it has none (a fenced broker's).
fn leader_of(ctx: &RequestContext, topic: &str, count: i32, key: &str) -> Result<BrokerInfo, i16> {
    let config = &ctx.shard.config;
    let snapshot = ctx.shard.snapshot();
    let Some(cluster) = &snapshot.cluster else {
        return Ok(BrokerInfo {
            id: config.node_id,
            host: ctx.connection.listener.advertised_host.clone(),
            port: ctx.connection.listener.advertised_port,
            fenced: false,
            endpoints: Default::default(),
        });
    };
    let leader = match snapshot.locate(topic, partition_for(key, count)) {
        PartitionLocation::Local(_) => cluster.local_node,
        PartitionLocation::Remote { leader, .. } => leader,
        PartitionLocation::Unknown => return Err(ResponseError::CoordinatorNotAvailable.code()),
    };
    let listener = ctx.connection.listener.protocol.name();
    cluster
        .live_broker(leader)
        .map(|b| {
            let (host, port) = b.address_on(listener);
            BrokerInfo {
                host: host.to_string(),
                port,
                ..b.clone()
            }
        })
        .ok_or(ResponseError::CoordinatorNotAvailable.code())
}

fn coordinator(key: StrBytes, found: Result<BrokerInfo, i16>) -> Coordinator {
    match found {
        Ok(broker) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(broker.id))
            .with_host(StrBytes::from_string(broker.host))
            .with_port(broker.port),
        Err(code) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(code)
            .with_error_message(
                ResponseError::try_from_code(code).map(|e| StrBytes::from_string(e.to_string())),
            ),
    }
}

/// The version-shaped response: v0-3 carry one coordinator at top level.
fn response(version: i16, mut coordinators: Vec<Coordinator>) -> FindCoordinatorResponse {
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().unwrap_or_default();
    let r = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if version >= 1 {
        r.with_error_message(c.error_message)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn find_coordinator_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            for error in [None, Some(ResponseError::CoordinatorNotAvailable.code())] {
                let mut c = Coordinator::default()
                    .with_key(StrBytes::from_static_str("g"))
                    .with_node_id(BrokerId(0))
                    .with_host(StrBytes::from_static_str("localhost"))
                    .with_port(9092);
                if let Some(code) = error {
                    c = c
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_static_str("x")));
                }
                let r = response(version, vec![c]);
                let mut buf = bytes::BytesMut::new();
                r.encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
            }
        }
    }
}
