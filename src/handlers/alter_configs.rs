//! AlterConfigs (key 33), v0-2: the legacy form, which *replaces* a
//! resource's overrides with the given set (keys left out go back to their
//! default), as Kafka does. Topic values are validated first (INVALID_CONFIG
//! naming the key); the change goes through the metadata owner, is
//! persisted in `topics.json`, and reaches every owner shard with the next
//! snapshot, so it applies without a restart. On the broker resource (this
//! node id, or "" for the cluster-wide default) it replaces that layer of
//! dynamic broker configs (the log defaults; read-only keys are
//! INVALID_REQUEST naming them, as Kafka answers), persisted the same way.

use crate::security::acl::Operation;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::describe_configs::{config_refusal, RESOURCE_BROKER, RESOURCE_TOPIC};
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
    if let Some(code) = config_refusal(ctx, Operation::AlterConfigs, resource.resource_type, &name) {
        return (code, None);
    }
    match resource.resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            let pairs = resource
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            return broker_change(ctx, &name, ConfigEdit::Replace(pairs), validate_only).await;
        }
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

/// A change of dynamic broker configs on the broker resource `name`: ""
/// is the cluster-wide default, this node id its own layer.
pub(super) async fn broker_change(
    ctx: &RequestContext,
    name: &str,
    edit: ConfigEdit,
    validate_only: bool,
) -> (i16, Option<String>) {
    let cluster_default = name.is_empty();
    if !cluster_default && name != ctx.shard.config.node_id.to_string() {
        return (
            ResponseError::InvalidRequest.code(),
            Some(format!(
                "Broker {name} is not this broker ({}).",
                ctx.shard.config.node_id
            )),
        );
    }
    let change = MetaChange::AlterBrokerConfig {
        cluster_default,
        edit,
        validate_only,
    };
    ctx.shard.change_metadata(change).await
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
