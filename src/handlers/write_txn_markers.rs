//! WriteTxnMarkers (key 27), v1: the inter-broker request a transaction
//! coordinator sends partition leaders to write COMMIT/ABORT markers.
//!
//! On this single node the coordinator writes markers by message passing
//! (`txn::markers`), so the request is served for Kafka tools and for a
//! coordinator on another broker later; both paths share
//! `txn::markers::write_one` (append the marker durably, then settle
//! transactional offset commits on `__consumer_offsets`). Kafka limits the
//! request to brokers (ClusterAction); this broker has no authorizer, as
//! for every other API. v0 was removed in Kafka 4 and is not served.
//!
//! Per partition: UNKNOWN_TOPIC_OR_PARTITION if it does not exist,
//! INVALID_PRODUCER_EPOCH for an epoch older than the producer's, else the
//! marker's append result. Partitions are written concurrently.

use crate::security::acl::Operation;
use futures::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::metadata::PartitionId;
use crate::txn::markers::write_one;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::WriteTxnMarkers,
    min: 1,
    max: 1,
};

/// Answers WriteTxnMarkers.
pub async fn handle(
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Kafka: the brokers' request: CLUSTER_ACTION on the cluster, else
    // every partition fails with CLUSTER_AUTHORIZATION_FAILED.
    let allowed = ctx.authorize_cluster(Operation::ClusterAction);
    let mut markers = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let (pid, epoch) = (marker.producer_id.0, marker.producer_epoch);
        let (commit, coordinator_epoch) = (marker.transaction_result, marker.coordinator_epoch);
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let writes = topic.partition_indexes.iter().map(|&partition| {
                let id = PartitionId {
                    topic: topic.name.0.to_string().into(),
                    partition,
                };
                let shard = ctx.shard.clone();
                async move {
                    let exists = shard.snapshot().shard_for(&id.topic, partition).is_some();
                    let code = if !allowed {
                        ResponseError::ClusterAuthorizationFailed.code()
                    } else if !exists {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        match write_one(&shard, id, pid, epoch, commit, coordinator_epoch).await {
                            Ok(()) => 0,
                            Err(code) => code,
                        }
                    };
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(partition)
                        .with_error_code(code)
                }
            });
            let partitions = join_all(writes).await;
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn write_txn_markers_response_encodes_every_version() {
        let r = WriteTxnMarkersResponse::default().with_markers(vec![
            WritableTxnMarkerResult::default()
                .with_producer_id(ProducerId(7))
                .with_topics(vec![WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(0)
                        .with_error_code(3)])]),
        ]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
