//! DescribeConfigs v0: no `include_synonyms` in the request; per config an
//! `is_default` flag where v1 has `config_source` and synonyms. Handled as
//! v1 without synonyms; a config is default when its source is
//! DEFAULT_CONFIG, as Kafka 3.9 derived it.

use std::ops::RangeInclusive;

use anyhow::Result;
use bytes::BufMut;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire::{self, legacy_codec};

/// Versions coded here.
pub const VERSIONS: RangeInclusive<i16> = 0..=0;

/// The crate's version the request is handled as.
pub const HANDLED_AS: i16 = 1;

/// `config_source` of a config nobody set (Kafka's DEFAULT_CONFIG).
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;
/// `config_source` of a v0 config that is not default: v0 does not say
/// which source it has (Kafka's UNKNOWN).
pub const CONFIG_SOURCE_UNKNOWN: i8 = 0;

/// Bytes of the smallest resource entry: type, empty name, null keys.
const RESOURCE_BYTES_MIN: usize = 1 + 2 + 4;
/// Bytes of the smallest result entry: error, null message, type, empty
/// name, empty configs.
const RESULT_BYTES_MIN: usize = 2 + 2 + 1 + 2 + 4;
/// Bytes of the smallest config entry: empty name, null value, 3 flags.
const CONFIG_BYTES_MIN: usize = 2 + 2 + 3;

/// DescribeConfigs request v0, as the crate's struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DescribeConfigsRequestV0(pub DescribeConfigsRequest);

/// DescribeConfigs response v0, as the crate's struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DescribeConfigsResponseV0(pub DescribeConfigsResponse);

impl DescribeConfigsRequestV0 {
    fn read<B: ByteBuf>(buf: &mut B, _version: i16) -> Result<Self> {
        let resources = wire::array(buf, RESOURCE_BYTES_MIN, |buf| {
            let resource_type = wire::i8_(buf)?;
            let resource_name = wire::string(buf)?;
            let keys = wire::nullable_array(buf, 2, |buf| wire::string(buf))?;
            Ok(DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(resource_name)
                .with_configuration_keys(keys))
        })?;
        Ok(Self(
            DescribeConfigsRequest::default()
                .with_resources(resources)
                .with_include_synonyms(false),
        ))
    }

    fn write<B: BufMut>(&self, buf: &mut B, _version: i16) -> Result<()> {
        wire::put_count(buf, Some(self.0.resources.len()))?;
        for r in &self.0.resources {
            buf.put_i8(r.resource_type);
            wire::put_string(buf, &r.resource_name)?;
            let keys = r.configuration_keys.as_ref();
            wire::put_count(buf, keys.map(Vec::len))?;
            for key in keys.into_iter().flatten() {
                wire::put_string(buf, key)?;
            }
        }
        Ok(())
    }
}

impl DescribeConfigsResponseV0 {
    fn read<B: ByteBuf>(buf: &mut B, _version: i16) -> Result<Self> {
        let throttle_time_ms = wire::i32_(buf)?;
        let results = wire::array(buf, RESULT_BYTES_MIN, |buf| {
            let error_code = wire::i16_(buf)?;
            let error_message = wire::nullable_string(buf)?;
            let resource_type = wire::i8_(buf)?;
            let resource_name = wire::string(buf)?;
            let configs = wire::array(buf, CONFIG_BYTES_MIN, read_config)?;
            Ok(DescribeConfigsResult::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource_type)
                .with_resource_name(resource_name)
                .with_configs(configs))
        })?;
        Ok(Self(
            DescribeConfigsResponse::default()
                .with_throttle_time_ms(throttle_time_ms)
                .with_results(results),
        ))
    }

    fn write<B: BufMut>(&self, buf: &mut B, _version: i16) -> Result<()> {
        buf.put_i32(self.0.throttle_time_ms);
        wire::put_count(buf, Some(self.0.results.len()))?;
        for r in &self.0.results {
            buf.put_i16(r.error_code);
            wire::put_nullable_string(buf, r.error_message.as_deref())?;
            buf.put_i8(r.resource_type);
            wire::put_string(buf, &r.resource_name)?;
            wire::put_count(buf, Some(r.configs.len()))?;
            for c in &r.configs {
                wire::put_string(buf, &c.name)?;
                wire::put_nullable_string(buf, c.value.as_deref())?;
                buf.put_i8(i8::from(c.read_only));
                buf.put_i8(i8::from(c.config_source == CONFIG_SOURCE_DEFAULT));
                buf.put_i8(i8::from(c.is_sensitive));
            }
        }
        Ok(())
    }
}

fn read_config<B: ByteBuf>(buf: &mut B) -> Result<DescribeConfigsResourceResult> {
    let name = wire::string(buf)?;
    let value = wire::nullable_string(buf)?;
    let read_only = wire::bool_(buf)?;
    let is_default = wire::bool_(buf)?;
    let is_sensitive = wire::bool_(buf)?;
    Ok(DescribeConfigsResourceResult::default()
        .with_name(name)
        .with_value(value)
        .with_read_only(read_only)
        .with_config_source(if is_default {
            CONFIG_SOURCE_DEFAULT
        } else {
            CONFIG_SOURCE_UNKNOWN
        })
        .with_is_sensitive(is_sensitive))
}

legacy_codec!(
    DescribeConfigsRequestV0,
    "DescribeConfigs request",
    VERSIONS
);
legacy_codec!(
    DescribeConfigsResponseV0,
    "DescribeConfigs response",
    VERSIONS
);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    #[test]
    fn describe_configs_response_v0_says_default_for_default_source() {
        let config = |name: &'static str, source: i8| {
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_static_str("1")))
                .with_config_source(source)
        };
        let response =
            DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![config("a", CONFIG_SOURCE_DEFAULT), config("b", 1)])]);
        let mut bytes = Vec::new();
        DescribeConfigsResponseV0(response)
            .encode(&mut bytes, 0)
            .expect("encodes");
        let back = DescribeConfigsResponseV0::decode(&mut &bytes[..], 0).expect("decodes");
        let sources: Vec<i8> = back.0.results[0]
            .configs
            .iter()
            .map(|c| c.config_source)
            .collect();
        assert_eq!(sources, vec![CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_UNKNOWN]);
    }
}
