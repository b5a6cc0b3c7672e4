//! The broker's numeric and boolean settings, as table rows (see `table`).
//!
//! One row per setting: field, key, type = default, min, max, unit. Adding a
//! setting here is one row, plus its field in `Flags` and `FileConfig` and
//! where `Config` hands it on. Relations between two rows (the heartbeat
//! interval below the session timeout) are checked in [`BrokerSettings::check_relations`].

use super::table::settings_group;
use super::*;
use crate::group::consumer::{HEARTBEAT_INTERVAL_MS_DEFAULT, SESSION_TIMEOUT_MS_DEFAULT};
use crate::group::{INITIAL_REBALANCE_DELAY_MS_DEFAULT, INITIAL_REBALANCE_DELAY_MS_MAX};

/// Longest KIP-848 session timeout and heartbeat interval, in ms (Kafka's
/// configs are ints).
pub const GROUP_CONSUMER_TIMEOUT_MS_MAX: u64 = i32::MAX as u64;

settings_group! {
    /// The broker settings that are a number or a flag within a range.
    pub(super) struct BrokerSettings {
        shards "shards": usize = available_cores().min(SHARDS_MAX), 1, SHARDS_MAX, "";
        shard_spin_us "shard-spin-us": u64 = SHARD_SPIN_US_DEFAULT, 0, SHARD_SPIN_US_MAX, "µs";
        node_id "node-id": i32 = NODE_ID_DEFAULT, 0, i32::MAX, "";
        auto_create_topics "auto-create-topics": bool = AUTO_CREATE_TOPICS_DEFAULT, false, true, "";
        default_partitions "default-partitions": i32 = DEFAULT_PARTITIONS_DEFAULT, 1, PARTITIONS_PER_TOPIC_MAX, "";
        segment_bytes "segment-bytes": u64 = SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX, "bytes";
        request_bytes_max "request-bytes-max": usize = REQUEST_BYTES_MAX_DEFAULT, REQUEST_BYTES_MAX_MIN, FRAME_BYTES_MAX, "bytes";
        tail_cache_bytes "tail-cache-bytes": usize = TAIL_CACHE_SHARD_BYTES_DEFAULT, 0, TAIL_CACHE_SHARD_BYTES_MAX, "bytes";
        offsets_topic_partitions "offsets-topic-partitions": i32 = OFFSETS_TOPIC_PARTITIONS_DEFAULT, 1, PARTITIONS_PER_TOPIC_MAX, "";
        offsets_retention_minutes "offsets-retention-minutes": u64 = OFFSETS_RETENTION_MINUTES_DEFAULT, 0, u64::MAX, "min";
        offsets_retention_check_ms "offsets-retention-check-ms": u64 = OFFSETS_RETENTION_CHECK_MS_DEFAULT, 1, u64::MAX, "ms";
        transaction_state_partitions "transaction-state-partitions": i32 = TRANSACTION_STATE_PARTITIONS_DEFAULT, 1, PARTITIONS_PER_TOPIC_MAX, "";
        transaction_max_timeout_ms "transaction-max-timeout-ms": i32 = TRANSACTION_MAX_TIMEOUT_MS_DEFAULT, 1, i32::MAX, "ms";
        transaction_abort_check_ms "transaction-abort-check-ms": u64 = TRANSACTION_ABORT_CHECK_MS_DEFAULT, 1, u64::MAX, "ms";
        transactional_id_expiration_ms "transactional-id-expiration-ms": u64 = TRANSACTIONAL_ID_EXPIRATION_MS_DEFAULT, 1, u64::MAX, "ms";
        fault_drop_produce_response_every "fault-drop-produce-response-every": u64 = 0, 0, u64::MAX, "";
        group_initial_rebalance_delay_ms "group-initial-rebalance-delay-ms": u64 = INITIAL_REBALANCE_DELAY_MS_DEFAULT, 0, INITIAL_REBALANCE_DELAY_MS_MAX, "ms";
        group_consumer_session_timeout_ms "group-consumer-session-timeout-ms": u64 = SESSION_TIMEOUT_MS_DEFAULT, 1, GROUP_CONSUMER_TIMEOUT_MS_MAX, "ms";
        group_consumer_heartbeat_interval_ms "group-consumer-heartbeat-interval-ms": u64 = HEARTBEAT_INTERVAL_MS_DEFAULT, 1, GROUP_CONSUMER_TIMEOUT_MS_MAX, "ms";
    }
}

impl BrokerSettings {
    /// Rules that tie two rows together.
    pub(super) fn check_relations(&self) -> Result<(), ConfigError> {
        // Kafka requires the interval below the session timeout, or every
        // member would expire between two heartbeats.
        let (interval, session) = (
            self.group_consumer_heartbeat_interval_ms,
            self.group_consumer_session_timeout_ms,
        );
        if interval >= session {
            return Err(invalid(
                "group-consumer-heartbeat-interval-ms",
                format!("{interval} must be below group-consumer-session-timeout-ms ({session})"),
            ));
        }
        Ok(())
    }

    /// The transaction coordinator's part.
    pub(super) fn txn(&self) -> TxnConfig {
        TxnConfig {
            state_partitions: self.transaction_state_partitions,
            max_timeout_ms: self.transaction_max_timeout_ms,
            abort_check_ms: self.transaction_abort_check_ms,
            id_expiration_ms: self.transactional_id_expiration_ms,
        }
    }
}
