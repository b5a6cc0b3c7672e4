//! A transaction whose partitions are led by other brokers than its
//! coordinator's (a cluster): the two broker-to-broker requests Kafka uses.
//!
//! - A partition leader verifies a transactional produce with the
//!   coordinator's broker (KIP-890 part 1) by AddPartitionsToTxn v4 with
//!   `verify_only`, exactly what it asks in-process when the coordinator is
//!   local (`TxnCoordinator::verify`).
//! - The coordinator writes COMMIT/ABORT markers on a partition led
//!   elsewhere by WriteTxnMarkers v1 to its leader, whose handler appends
//!   them as for a local partition (`markers::write_one`).
//!
//! Both open a connection per call (`replication::client`), to the peer's
//! inter-broker listener with the broker's TLS and SASL login, as the
//! fetchers do: they happen once per transaction and partition, not per
//! record. A broker that
//! cannot be reached answers COORDINATOR_NOT_AVAILABLE (verification: the
//! producer retries) or an error the coordinator's marker loop retries.

use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;
use tracing::{debug, warn};

use crate::metadata::PartitionId;
use crate::replication::client::BrokerConnection;
use crate::shard::Shard;

/// AddPartitionsToTxn's broker-to-broker version (verify_only).
pub const VERIFY_VERSION: i16 = 4;
/// WriteTxnMarkers' only served version.
pub const MARKERS_VERSION: i16 = 1;
/// Bound on one broker-to-broker transaction request.
pub const REMOTE_TXN_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `request` at `version` to live broker `broker` on a fresh
/// connection; any failure to get an answer is `unreachable` (logged).
async fn exchange<R: Request>(
    shard: &Shard,
    broker: i32,
    (request, version): (&R, i16),
    unreachable: i16,
) -> Result<R::Response, i16> {
    let addr = {
        let snapshot = shard.snapshot();
        let b = snapshot
            .cluster
            .as_ref()
            .and_then(|c| c.live_broker(broker))
            .ok_or(unreachable)?;
        let (host, port) = b.address_on(shard.config.inter_broker.listener.name());
        format!("{host}:{port}")
    };
    let failed = |e: crate::replication::client::ClientError| {
        use crate::replication::client::ClientError;
        match e {
            // A misconfiguration, not a passing failure: say so.
            ClientError::Authentication { .. } | ClientError::Tls { .. } => {
                warn!("transaction request to broker {broker}: {e}")
            }
            _ => debug!("transaction request to broker {broker}: {e}"),
        }
        unreachable
    };
    let security = crate::security::inter_broker::peer_security();
    let mut conn = BrokerConnection::connect_secured(&addr, &security)
        .await
        .map_err(failed)?;
    conn.send(request, version, REMOTE_TXN_TIMEOUT)
        .await
        .map_err(failed)
}

/// Asks broker `coordinator` whether `partition` is in `transactional_id`'s
/// ongoing transaction at (`producer_id`, `epoch`).
pub async fn verify(
    shard: &Rc<Shard>,
    coordinator: i32,
    transactional_id: String,
    (producer_id, epoch): (i64, i16),
    partition: &PartitionId,
) -> Result<(), i16> {
    let unavailable = ResponseError::CoordinatorNotAvailable.code();
    let topic = AddPartitionsToTxnTopic::default()
        .with_name(TopicName(StrBytes::from_string(
            partition.topic.to_string(),
        )))
        .with_partitions(vec![partition.partition]);
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(transactional_id)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_verify_only(true)
        .with_topics(vec![topic]);
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let response = exchange(shard, coordinator, (&request, VERIFY_VERSION), unavailable).await?;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let code = response
        .results_by_transaction
        .iter()
        .flat_map(|t| &t.topic_results)
        .flat_map(|t| &t.results_by_partition)
        .find(|p| p.partition_index == partition.partition)
        .map_or(ResponseError::UnknownServerError.code(), |p| {
            p.partition_error_code
        });
    match code {
        0 => Ok(()),
        code => Err(code),
    }
}

/// Writes a marker on `partition` through its leader, broker `leader`.
pub async fn write_marker(
    shard: &Rc<Shard>,
    leader: i32,
    partition: &PartitionId,
    (producer_id, epoch): (i64, i16),
    commit: bool,
    coordinator_epoch: i32,
) -> Result<(), i16> {
    let unavailable = ResponseError::NotLeaderOrFollower.code();
    let topic = WritableTxnMarkerTopic::default()
        .with_name(TopicName(StrBytes::from_string(
            partition.topic.to_string(),
        )))
        .with_partition_indexes(vec![partition.partition]);
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_transaction_result(commit)
        .with_coordinator_epoch(coordinator_epoch)
        .with_topics(vec![topic]);
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let response = exchange(shard, leader, (&request, MARKERS_VERSION), unavailable).await?;
    let code = response
        .markers
        .iter()
        .flat_map(|m| &m.topics)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition.partition)
        .map_or(ResponseError::UnknownServerError.code(), |p| p.error_code);
    match code {
        0 => Ok(()),
        code => Err(code),
    }
}
