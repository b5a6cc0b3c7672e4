//! OffsetCommit v0-1. v0 has no generation or member (Kafka kept those
//! offsets in ZooKeeper; this broker keeps them in `__consumer_offsets` like
//! every other commit, so v0 and newer commits and fetches see each other).
//! v1 adds the generation, the member and a per-partition commit timestamp.
//! Both are handled as v2 with generation -1 and no member for v0, which
//! Kafka accepts from a client that commits outside a group; v1's commit
//! timestamp is not kept (the broker's clock stamps the commit, as it does
//! for the -1 every client sends). The response is v2's bytes (throttle time
//! comes in v3).

use std::ops::RangeInclusive;

use anyhow::Result;
use bytes::BufMut;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::StrBytes;

use super::wire::{self, legacy_codec, same_layout_as};

/// Versions coded here.
pub const VERSIONS: RangeInclusive<i16> = 0..=1;

/// The crate's version the request is handled as and whose response bytes
/// v0-1 share.
pub const HANDLED_AS: i16 = 2;

/// No generation: v0 commits, and v1 commits from outside a group.
const GENERATION_NONE: i32 = -1;
/// The commit timestamp that means "now" (v1).
const COMMIT_TIMESTAMP_NOW: i64 = -1;
/// The retention that means the broker's default (v2-4).
const RETENTION_DEFAULT_MS: i64 = -1;

/// Bytes of the smallest partition entry (index, offset, null metadata).
const PARTITION_BYTES_MIN: usize = 4 + 8 + 2;
/// Bytes of the smallest topic entry (empty name, empty array).
const TOPIC_BYTES_MIN: usize = 2 + 4;

/// OffsetCommit request v0-1.
#[derive(Clone, Debug, PartialEq)]
pub struct OffsetCommitRequestV0V1 {
    /// Group id.
    pub group_id: StrBytes,
    /// Generation (v1); -1 in v0.
    pub generation_id: i32,
    /// Member id (v1); empty in v0.
    pub member_id: StrBytes,
    /// Offsets to commit.
    pub topics: Vec<OffsetCommitTopicV0V1>,
}

impl Default for OffsetCommitRequestV0V1 {
    fn default() -> Self {
        Self {
            group_id: StrBytes::default(),
            generation_id: GENERATION_NONE,
            member_id: StrBytes::default(),
            topics: Vec::new(),
        }
    }
}

/// A topic of a v0-1 request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OffsetCommitTopicV0V1 {
    /// Topic name.
    pub name: StrBytes,
    /// Partitions to commit.
    pub partitions: Vec<OffsetCommitPartitionV0V1>,
}

/// A partition of a v0-1 request.
#[derive(Clone, Debug, PartialEq)]
pub struct OffsetCommitPartitionV0V1 {
    /// Partition index.
    pub partition_index: i32,
    /// Offset to commit.
    pub committed_offset: i64,
    /// Commit timestamp (v1), -1 for now; not kept.
    pub commit_timestamp: i64,
    /// Client metadata.
    pub committed_metadata: Option<StrBytes>,
}

impl Default for OffsetCommitPartitionV0V1 {
    fn default() -> Self {
        Self {
            partition_index: 0,
            committed_offset: 0,
            commit_timestamp: COMMIT_TIMESTAMP_NOW,
            committed_metadata: None,
        }
    }
}

impl OffsetCommitRequestV0V1 {
    fn read<B: ByteBuf>(buf: &mut B, version: i16) -> Result<Self> {
        let group_id = wire::string(buf)?;
        let (generation_id, member_id) = if version >= 1 {
            (wire::i32_(buf)?, wire::string(buf)?)
        } else {
            (GENERATION_NONE, StrBytes::default())
        };
        let topics = wire::array(buf, TOPIC_BYTES_MIN, |buf| {
            let name = wire::string(buf)?;
            let partitions = wire::array(buf, PARTITION_BYTES_MIN, |buf| {
                let partition_index = wire::i32_(buf)?;
                let committed_offset = wire::i64_(buf)?;
                let commit_timestamp = if version >= 1 {
                    wire::i64_(buf)?
                } else {
                    COMMIT_TIMESTAMP_NOW
                };
                Ok(OffsetCommitPartitionV0V1 {
                    partition_index,
                    committed_offset,
                    commit_timestamp,
                    committed_metadata: wire::nullable_string(buf)?,
                })
            })?;
            Ok(OffsetCommitTopicV0V1 { name, partitions })
        })?;
        Ok(Self {
            group_id,
            generation_id,
            member_id,
            topics,
        })
    }

