//! DeleteTopics v0: the request is v1's bytes; the response lacks v1's
//! throttle time. Handled as v1.

use std::ops::RangeInclusive;

use anyhow::Result;
use bytes::BufMut;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire::{self, legacy_codec, same_layout_as};

/// Versions coded here.
pub const VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's version v0 is handled as and whose request bytes it shares.
pub const HANDLED_AS: i16 = 1;

/// Bytes of the smallest result entry (empty name, error code).
const RESULT_BYTES_MIN: usize = 2 + 2;

/// DeleteTopics request v0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeleteTopicsRequestV0(pub DeleteTopicsRequest);

same_layout_as!(
    DeleteTopicsRequestV0,
    DeleteTopicsRequest,
    "DeleteTopics request",
    VERSIONS,
    HANDLED_AS
);

/// DeleteTopics response v0, as the crate's struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeleteTopicsResponseV0(pub DeleteTopicsResponse);

impl DeleteTopicsResponseV0 {
    fn read<B: ByteBuf>(buf: &mut B, _version: i16) -> Result<Self> {
        let responses = wire::array(buf, RESULT_BYTES_MIN, |buf| {
            let name = TopicName(wire::string(buf)?);
            Ok(DeletableTopicResult::default()
                .with_name(Some(name))
                .with_error_code(wire::i16_(buf)?))
        })?;
        Ok(Self(
            DeleteTopicsResponse::default().with_responses(responses),
        ))
    }

    fn write<B: BufMut>(&self, buf: &mut B, _version: i16) -> Result<()> {
        wire::put_count(buf, Some(self.0.responses.len()))?;
        for r in &self.0.responses {
            // Names are always set below v6 (topic ids come in v6).
            wire::put_string(buf, r.name.as_deref().map_or("", |n| n.as_str()))?;
            buf.put_i16(r.error_code);
        }
        Ok(())
    }
}

legacy_codec!(DeleteTopicsResponseV0, "DeleteTopics response", VERSIONS);
