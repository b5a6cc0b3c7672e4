//! ListOffsets v0 (what sarama, and so Burrow, sends unless told a newer
//! Kafka version): per partition a timestamp and `max_num_offsets`, and an
//! answer of `old_style_offsets`, an array, instead of one offset and its
//! timestamp.
//!
//! It is served through the v1 handler: the array holds the one offset v1
//! finds, or nothing when v1 finds none, when `max_num_offsets` is not
//! positive or on an error. For latest (-1) and earliest (-2) with
//! `max_num_offsets` 1, what every client of it asks, that is Kafka's
//! answer. Kafka 3.9 answered more than one offset (segment base offsets)
//! when asked for more, and answered a timestamp with segment base offsets
//! by file modification time rather than the first record at or after it;
//! neither is kept: no client relies on them, and Kafka 4 dropped them.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use anyhow::Result;
use bytes::BufMut;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::StrBytes;

use super::wire::{self, legacy_codec};

/// Versions coded here.
pub const VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's version the request is handled as.
pub const HANDLED_AS: i16 = 1;

/// Bytes of a partition entry in a request (index, timestamp, max).
const REQUEST_PARTITION_BYTES: usize = 4 + 8 + 4;
/// Bytes of the smallest topic entry (empty name, empty array).
const TOPIC_BYTES_MIN: usize = 2 + 4;
/// Bytes of the smallest partition entry in a response.
const RESPONSE_PARTITION_BYTES_MIN: usize = 4 + 2 + 4;

/// ListOffsets request v0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOffsetsRequestV0 {
    /// The requesting broker, -1 for a client.
    pub replica_id: i32,
    /// Topics asked about.
    pub topics: Vec<ListOffsetsTopicV0>,
}

/// A topic of a v0 request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOffsetsTopicV0 {
    /// Topic name.
    pub name: StrBytes,
    /// Partitions asked about.
    pub partitions: Vec<ListOffsetsPartitionV0>,
}

/// A partition of a v0 request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOffsetsPartitionV0 {
    /// Partition index.
    pub partition_index: i32,
    /// Target timestamp (ms), or -1 latest, -2 earliest.
    pub timestamp: i64,
    /// Most offsets to answer.
    pub max_num_offsets: i32,
}

/// ListOffsets response v0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOffsetsResponseV0 {
    /// Per topic answers.
    pub topics: Vec<ListOffsetsTopicResponseV0>,
}

/// A topic of a v0 response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOffsetsTopicResponseV0 {
    /// Topic name.
    pub name: StrBytes,
    /// Per partition answers.
    pub partitions: Vec<ListOffsetsPartitionResponseV0>,
}

/// A partition of a v0 response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListOffsetsPartitionResponseV0 {
    /// Partition index.
    pub partition_index: i32,
    /// Kafka error code.
    pub error_code: i16,
    /// Offsets found, newest first.
    pub old_style_offsets: Vec<i64>,
}

impl ListOffsetsRequestV0 {
    fn read<B: ByteBuf>(buf: &mut B, _version: i16) -> Result<Self> {
        let replica_id = wire::i32_(buf)?;
        let topics = wire::array(buf, TOPIC_BYTES_MIN, |buf| {
            let name = wire::string(buf)?;
            let partitions = wire::array(buf, REQUEST_PARTITION_BYTES, |buf| {
                Ok(ListOffsetsPartitionV0 {
                    partition_index: wire::i32_(buf)?,
                    timestamp: wire::i64_(buf)?,
                    max_num_offsets: wire::i32_(buf)?,
                })
            })?;
            Ok(ListOffsetsTopicV0 { name, partitions })
        })?;
        Ok(Self { replica_id, topics })
    }

    fn write<B: BufMut>(&self, buf: &mut B, _version: i16) -> Result<()> {
        buf.put_i32(self.replica_id);
        wire::put_count(buf, Some(self.topics.len()))?;
        for topic in &self.topics {
            wire::put_string(buf, &topic.name)?;
            wire::put_count(buf, Some(topic.partitions.len()))?;
            for p in &topic.partitions {
                buf.put_i32(p.partition_index);
                buf.put_i64(p.timestamp);
                buf.put_i32(p.max_num_offsets);
            }
        }
        Ok(())
    }

    /// The same question as a v1 request.
    pub fn to_current(&self) -> ListOffsetsRequest {
        let topics = self.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                ListOffsetsPartition::default()
                    .with_partition_index(p.partition_index)
                    .with_timestamp(p.timestamp)
                    .with_current_leader_epoch(-1)
            });
            ListOffsetsTopic::default()
                .with_name(TopicName(t.name.clone()))
                .with_partitions(partitions.collect())
        });
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(self.replica_id))
            .with_topics(topics.collect())
    }
}

