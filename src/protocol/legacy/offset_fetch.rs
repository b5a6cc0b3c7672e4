//! OffsetFetch v0: v1's bytes. Kafka read v0 answers from ZooKeeper (and
//! refused v0 in KRaft mode); this broker keeps every commit in
//! `__consumer_offsets`, so v0 reads the same store as v1.

use std::ops::RangeInclusive;

use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::wire::same_layout_as;

/// Versions coded here.
pub const VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's version v0 is handled as and whose bytes it shares.
pub const HANDLED_AS: i16 = 1;

/// OffsetFetch request v0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OffsetFetchRequestV0(pub OffsetFetchRequest);

/// OffsetFetch response v0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OffsetFetchResponseV0(pub OffsetFetchResponse);

same_layout_as!(
    OffsetFetchRequestV0,
    OffsetFetchRequest,
    "OffsetFetch request",
    VERSIONS,
    HANDLED_AS
);
same_layout_as!(
    OffsetFetchResponseV0,
    OffsetFetchResponse,
    "OffsetFetch response",
    VERSIONS,
    HANDLED_AS
);
