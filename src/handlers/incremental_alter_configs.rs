//! IncrementalAlterConfigs (key 44), v0-1: SET, DELETE, APPEND, SUBTRACT
//! on single keys of a resource, as in KIP-339. APPEND and SUBTRACT apply
//! to list keys only (`cleanup.policy`), else INVALID_REQUEST as Kafka
//! answers; a key named twice is INVALID_REQUEST; a bad value is
//! INVALID_CONFIG naming the key. The metadata owner applies the operations
//! to the topic's current overrides (so concurrent alters compose),
//! persists the result and broadcasts it: it applies without a restart.
//! On the broker resource the same operations edit a layer of dynamic
//! broker configs (see `alter_configs`). Group configs are refused (every
//! group has the broker's `group.consumer.*` values; see DescribeConfigs).

use crate::security::acl::Operation;
use std::collections::BTreeSet;

use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::alter_configs::broker_change;
use super::describe_configs::{
    config_refusal, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC,
};
use super::{ApiSpec, RequestContext};
use crate::metadata::topic_config::{AlterOp, ConfigEdit};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::IncrementalAlterConfigs,
    min: 0,
    max: 1,
};

/// Answers IncrementalAlterConfigs.
pub async fn handle(
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let broker = resource.resource_type == RESOURCE_BROKER;
        let refusal = config_refusal(
            ctx,
            Operation::AlterConfigs,
            resource.resource_type,
            &resource.resource_name,
        );
        let (code, message) = match edit_of(&resource) {
            _ if refusal.is_some() => (refusal.unwrap_or_default(), None),
            Ok(Some(ConfigEdit::Incremental(ops)))
                if resource.resource_type == RESOURCE_BROKER_LOGGER =>
            {
                alter_loggers(ctx, &resource.resource_name, &ops, request.validate_only)
            }
            Ok(Some(edit)) if broker => {
                broker_change(ctx, &resource.resource_name, edit, request.validate_only).await
            }
            Ok(Some(edit)) => {
                let change = MetaChange::AlterTopicConfig {
                    name: resource.resource_name.to_string(),
                    edit,
                    validate_only: request.validate_only,
                };
                ctx.shard.change_metadata(change).await
            }
            Ok(None) => (0, None),
            Err(refused) => refused,
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string)),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The topic edit a resource asks for; `None` for a no-op; `Err` with the
/// error code and message to answer.
fn edit_of(resource: &AlterConfigsResource) -> Result<Option<ConfigEdit>, (i16, Option<String>)> {
    let invalid = |message: String| (ResponseError::InvalidRequest.code(), Some(message));
    match resource.resource_type {
        RESOURCE_TOPIC | RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {}
        RESOURCE_GROUP => {
            return Err(invalid(
                "Group configs cannot be altered here: the broker's group.consumer.* settings \
                 apply to every group."
                    .to_string(),
            ))
        }
        other => return Err(invalid(format!("Unsupported resource type {other}."))),
    }
    let mut seen = BTreeSet::new();
    let mut ops = Vec::with_capacity(resource.configs.len());
    for c in &resource.configs {
        if !seen.insert(c.name.as_str()) {
            return Err(invalid(format!(
                "Error due to duplicate config keys: {}",
                c.name.as_str()
            )));
        }
        let Some(op) = AlterOp::from_code(c.config_operation) else {
            return Err(invalid(format!(
                "Unknown config operation {} for {}",
                c.config_operation,
                c.name.as_str()
            )));
        };
        ops.push((
            c.name.to_string(),
            op,
            c.value.as_ref().map(|v| v.to_string()),
        ));
    }
    Ok(Some(ConfigEdit::Incremental(ops)))
}

/// BROKER_LOGGER: SET a logger's level or DELETE it (back to the root
/// level), as Kafka allows; levels are not persisted (Kafka neither).
fn alter_loggers(
    ctx: &RequestContext,
    name: &str,
    ops: &[(String, AlterOp, Option<String>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let invalid = |message: String| (ResponseError::InvalidRequest.code(), Some(message));
    if name != ctx.shard.config.node_id.to_string() {
        return invalid(format!("Broker {name} is not this broker."));
    }
    if let Some((logger, op, _)) = ops
        .iter()
        .find(|(_, op, _)| matches!(op, AlterOp::Append | AlterOp::Subtract))
    {
        return invalid(format!("{op:?} is not allowed for logger {logger}."));
    }
    if validate_only {
        return (0, None);
    }
    for (logger, op, level) in ops {
        let level = match op {
            AlterOp::Set => level.as_deref().or(Some("")),
            _ => None,
        };
        if let Err(e) = crate::ops::logging::set_broker_logger(logger, level) {
            return (ResponseError::InvalidConfig.code(), Some(e.to_string()));
        }
        tracing::info!(logger = %logger, level = ?level, "broker logger level changed");
    }
    (0, None)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    fn config(name: &str, op: i8, value: &str) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_config_operation(op)
            .with_value(Some(StrBytes::from_string(value.into())))
    }

    #[test]
    fn incremental_alter_configs_edits_and_refusals() {
        let topic = AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_configs(vec![
                config("retention.ms", 0, "5"),
                config("cleanup.policy", 2, "compact"),
            ]);
        let Ok(Some(ConfigEdit::Incremental(ops))) = edit_of(&topic) else {
            panic!()
        };
        assert_eq!(
            ops[1],
            (
                "cleanup.policy".to_string(),
                AlterOp::Append,
                Some("compact".to_string())
            )
        );
        let dup = topic.clone().with_configs(vec![
            config("retention.ms", 0, "5"),
            config("retention.ms", 1, ""),
        ]);
        assert_eq!(
            edit_of(&dup).unwrap_err().0,
            ResponseError::InvalidRequest.code()
        );
        let bad_op = topic
            .clone()
            .with_configs(vec![config("retention.ms", 9, "5")]);
        assert_eq!(
            edit_of(&bad_op).unwrap_err().0,
            ResponseError::InvalidRequest.code()
        );
        let broker = topic.clone().with_resource_type(RESOURCE_BROKER);
        assert!(matches!(
            edit_of(&broker),
            Ok(Some(ConfigEdit::Incremental(_)))
        ));
        let group = topic.clone().with_resource_type(RESOURCE_GROUP);
        assert_eq!(
            edit_of(&group).unwrap_err().0,
            ResponseError::InvalidRequest.code()
        );
    }

    #[test]
    fn incremental_alter_configs_response_encodes_every_version() {
        let ok = AlterConfigsResourceResponse::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_error_message(None);
        let bad = ok
            .clone()
            .with_error_code(40)
            .with_error_message(Some(StrBytes::from_static_str("x")));
        let response = IncrementalAlterConfigsResponse::default().with_responses(vec![ok, bad]);
        for v in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            response
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
