//! CreateTopics v0-1. The request is v2's without `validate_only` in v0;
//! the response lacks v2's throttle time, and v0 also the error message.
//! Handled as v2.

use std::ops::RangeInclusive;

use anyhow::Result;
use bytes::BufMut;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire::{self, legacy_codec};

/// Versions coded here.
pub const VERSIONS: RangeInclusive<i16> = 0..=1;

/// The crate's version the request is handled as.
pub const HANDLED_AS: i16 = 2;

/// Bytes of the smallest topic entry: name, partitions, replication,
/// two empty arrays.
const TOPIC_BYTES_MIN: usize = 2 + 4 + 2 + 4 + 4;
/// Bytes of the smallest assignment entry.
const ASSIGNMENT_BYTES_MIN: usize = 4 + 4;
/// Bytes of the smallest config entry (empty name, null value).
const CONFIG_BYTES_MIN: usize = 2 + 2;
/// Bytes of the smallest result entry (empty name, error code).
const RESULT_BYTES_MIN: usize = 2 + 2;

/// CreateTopics request v0-1, as the crate's struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateTopicsRequestV0V1(pub CreateTopicsRequest);

/// CreateTopics response v0-1, as the crate's struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateTopicsResponseV0V1(pub CreateTopicsResponse);

impl CreateTopicsRequestV0V1 {
    fn read<B: ByteBuf>(buf: &mut B, version: i16) -> Result<Self> {
        let topics = wire::array(buf, TOPIC_BYTES_MIN, read_topic)?;
        let timeout_ms = wire::i32_(buf)?;
        let validate_only = version >= 1 && wire::bool_(buf)?;
        Ok(Self(
            CreateTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(timeout_ms)
                .with_validate_only(validate_only),
        ))
    }

    fn write<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<()> {
        let request = &self.0;
        wire::put_count(buf, Some(request.topics.len()))?;
        for topic in &request.topics {
            write_topic(buf, topic)?;
        }
        buf.put_i32(request.timeout_ms);
        if version >= 1 {
            buf.put_i8(i8::from(request.validate_only));
        }
        Ok(())
    }
}

fn read_topic<B: ByteBuf>(buf: &mut B) -> Result<CreatableTopic> {
    let name = TopicName(wire::string(buf)?);
    let num_partitions = wire::i32_(buf)?;
    let replication_factor = wire::i16_(buf)?;
    let assignments = wire::array(buf, ASSIGNMENT_BYTES_MIN, |buf| {
        let partition_index = wire::i32_(buf)?;
        let broker_ids = wire::array(buf, 4, |buf| Ok(BrokerId(wire::i32_(buf)?)))?;
        Ok(CreatableReplicaAssignment::default()
            .with_partition_index(partition_index)
            .with_broker_ids(broker_ids))
    })?;
    let configs = wire::array(buf, CONFIG_BYTES_MIN, |buf| {
        let name = wire::string(buf)?;
        Ok(CreatableTopicConfig::default()
            .with_name(name)
            .with_value(wire::nullable_string(buf)?))
    })?;
    Ok(CreatableTopic::default()
        .with_name(name)
        .with_num_partitions(num_partitions)
        .with_replication_factor(replication_factor)
        .with_assignments(assignments)
        .with_configs(configs))
}

fn write_topic<B: BufMut>(buf: &mut B, topic: &CreatableTopic) -> Result<()> {
    wire::put_string(buf, &topic.name)?;
    buf.put_i32(topic.num_partitions);
    buf.put_i16(topic.replication_factor);
    wire::put_count(buf, Some(topic.assignments.len()))?;
    for a in &topic.assignments {
        buf.put_i32(a.partition_index);
        wire::put_count(buf, Some(a.broker_ids.len()))?;
        for id in &a.broker_ids {
            buf.put_i32(id.0);
        }
    }
    wire::put_count(buf, Some(topic.configs.len()))?;
    for c in &topic.configs {
        wire::put_string(buf, &c.name)?;
        wire::put_nullable_string(buf, c.value.as_deref())?;
    }
    Ok(())
}

impl CreateTopicsResponseV0V1 {
    fn read<B: ByteBuf>(buf: &mut B, version: i16) -> Result<Self> {
        let topics = wire::array(buf, RESULT_BYTES_MIN, |buf| {
            let name = TopicName(wire::string(buf)?);
            let error_code = wire::i16_(buf)?;
            let error_message = if version >= 1 {
                wire::nullable_string(buf)?
            } else {
                None
            };
            Ok(CreatableTopicResult::default()
                .with_name(name)
                .with_error_code(error_code)
                .with_error_message(error_message))
        })?;
        Ok(Self(CreateTopicsResponse::default().with_topics(topics)))
    }

    fn write<B: BufMut>(&self, buf: &mut B, version: i16) -> Result<()> {
        wire::put_count(buf, Some(self.0.topics.len()))?;
        for topic in &self.0.topics {
            wire::put_string(buf, &topic.name)?;
            buf.put_i16(topic.error_code);
            if version >= 1 {
                wire::put_nullable_string(buf, topic.error_message.as_deref())?;
            }
        }
        Ok(())
    }
}

legacy_codec!(CreateTopicsRequestV0V1, "CreateTopics request", VERSIONS);
legacy_codec!(CreateTopicsResponseV0V1, "CreateTopics response", VERSIONS);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    #[test]
    fn create_topics_request_v1_is_v2_bytes() {
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_num_partitions(3)
                .with_replication_factor(1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("cleanup.policy"))
                    .with_value(Some(StrBytes::from_static_str("compact")))])])
            .with_timeout_ms(5_000)
            .with_validate_only(true);
        let mut v2 = Vec::new();
        request.encode(&mut v2, 2).expect("encodes");
        let mut v1 = Vec::new();
        CreateTopicsRequestV0V1(request.clone())
            .encode(&mut v1, 1)
            .expect("encodes");
        assert_eq!(v1, v2);
        let mut v0 = Vec::new();
        CreateTopicsRequestV0V1(request.clone())
            .encode(&mut v0, 0)
            .expect("encodes");
        assert_eq!(v0[..], v2[..v2.len() - 1], "v0 lacks only validate_only");
        let back = CreateTopicsRequestV0V1::decode(&mut &v0[..], 0).expect("decodes");
        assert!(!back.0.validate_only);
        assert_eq!(back.0.topics, request.topics);
    }
}
