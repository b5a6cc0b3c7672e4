//! Transactions (KIP-98): the transaction coordinator and its state topic.
//!
//! - Where a transactional id lives: its `__transaction_state` partition is
//!   Kafka's hash of the id modulo `transaction_state_partitions`, and the
//!   shard owning that partition coordinates it, so an id's state and its
//!   writes stay on one core (as groups do with `__consumer_offsets`).
//!   Handlers on any shard reach it with [`on_coordinator`].
//! - [`state`]: the states and Kafka's transition rules, pure.
//! - [`records`]: the state topic's record formats (Kafka's).
//! - [`coordinator`]: one shard's ids: InitProducerId, AddPartitions,
//!   EndTxn, the timeout sweeper, describe/list.
//! - [`markers`]: writing COMMIT/ABORT markers to every partition of a
//!   transaction (and completing transactional offset commits).
//! - The partition side (markers, last stable offset, aborted index,
//!   read_committed) is `shard::partition::txn`; KIP-890 part 1
//!   verification of transactional produce is [`verify_partition`].
//!
//! Decisions: EndTxn answers after every marker is durable and the
//! Complete state is written (Kafka answers after Prepare and writes
//! markers in the background); one round trip more for the client, but a
//! committed transaction is visible the moment the commit returns. Markers
//! carry coordinator epoch 0: one broker, no coordinator failover yet.

pub mod coordinator;
pub mod markers;
pub mod records;
pub mod remote;
pub mod state;

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::ResponseError;

pub use coordinator::TxnCoordinator;

use crate::metadata::{PartitionId, PartitionLocation};
use crate::shard::{internal_topic, Shard};

/// The internal topic holding transaction state.
pub use crate::metadata::internal_topics::TXN_TOPIC;

/// Delay before a shard's first sweep after start: transactions left in a
/// Prepare state by a crash get their markers soon after a restart.
pub const FIRST_SWEEP_DELAY: Duration = Duration::from_secs(1);

/// Creates `__transaction_state` if needed; returns its partition count.
pub async fn ensure_txn_topic(shard: &Rc<Shard>) -> Result<i32, i16> {
    internal_topic::ensure(shard, TXN_TOPIC, shard.config.txn.state_partitions).await
}

/// Runs `f(shard, state_partition)` on the coordinator shard of
/// `transactional_id`, or returns the Kafka error that prevented it.
pub async fn on_coordinator<F, Fut, T>(
    shard: &Rc<Shard>,
    transactional_id: &str,
    f: F,
) -> Result<T, i16>
where
    F: FnOnce(Rc<Shard>, i32) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let partitions = shard.config.txn.state_partitions;
    let (owner, partition) =
        internal_topic::owner_of(shard, TXN_TOPIC, partitions, transactional_id).await?;
    shard
        .run_on(owner, move |shard| f(shard, partition))
        .await
        .ok_or(ResponseError::CoordinatorNotAvailable.code())
}

/// Runs a coordinator operation for `transactional_id` and returns the
/// Kafka code for a client of request `version`: 0, or the error (with
/// PRODUCER_FENCED shown as INVALID_PRODUCER_EPOCH to versions before
/// `fenced_since`, KIP-588).
pub async fn coordinator_code<F, Fut>(
    shard: &Rc<Shard>,
    transactional_id: &str,
    version: i16,
    fenced_since: i16,
    f: F,
) -> i16
where
    F: FnOnce(Rc<Shard>, i32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), i16>> + 'static,
{
    match on_coordinator(shard, transactional_id, f)
        .await
        .and_then(|r| r)
    {
        Ok(()) => 0,
        Err(code) => state::for_version(code, version, fenced_since),
    }
}

/// KIP-890 part 1: whether `id` is in the ongoing transaction of
/// `transactional_id` with this producer id and epoch. Asked by a
/// partition's owner before it appends a transactional batch.
pub async fn verify_partition(
    shard: &Rc<Shard>,
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
    id: PartitionId,
) -> Result<(), i16> {
    // The coordinator on another broker (a cluster): asked over the wire.
    let count = internal_topic::ensure(shard, TXN_TOPIC, shard.config.txn.state_partitions).await?;
    let coordinator_partition = internal_topic::partition_for(&transactional_id, count);
    if let PartitionLocation::Remote { leader, .. } =
        shard.snapshot().locate(TXN_TOPIC, coordinator_partition)
    {
        if leader < 0 {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        }
        return remote::verify(shard, leader, transactional_id, (producer_id, epoch), &id).await;
    }
    let key = transactional_id.clone();
    on_coordinator(shard, &key, move |shard, partition| async move {
        let coordinator = &shard.txns;
        coordinator.ready(&shard, partition).await?;
        coordinator.verify(&transactional_id, producer_id, epoch, &id)
    })
    .await?
}

/// Starts this shard's sweeper: loads the state partitions it owns, aborts
/// timed-out transactions and finishes those a crash left half-written.
pub fn spawn_sweeper(shard: Rc<Shard>) {
    glommio::spawn_local(async move {
        glommio::timer::sleep(FIRST_SWEEP_DELAY).await;
        loop {
            shard.txns.sweep(&shard).await;
            glommio::timer::sleep(Duration::from_millis(shard.config.txn.abort_check_ms)).await;
        }
    })
    .detach();
}
