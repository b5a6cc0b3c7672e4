//! Internal topics that coordinators keep their state in
//! (`__consumer_offsets`, `__transaction_state`): created on first use, as
//! Kafka does, and keyed by Kafka's hash so a key's partition (and hence
//! its coordinator shard) is the one Kafka would pick.

use std::rc::Rc;

use kafka_protocol::ResponseError;

use super::{MetaChange, Shard};
use crate::config::Config;
use crate::metadata::internal_topics::{INTERNAL_CLEANUP_POLICY, OFFSETS_TOPIC, TXN_TOPIC};
use crate::metadata::PartitionLocation;

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka uses to
/// place a group or transactional id; the same placement keeps tools that
/// compute it right.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition of `key` in an internal topic of `partitions` partitions.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    (java_string_hash(key) & 0x7fff_ffff) % partitions.max(1)
}

/// The partition count internal topic `name` is created with (its
/// coordinator's setting), or `None` when `name` is not internal.
pub fn partitions_for_topic(config: &Config, name: &str) -> Option<i32> {
    match name {
        OFFSETS_TOPIC => Some(config.offsets_topic_partitions),
        TXN_TOPIC => Some(config.txn.state_partitions),
        _ => None,
    }
}

/// Creates internal topic `name` (compacted: replay needs only the latest
/// value per key) with `partitions` partitions if it does not exist yet;
/// returns its partition count.
pub async fn ensure(shard: &Rc<Shard>, name: &str, partitions: i32) -> Result<i32, i16> {
    if let Some(t) = shard.snapshot().topic(name) {
        return Ok(t.partition_count());
    }
    let change = MetaChange::CreateTopic {
        name: name.to_string(),
        partitions,
        configs: [(
            "cleanup.policy".to_string(),
            INTERNAL_CLEANUP_POLICY.to_string(),
        )]
        .into(),
        replication_factor: crate::shard::DEFAULT_REPLICATION,
    };
    let (code, message) = shard.change_metadata(change).await;
    if code != 0 && code != ResponseError::TopicAlreadyExists.code() {
        tracing::warn!("cannot create {name}: {code} {message:?}");
        return Err(ResponseError::CoordinatorNotAvailable.code());
    }
    shard
        .snapshot()
        .topic(name)
        .map(|t| t.partition_count())
        .ok_or(ResponseError::CoordinatorNotAvailable.code())
}

/// The coordinator of `key` in internal topic `name`: (owner shard,
/// partition), creating the topic first if needed.
pub async fn owner_of(
    shard: &Rc<Shard>,
    name: &str,
    partitions: i32,
    key: &str,
) -> Result<(usize, i32), i16> {
    let count = ensure(shard, name, partitions).await?;
    let partition = partition_for(key, count);
    // Another broker leads it: the client asks FindCoordinator again.
    let owner = match shard.snapshot().locate(name, partition) {
        PartitionLocation::Local(owner) => owner,
        PartitionLocation::Remote { .. } => return Err(ResponseError::NotCoordinator.code()),
        PartitionLocation::Unknown => return Err(ResponseError::CoordinatorNotAvailable.code()),
    };
    Ok((owner, partition))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;
    use crate::metadata::INTERNAL_TOPICS;

    #[test]
    fn internal_topic_every_one_has_its_coordinators_partition_count() {
        let config = Config::resolve(Flags::default()).expect("default config");
        for name in INTERNAL_TOPICS {
            let partitions = partitions_for_topic(&config, name);
            assert!(partitions.is_some_and(|p| p >= 1), "{name}: {partitions:?}");
        }
        assert_eq!(partitions_for_topic(&config, "orders"), None);
    }
}
