//! DeleteTopics (key 20), v0-6 (v0 through `handlers::legacy`, as v1): by name (v1-5) or by name or id (v6). The
//! partitions' files are removed by their owner shards before this answers.
//! Internal topics are refused (INVALID_REQUEST): the coordinators keep
//! their state there.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{ApiSpec, RequestContext};
use crate::metadata::{internal_topics, is_internal_topic};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DeleteTopics,
    min: 0,
    max: 6,
};

/// Answers DeleteTopics.
pub async fn handle(ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<TopicName>, Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        responses.push(delete_one(ctx, name, id).await);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

async fn delete_one(
    ctx: &RequestContext,
    name: Option<TopicName>,
    id: Uuid,
) -> DeletableTopicResult {
    let snapshot = ctx.shard.snapshot();
    let found = match &name {
        Some(n) => snapshot.topic(&n.0).cloned(),
        None => snapshot.topic_by_id(&id).cloned(),
    };
    let result = DeletableTopicResult::default()
        .with_name(name.clone())
        .with_topic_id(id);
    // Kafka: DELETE on the topic (a refused one is not revealed to exist).
    let refused = match (&found, &name) {
        (Some(t), _) => !ctx.authorize(Operation::Delete, ResourceType::Topic, &t.name),
        (None, Some(n)) => !ctx.authorize(Operation::Delete, ResourceType::Topic, &n.0),
        (None, None) => false,
    };
    if refused {
        return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
    }
    let Some(topic) = found else {
        let code = if name.is_none() {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        return result.with_error_code(code.code());
    };
    let result = result
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name.to_string(),
        ))))
        .with_topic_id(topic.id);
    if is_internal_topic(&topic.name) {
        let message = internal_topics::admin_refusal("delete", &topic.name);
        return result
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let (code, message) = ctx
        .shard
        .change_metadata(MetaChange::DeleteTopic {
            name: topic.name.to_string(),
        })
        .await;
    result
        .with_error_code(code)
        .with_error_message(message.map(StrBytes::from_string))
}
