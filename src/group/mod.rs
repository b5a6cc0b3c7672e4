//! Consumer groups and committed offsets: Kafka's classic group protocol,
//! and KIP-848 consumer groups in [`consumer`].
//!
//! - Where a group lives: its `__consumer_offsets` partition is
//!   `(java_hash(group_id) & 0x7fffffff) % partitions`, as in Kafka, and the
//!   group is coordinated by the shard that owns that partition, so the
//!   group's state and its log writes stay on one core. Handlers on any
//!   shard reach it with [`on_coordinator`] (`Shard::run_on`).
//! - The topic is created with `offsets_topic_partitions` partitions on the
//!   first group request (FindCoordinator, usually), as Kafka does, through
//!   the metadata owner like any topic.
//! - [`state`]: the protocol as a pure state machine (members, generations,
//!   leader, protocol selection, timeouts). [`coordinator`]: one shard's
//!   groups, long-polls and the session sweeper. [`records`]: the record
//!   formats (Kafka's). [`store`]: append + fdatasync, and replay at first
//!   use after start. [`lag`]: committed vs. log end offsets.
//! - Offsets retention: every `offsets_retention_check_ms` each coordinator
//!   shard tombstones the offsets of its groups that stayed Empty for
//!   `offsets_retention_minutes` (`retention::expired_offsets`). Every
//!   offsets partition a shard owns is replayed before the shard reports
//!   ready (`load.rs`), so this covers every group from the start.
//! - [`consumer`]: KIP-848 consumer groups (ConsumerGroupHeartbeat,
//!   server-side assignment), kept beside the classic state of the same id.
//!
//! Not yet: transactional offset commits, and upgrading a classic group with
//! members to the consumer protocol online (Kafka 4's mixed groups): a
//! ConsumerGroupHeartbeat for such a group is refused (GROUP_ID_NOT_FOUND).

pub mod consumer;
pub mod consumer_protocol;
pub mod coordinator;
pub mod lag;
mod load;
pub mod member;
pub mod records;
pub mod retention;
pub mod state;
pub mod store;
pub mod txn_offsets;

use std::future::Future;
use std::rc::Rc;

use kafka_protocol::ResponseError;

pub use coordinator::GroupCoordinator;

use crate::shard::{internal_topic, Shard};

/// The internal topic holding offsets and group metadata.
pub use crate::metadata::internal_topics::OFFSETS_TOPIC;

/// Kafka's group.initial.rebalance.delay.ms default: how long the first
/// rebalance of an empty classic group waits for more members.
pub const INITIAL_REBALANCE_DELAY_MS_DEFAULT: u64 = 3_000;
/// Its bound: Kafka's type for it is INT.
pub const INITIAL_REBALANCE_DELAY_MS_MAX: u64 = i32::MAX as u64;

pub use crate::shard::internal_topic::{java_string_hash, partition_for};

/// Creates `__consumer_offsets` if it does not exist yet; returns its
/// partition count.
pub async fn ensure_offsets_topic(shard: &Rc<Shard>) -> Result<i32, i16> {
    internal_topic::ensure(shard, OFFSETS_TOPIC, shard.config.offsets_topic_partitions).await
}

/// The coordinator of `group_id`: (owner shard, offsets partition).
pub async fn coordinator_for(shard: &Rc<Shard>, group_id: &str) -> Result<(usize, i32), i16> {
    let partitions = shard.config.offsets_topic_partitions;
    internal_topic::owner_of(shard, OFFSETS_TOPIC, partitions, group_id).await
}

/// Runs `f(shard, offsets_partition)` on the coordinator shard of
/// `group_id` and returns its result, or the Kafka error that prevented it.
pub async fn on_coordinator<F, Fut, T>(shard: &Rc<Shard>, group_id: &str, f: F) -> Result<T, i16>
where
    F: FnOnce(Rc<Shard>, i32) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (owner, partition) = coordinator_for(shard, group_id).await?;
    shard
        .run_on(owner, move |shard| f(shard, partition))
        .await
        .ok_or(ResponseError::CoordinatorNotAvailable.code())
}

#[cfg(test)]
mod tests;
