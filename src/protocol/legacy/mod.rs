//! Request and response bodies of the versions Kafka 3.9 still served and
//! Kafka 4.0 removed (KIP-896), which the `kafka-protocol` crate (generated
//! from Kafka 4's schemas) no longer carries: ListOffsets v0, OffsetCommit
//! v0-1, OffsetFetch v0, CreateTopics v0-1, DeleteTopics v0 and
//! DescribeConfigs v0. None of them carries record data, so serving them
//! needs no MessageSet v0/v1; Produce v0-2 and Fetch v0-3, which do, stay
//! refused as in Kafka 4.
//!
//! Each message here converts to and from the crate's struct of the oldest
//! version the crate knows, so the handlers see only the crate's types and
//! the old version changes nothing in them (`handlers::legacy` does the
//! translation). Where an old layout is byte-for-byte a version the crate
//! knows (OffsetFetch v0 is v1, DeleteTopics v0's request is v1,
//! OffsetCommit v0-1's response is v2), the crate's codec is reused at that
//! version. The codec does no I/O; `tests/codec_roundtrip.rs` round-trips
//! every type here at every version it covers.

pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod list_offsets;
pub mod offset_commit;
pub mod offset_fetch;
mod wire;

use std::ops::RangeInclusive;

use kafka_protocol::messages::ApiKey;

/// The versions decoded and encoded here, per API; every other served
/// version goes through the crate.
pub const LEGACY_VERSIONS: &[(ApiKey, RangeInclusive<i16>)] = &[
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
];

/// Whether `version` of `key` is one this module codes.
pub fn is_legacy(key: ApiKey, version: i16) -> bool {
    LEGACY_VERSIONS
        .iter()
        .any(|(k, range)| *k == key && range.contains(&version))
}
