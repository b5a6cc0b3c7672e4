//! The broker's internal topics: the one list of their names and the rules
//! that keep clients from damaging them.
//!
//! Only the coordinators write there (group offsets and state in
//! `__consumer_offsets`, transaction state in `__transaction_state`), through
//! the owner shard with `ProduceOrigin::Coordinator`; their state is rebuilt
//! from these logs at start-up, so a client's record would become
//! coordinator state. Every check of "is this topic internal?" calls
//! [`is_internal_topic`]; a topic the broker adds goes into
//! [`INTERNAL_TOPICS`] and is protected everywhere at once.
//!
//! What a client gets (ARCHITECTURE.md, "Internal topics"):
//! - Produce, DeleteRecords, CreateTopics or auto-creation of an internal
//!   name: INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager answers
//!   ("Cannot append to internal topic", "Cannot delete records of internal
//!   topic").
//! - DeleteTopics, CreatePartitions: INVALID_REQUEST (the request is well
//!   formed, the broker will not carry it out on this topic). Growing
//!   `__consumer_offsets` would move groups to other partitions and lose
//!   their committed offsets.
//! - A config change that leaves `cleanup.policy` anything but `compact`:
//!   INVALID_CONFIG (deleting old segments would drop the latest value of
//!   keys that replay needs).

use super::topic_config::TopicConfig;

/// Offsets and group metadata (group coordinator).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Transaction state (transaction coordinator).
pub const TXN_TOPIC: &str = "__transaction_state";

/// Every internal topic. Kafka's `Topic.isInternal` knows the same two.
pub const INTERNAL_TOPICS: [&str; 2] = [OFFSETS_TOPIC, TXN_TOPIC];

/// The cleanup policy internal topics are created with and must keep:
/// replay needs only the latest value per key, and every key's latest value.
pub const INTERNAL_CLEANUP_POLICY: &str = "compact";

/// Whether `name` is one of the broker's internal topics.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Why a client may not produce to internal topic `name` (Kafka's words).
pub fn produce_refusal(name: &str) -> String {
    format!("Cannot append to internal topic {name}")
}

/// Why a client may not delete records of internal topic `name`.
pub fn delete_records_refusal(name: &str) -> String {
    format!("Cannot delete records of internal topic {name}")
}

/// Why a client may not create internal topic `name` (the coordinator
/// creates it on first use, with its own partition count and config).
pub fn create_refusal(name: &str) -> String {
    format!("Topic {name} is internal: the broker creates it, clients may not")
}

/// Why a client may not run `operation` on internal topic `name`.
pub fn admin_refusal(operation: &str, name: &str) -> String {
    format!("Cannot {operation} internal topic {name}: the coordinators keep their state in it")
}

/// Checks that internal topic `name` keeps a config its coordinator can
/// rely on; `Err` names what is wrong.
pub fn check_internal_config(name: &str, config: &TopicConfig) -> Result<(), String> {
    if config.cleanup_compact && !config.cleanup_delete {
        return Ok(());
    }
    Err(format!(
        "Internal topic {name} must keep cleanup.policy={INTERNAL_CLEANUP_POLICY}: \
         deleting old segments would lose coordinator state"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::LogDefaults;

    fn config_with_policy(policy: &str) -> TopicConfig {
        let overrides = BTreeMap::from([("cleanup.policy".to_string(), policy.to_string())]);
        TopicConfig::resolve(&LogDefaults::default(), &overrides)
    }

    #[test]
    fn internal_topics_are_exactly_kafkas() {
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(is_internal_topic("__transaction_state"));
        assert!(!is_internal_topic("__my_topic"));
        assert!(!is_internal_topic("consumer_offsets"));
    }

    #[test]
    fn internal_config_must_stay_compact_only() {
        assert!(check_internal_config(OFFSETS_TOPIC, &config_with_policy("compact")).is_ok());
        assert!(check_internal_config(OFFSETS_TOPIC, &config_with_policy("delete")).is_err());
        assert!(
            check_internal_config(OFFSETS_TOPIC, &config_with_policy("compact,delete")).is_err()
        );
        assert!(check_internal_config(TXN_TOPIC, &config_with_policy("")).is_err());
    }
}
