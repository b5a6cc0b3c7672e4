//! CreateTopics (key 19), v0-7 (v0-1 through `handlers::legacy`, as v2).
//! Single broker: replication factor must be -1 (default) or 1. In a
//! cluster -1 means `default.replication.factor` and the controller places
//! the replicas (INVALID_REPLICATION_FACTOR when fewer brokers are live).
//! Explicit replica assignments may only name this broker. Topic configs are validated (INVALID_CONFIG naming the key, as
//! Kafka) and stored as the topic's overrides; v5+ answers list every
//! effective config with its source. The topic is ready on every shard when
//! this answers.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::config::PARTITIONS_PER_TOPIC_MAX;
use crate::metadata::topic_config::{resolve_entries, validate_overrides};
use crate::metadata::{internal_topics, is_internal_topic, validate_topic_name};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::CreateTopics,
    min: 0,
    max: 7,
};

/// Answers CreateTopics.
pub async fn handle(ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        results.push(create_one(ctx, topic, request.validate_only).await);
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    ctx: &RequestContext,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let name = topic.name.0.to_string();
    let result = CreatableTopicResult::default().with_name(topic.name.clone());
    let fail = |code: i16, message: String| {
        result
            .clone()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    // Kafka: CREATE on the cluster or on the topic.
    if !ctx.authorize_cluster(Operation::Create)
        && !ctx.authorize(Operation::Create, ResourceType::Topic, &name)
    {
        return fail(ResponseError::TopicAuthorizationFailed.code(), "Authorization failed.".into());
    }
    if let Err(message) = validate_topic_name(&name) {
        return fail(ResponseError::InvalidTopicException.code(), message);
    }
    if is_internal_topic(&name) {
        return fail(
            ResponseError::InvalidTopicException.code(),
            internal_topics::create_refusal(&name),
        );
    }
    let partitions = if !topic.assignments.is_empty() {
        topic.assignments.len() as i32
    } else if topic.num_partitions == -1 {
        ctx.shard.config.default_partitions
    } else {
        topic.num_partitions
    };
    if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return fail(ResponseError::InvalidPartitions.code(), format!("Number of partitions must be within 1..={PARTITIONS_PER_TOPIC_MAX}, not {partitions}."));
    }
    let in_cluster = ctx.shard.snapshot().cluster.is_some();
    let replication_factor = match topic.replication_factor {
        -1 if in_cluster => ctx.shard.config.cluster.default_replication_factor,
        -1 | 1 => 1,
        // The controller checks it against the live brokers.
        n if n > 1 && in_cluster => n,
        n if n < 1 => {
            return fail(
                ResponseError::InvalidReplicationFactor.code(),
                "Replication factor must be larger than 0.".into(),
            )
        }
        n => {
            return fail(
                ResponseError::InvalidReplicationFactor.code(),
                format!("Replication factor {n} is larger than the 1 available broker."),
            )
        }
    };
    let node = ctx.shard.config.node_id;
    if topic
        .assignments
        .iter()
        .any(|a| a.broker_ids.iter().any(|b| b.0 != node))
    {
        return fail(
            ResponseError::InvalidReplicaAssignment.code(),
            format!("Replica assignments may only name broker {node}."),
        );
    }
    let configs = topic
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())));
    let configs = match validate_overrides(configs) {
        Ok(configs) => configs,
        Err(e) => return fail(e.error_code(), e.message),
    };
    if ctx.shard.snapshot().topic(&name).is_some() {
        return fail(
            ResponseError::TopicAlreadyExists.code(),
            format!("Topic '{name}' already exists."),
        );
    }
    if !validate_only {
        let (code, message) = ctx
            .shard
            .change_metadata(MetaChange::CreateTopic {
                name: name.clone(),
                partitions,
                configs: configs.clone(),
                replication_factor,
            })
            .await;
        if code != 0 {
            return fail(code, message.unwrap_or_default());
        }
    }
    let topic_id = ctx
        .shard
        .snapshot()
        .topic(&name)
        .map(|t| t.id)
        .unwrap_or_default();
    let entries = resolve_entries(&ctx.shard.snapshot().log_defaults, &configs);
    let described = entries.into_iter().map(|e| {
        CreatableTopicConfigs::default()
            .with_name(StrBytes::from_static_str(e.key.name))
            .with_value(Some(StrBytes::from_string(e.value)))
            .with_config_source(e.source)
    });
    result
        .with_topic_id(topic_id)
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(Some(described.collect()))
}