impl ListOffsetsResponseV0 {
    fn read<B: ByteBuf>(buf: &mut B, _version: i16) -> Result<Self> {
        let topics = wire::array(buf, TOPIC_BYTES_MIN, |buf| {
            let name = wire::string(buf)?;
            let partitions = wire::array(buf, RESPONSE_PARTITION_BYTES_MIN, |buf| {
                Ok(ListOffsetsPartitionResponseV0 {
                    partition_index: wire::i32_(buf)?,
                    error_code: wire::i16_(buf)?,
                    old_style_offsets: wire::array(buf, 8, |buf| wire::i64_(buf))?,
                })
            })?;
            Ok(ListOffsetsTopicResponseV0 { name, partitions })
        })?;
        Ok(Self { topics })
    }

    fn write<B: BufMut>(&self, buf: &mut B, _version: i16) -> Result<()> {
        wire::put_count(buf, Some(self.topics.len()))?;
        for topic in &self.topics {
            wire::put_string(buf, &topic.name)?;
            wire::put_count(buf, Some(topic.partitions.len()))?;
            for p in &topic.partitions {
                buf.put_i32(p.partition_index);
                buf.put_i16(p.error_code);
                wire::put_count(buf, Some(p.old_style_offsets.len()))?;
                for offset in &p.old_style_offsets {
                    buf.put_i64(*offset);
                }
            }
        }
        Ok(())
    }

    /// The v1 answer to `request.to_current()` in v0's form.
    pub fn from_current(request: &ListOffsetsRequestV0, response: ListOffsetsResponse) -> Self {
        let max_num_offsets: HashMap<(&str, i32), i32> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.as_str(), p.partition_index), p.max_num_offsets))
            })
            .collect();
        let topics = response.topics.into_iter().map(|t| {
            let name = t.name.0;
            let partitions = t.partitions.into_iter().map(|p| {
                let max = max_num_offsets
                    .get(&(name.as_str(), p.partition_index))
                    .copied()
                    .unwrap_or(0);
                let found = p.error_code == 0 && p.offset >= 0 && max > 0;
                ListOffsetsPartitionResponseV0 {
                    partition_index: p.partition_index,
                    error_code: p.error_code,
                    old_style_offsets: if found { vec![p.offset] } else { Vec::new() },
                }
            });
            let partitions = partitions.collect();
            ListOffsetsTopicResponseV0 { name, partitions }
        });
        Self {
            topics: topics.collect(),
        }
    }
}

legacy_codec!(ListOffsetsRequestV0, "ListOffsets request", VERSIONS);
legacy_codec!(ListOffsetsResponseV0, "ListOffsets response", VERSIONS);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};

    /// What sarama 1.22 sends for `client.GetOffset(topic, 0, OffsetNewest)`
    /// against an old Kafka version: replica -1, one topic, one partition,
    /// timestamp -1, max 1.
    fn sarama_latest() -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(-1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(1);
        b.put_i32(0);
        b.put_i64(-1);
        b.put_i32(1);
        b
    }

    #[test]
    fn list_offsets_request_v0_decodes_sarama_latest() {
        let request = ListOffsetsRequestV0::decode(&mut &sarama_latest()[..], 0).expect("decodes");
        let current = request.to_current();
        assert_eq!(current.replica_id, BrokerId(-1));
        assert_eq!(current.topics[0].name.0.as_str(), "t");
        assert_eq!(current.topics[0].partitions[0].timestamp, -1);
        let mut again = Vec::new();
        request.encode(&mut again, 0).expect("encodes");
        assert_eq!(again, sarama_latest());
    }

    #[test]
    fn list_offsets_response_v0_holds_the_v1_offset_up_to_max() {
        let request = ListOffsetsRequestV0::decode(&mut &sarama_latest()[..], 0).expect("decodes");
        let mut none = request.clone();
        none.topics[0].partitions[0].max_num_offsets = 0;
        let v1 = |offset: i64, error_code: i16| {
            ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![ListOffsetsPartitionResponse::default()
                    .with_offset(offset)
                    .with_error_code(error_code)])])
        };
        let offsets =
            |r: ListOffsetsResponseV0| r.topics[0].partitions[0].old_style_offsets.clone();
        assert_eq!(
            offsets(ListOffsetsResponseV0::from_current(&request, v1(42, 0))),
            vec![42]
        );
        assert!(offsets(ListOffsetsResponseV0::from_current(&none, v1(42, 0))).is_empty());
        assert!(offsets(ListOffsetsResponseV0::from_current(&request, v1(-1, 0))).is_empty());
        assert!(offsets(ListOffsetsResponseV0::from_current(&request, v1(-1, 3))).is_empty());
    }

    #[test]
    fn list_offsets_request_v0_refuses_a_lying_array_length() {
        let mut b = sarama_latest();
        b[4..8].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(ListOffsetsRequestV0::decode(&mut &b[..], 0).is_err());
        assert!(ListOffsetsRequestV0::decode(&mut &b[..3], 0).is_err());
        assert!(ListOffsetsRequestV0::decode(&mut &sarama_latest()[..], 1).is_err());
    }
}