    fn write<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<()> {
        wire::put_string(buf, &self.group_id)?;
        if version >= 1 {
            buf.put_i32(self.generation_id);
            wire::put_string(buf, &self.member_id)?;
        }
        wire::put_count(buf, Some(self.topics.len()))?;
        for topic in &self.topics {
            wire::put_string(buf, &topic.name)?;
            wire::put_count(buf, Some(topic.partitions.len()))?;
            for p in &topic.partitions {
                buf.put_i32(p.partition_index);
                buf.put_i64(p.committed_offset);
                if version >= 1 {
                    buf.put_i64(p.commit_timestamp);
                }
                wire::put_nullable_string(buf, p.committed_metadata.as_deref())?;
            }
        }
        Ok(())
    }

    /// The same commit as a v2 request.
    pub fn to_current(&self) -> OffsetCommitRequest {
        let topics = self.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p.partition_index)
                    .with_committed_offset(p.committed_offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(p.committed_metadata.clone())
            });
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(t.name.clone()))
                .with_partitions(partitions.collect())
        });
        OffsetCommitRequest::default()
            .with_group_id(GroupId(self.group_id.clone()))
            .with_generation_id_or_member_epoch(self.generation_id)
            .with_member_id(self.member_id.clone())
            .with_retention_time_ms(RETENTION_DEFAULT_MS)
            .with_topics(topics.collect())
    }
}

legacy_codec!(OffsetCommitRequestV0V1, "OffsetCommit request", VERSIONS);

/// OffsetCommit response v0-1: v2's bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OffsetCommitResponseV0V1(pub OffsetCommitResponse);

same_layout_as!(
    OffsetCommitResponseV0V1,
    OffsetCommitResponse,
    "OffsetCommit response",
    VERSIONS,
    HANDLED_AS
);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn v1_request() -> OffsetCommitRequestV0V1 {
        OffsetCommitRequestV0V1 {
            group_id: StrBytes::from_static_str("g"),
            generation_id: 3,
            member_id: StrBytes::from_static_str("m"),
            topics: vec![OffsetCommitTopicV0V1 {
                name: StrBytes::from_static_str("t"),
                partitions: vec![OffsetCommitPartitionV0V1 {
                    partition_index: 2,
                    committed_offset: 17,
                    commit_timestamp: 1_700_000_000_000,
                    committed_metadata: Some(StrBytes::from_static_str("meta")),
                }],
            }],
        }
    }

    #[test]
    fn offset_commit_request_v0_has_no_generation_nor_timestamp() {
        let request = v1_request();
        let mut v0 = Vec::new();
        request.encode(&mut v0, 0).expect("encodes");
        let mut v1 = Vec::new();
        request.encode(&mut v1, 1).expect("encodes");
        // generation (4), member "m" (2 + 1), one timestamp (8)
        assert_eq!(v1.len() - v0.len(), 4 + 3 + 8);
        let back = OffsetCommitRequestV0V1::decode(&mut &v0[..], 0).expect("decodes");
        assert_eq!(back.generation_id, GENERATION_NONE);
        assert_eq!(
            back.topics[0].partitions[0].commit_timestamp,
            COMMIT_TIMESTAMP_NOW
        );
        let current = back.to_current();
        assert_eq!(current.generation_id_or_member_epoch, -1);
        assert_eq!(current.topics[0].partitions[0].committed_offset, 17);
        assert_eq!(
            OffsetCommitRequestV0V1::decode(&mut &v1[..], 1).expect("decodes"),
            request
        );
    }
}
