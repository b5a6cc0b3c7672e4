//! AlterConfigs (key 33), v0-2: the legacy form, which *replaces* a
//! resource's overrides with the given set (keys left out go back to their
//! default), as Kafka does. Topic values are validated first (INVALID_CONFIG
//! naming the key); the change goes through the metadata owner, is
//! persisted in `topics.json`, and reaches every owner shard with the next
//! snapshot, so it applies without a restart. Broker configs are static:
//! a non-empty change to the broker resource is refused (INVALID_REQUEST).

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{ApiSpec, RequestContext};
use crate::metadata::topic_config::{validate_overrides, ConfigEdit};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::AlterConfigs,
    min: 0,
    max: 2,
};

/// Answers AlterConfigs.
pub async fn handle(ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let (code, message) = alter_one(ctx, &resource, request.validate_only).await;
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string)),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter_one(
    ctx: &RequestContext,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> (i16, Option<String>) {
    let name = resource.resource_name.to_string();
    match resource.resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER if resource.configs.is_empty() => return (0, None),
        RESOURCE_BROKER => return broker_refusal(resource.configs.iter().map(|c| c.name.as_str())),
        other => {
            return (
                ResponseError::InvalidRequest.code(),
                Some(format!("Unsupported resource type {other}.")),
            )
        }
    }
    let pairs = resource
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())));
    let configs = match validate_overrides(pairs) {
        Ok(configs) => configs,
        Err(e) => return (e.error_code(), Some(e.message)),
    };
    let change = MetaChange::AlterTopicConfig {
        name,
        edit: ConfigEdit::Replace(configs),
        validate_only,
    };
    ctx.shard.change_metadata(change).await
}

/// The answer to a change of static broker configs.
pub(super) fn broker_refusal<'a>(names: impl Iterator<Item = &'a str>) -> (i16, Option<String>) {
    let names: Vec<&str> = names.collect();
    (
        ResponseError::InvalidRequest.code(),
        Some(format!(
            "Cannot update these configs dynamically: {}; broker configs are static (TOML file and flags).",
            names.join(", ")
        )),
    )
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn alter_configs_response_encodes_every_version() {
        let ok = AlterConfigsResourceResponse::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_error_message(None);
        let bad = ok
            .clone()
            .with_error_code(ResponseError::InvalidConfig.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Invalid value x for configuration retention.ms",
            )));
        let response = AlterConfigsResponse::default().with_responses(vec![ok, bad]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
